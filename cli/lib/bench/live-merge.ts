// The controller's running picture of a run, built only from agent
// snapshots: per-agent totals, the merged live latency histogram, and
// per-interval buckets (for the timeline and the .hlog). The dashboard view
// is a pure function of it, so recorded snapshots re-render the same view.
import type { ChildProcess } from 'node:child_process';
import type { Histogram } from 'hdr-histogram-js';
import { newHistogram } from './meter.ts';
import { addEncoded, cpuText, latencyBars, latencySummary } from './figures.ts';
import { addCounters, zeroCounters, type AgentHealth, type AgentResult, type AgentSnapshot, type Counters } from './wire.ts';
import type { AgentStateName, DashboardState, IntervalFigures } from './controller.ts';
import type { HttpResult } from './http-phase.ts';
import type { RunInterval } from './phases.ts';
import { inWarmup, warmupEnd, type WarmupEnd, type WarmupRule } from './warmup.ts';

export type TimelineInterval = IntervalFigures & { startMs: number; endMs: number; hist: Histogram; counters: Counters };

export interface AgentTrack {
  name: string;
  host: string;
  pid?: number;
  proc?: ChildProcess;
  stderr: string[];
  state: AgentStateName;
  why?: string;
  lastSnapAt: number;
  open: number;
  target: number;
  msgsPerSec: number;
  health?: AgentHealth;
  counters: Counters;
  latency: Histogram;
  connect: Histogram;
  errorSamples: string[];
  result?: AgentResult;
  snaps: number;
  /** Snapshots in which the agent was saturated (CPU or event-loop delay). */
  saturatedSnaps: number;
}

export function newTrack(name: string, host: string, extra: Partial<AgentTrack> = {}): AgentTrack {
  return {
    name, host, stderr: [], state: 'starting', lastSnapAt: 0, open: 0, target: 0, msgsPerSec: 0,
    counters: zeroCounters(), latency: newHistogram(), connect: newHistogram(), errorSamples: [], snaps: 0, saturatedSnaps: 0, ...extra,
  };
}

export interface Bucket {
  hist: Histogram;
  /** Every counter's change in this interval, all agents. */
  counters: Counters;
  open: Map<string, number>;
}

export function saturationWarning(a: Pick<AgentTrack, 'name' | 'health'>): string | undefined {
  const h = a.health;
  return h?.saturated ? `agent ${a.name} is saturated (CPU ${cpuText(h.cpu)}, loop p99 ${h.loopDelayP99Ms} ms): latencies include its own queueing; add agents` : undefined;
}

export class LiveMerge {
  readonly agents: AgentTrack[];
  readonly snapshotMs: number;
  /** Interval buckets keyed by snapshot time on the controller's clock. */
  readonly buckets = new Map<number, Bucket>();
  readonly live = newHistogram();
  /** The warm-up rule (unset: no warm-up). Once its end is known the headline is the steady state after it. */
  warmup?: WarmupRule;
  #warmupEnd?: WarmupEnd;
  readonly #steadyLive = newHistogram();
  readonly #warmupLive = newHistogram();
  /** Run start on the controller's clock, ms since the epoch. */
  startMs = 0;
  /** Planned run end, same clock: an agent's snapshot from then on is taken after it closed its sessions. */
  endMs = Number.POSITIVE_INFINITY;
  #byName: Map<string, AgentTrack>;

  constructor(agents: AgentTrack[], snapshotMs: number) {
    this.agents = agents;
    this.snapshotMs = snapshotMs;
    this.#byName = new Map(agents.map((a) => [a.name, a]));
  }

  /** Adds one snapshot; false when it is from an agent not in this run. */
  onSnapshot(s: AgentSnapshot, receivedAt = Date.now()): boolean {
    const a = this.#byName.get(s.agent);
    if (!a) return false;
    if (a.state === 'starting') a.state = 'running';
    a.lastSnapAt = receivedAt;
    // The closing snapshot counts (its deltas are real) but its open count (0: sessions stopped) says nothing of the interval.
    const openInInterval = s.atMs >= this.endMs - 1 ? a.open : s.open;
    a.open = s.open;
    a.target = s.target;
    a.health = s.health;
    a.snaps++;
    if (s.health.saturated) a.saturatedSnaps++;
    a.msgsPerSec = s.intervalMs > 0 ? (s.delta.msgs * 1000) / s.intervalMs : 0;
    addCounters(a.counters, s.delta);
    addEncoded(a.latency, s.latency);
    addEncoded(a.connect, s.connect);
    for (const e of s.errorSamples) if (a.errorSamples.length < 20) a.errorSamples.push(e);
    addEncoded(this.live, s.latency);
    const k = Math.max(0, Math.round((s.atMs - this.startMs) / this.snapshotMs));
    let b = this.buckets.get(k);
    if (!b) this.buckets.set(k, (b = { hist: newHistogram(), counters: zeroCounters(), open: new Map() }));
    addEncoded(b.hist, s.latency);
    if (this.warmup) addEncoded(this.#warmupEnd && !inWarmup(this.#interval(k), this.#warmupEnd.endMs) ? this.#steadyLive : this.#warmupLive, s.latency);
    addCounters(b.counters, s.delta);
    b.open.set(a.name, openInInterval);
    return true;
  }

  #interval(k: number): Pick<RunInterval, 'fromMs' | 'toMs'> {
    return { fromMs: (k - 1) * this.snapshotMs, toMs: k * this.snapshotMs };
  }

  /** The warm-up's end once the settled intervals tell it; from then on snapshots go to the steady histogram. */
  #decideWarmup(done: boolean): WarmupEnd | undefined {
    if (!this.warmup || this.#warmupEnd) return this.#warmupEnd;
    const all = this.intervals();
    // The newest interval may still be missing some agents' snapshots.
    const end = warmupEnd(done ? all : all.slice(0, -1), this.warmup, done);
    if (!end) return undefined;
    this.#warmupEnd = end;
    this.#warmupLive.reset();
    for (const [k, b] of this.buckets) (inWarmup(this.#interval(k), end.endMs) ? this.#warmupLive : this.#steadyLive).add(b.hist);
    return end;
  }

  /** The buckets as intervals, in time order: bucket k covers [(k−1)·snapshotMs, k·snapshotMs) of the run. */
  intervals(): Array<RunInterval & { k: number }> {
    return [...this.buckets.entries()]
      .sort((x, y) => x[0] - y[0])
      .map(([k, b]) => ({
        k,
        fromMs: (k - 1) * this.snapshotMs,
        toMs: k * this.snapshotMs,
        counters: b.counters,
        open: [...b.open.values()].reduce((s, v) => s + v, 0),
        hist: b.hist,
      }));
  }

  /** The intervals as the report's timeline: tS is the interval's end, s since the start; rates per second. */
  timeline(): TimelineInterval[] {
    return this.intervals().map((i) => ({
      tS: (i.k * this.snapshotMs) / 1000,
      startMs: this.startMs + i.fromMs,
      endMs: this.startMs + i.toMs,
      msgsPerSec: Math.round((i.counters.msgs * 1000) / this.snapshotMs),
      open: i.open,
      latency: latencySummary(i.hist),
      errors: i.counters.errors,
      gaps: i.counters.gaps,
      hist: i.hist,
      counters: i.counters,
    }));
  }

  view(m: { scenario: string; target: string; durationS: number; sessions: number; http: HttpResult[]; warnings: string[]; done: boolean; nowMs?: number }): DashboardState {
    const counters = zeroCounters();
    for (const a of this.agents) addCounters(counters, a.counters);
    const running = this.agents.filter((a) => a.state === 'running');
    const w = [...m.warnings];
    for (const a of running) {
      const sat = saturationWarning(a);
      if (sat) w.push(sat);
    }
    // Headline: the steady state once the warm-up ended; while it lasts, the warm-up's own figures (labelled so).
    const end = this.#decideWarmup(m.done);
    const headline = !this.warmup ? this.live : end ? this.#steadyLive : this.#warmupLive;
    return {
      scenario: m.scenario, target: m.target, elapsedS: Math.max(0, ((m.nowMs ?? Date.now()) - this.startMs) / 1000), durationS: m.durationS,
      connections: { target: m.sessions, open: running.reduce((s, a) => s + a.open, 0), failed: counters.connectFailures },
      msgsPerSec: running.reduce((s, a) => s + a.msgsPerSec, 0),
      latency: latencySummary(headline), bars: latencyBars(headline), counters,
      ...(this.warmup
        ? { warmup: { ...(end ? { endS: end.endMs / 1000, how: end.how } : {}), latency: latencySummary(this.#warmupLive) } }
        : {}),
      agents: this.agents.map((a) => ({
        name: a.name, host: a.host, state: a.state, open: a.open, target: a.target, msgsPerSec: Math.round(a.msgsPerSec),
        ...(a.health ? { health: a.health } : {}), ...(a.why ? { why: a.why } : {}),
      })),
      http: m.http, warnings: w, done: m.done,
    };
  }
}
