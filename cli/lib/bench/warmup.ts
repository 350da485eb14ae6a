// The warm-up: the first part of a run, while the clients connect (router
// lookups, handshakes, snapshots, a cold gateway), kept out of the headline
// latency and rate figures and reported on its own. Its end is decided from
// the run's per-second intervals, with the same midpoint cut as the fault
// phases (phases.ts), so the dashboard and the report agree. Pure: no I/O.
import type { Histogram } from 'hdr-histogram-js';
import { newHistogram } from './meter.ts';
import { latencySummary, type LatencySummary } from './figures.ts';
import { expandShare } from './plan.ts';
import { midpoint, spanFigures, type RunInterval, type SpanFigures } from './phases.ts';
import type { Scenario, WarmupSetting } from './scenario.ts';

/** Steady-state margin after the last connection opened: its snapshot and the catch-up it triggers pass. */
export const WARMUP_SETTLE_MS = 3_000;
/** How long after the last planned first connect the open count may take to reach the target. */
export const WARMUP_CONNECT_GRACE_MS = 5_000;

export interface WarmupRule {
  setting: WarmupSetting;
  /** Sessions the run opens (all agents). */
  targetOpen: number;
  /** ms since the start by which every session's first connect is scheduled. */
  rampMs: number;
  runMs: number;
}

export interface WarmupEnd {
  /** ms since the run's start; intervals whose midpoint is before it are warm-up. */
  endMs: number;
  how: string;
}

/** The latest first connect of any amplified copy, ms since the start (the copies are deterministic from the seed). */
export function plannedRampMs(sc: Pick<Scenario, 'sessions' | 'amplify' | 'jitterMs' | 'speed' | 'durationMs' | 'formats'>, seed: number): number {
  const copies = expandShare({
    runId: '', agent: '', index: 0, agents: 1, sessions: sc.sessions, amplify: sc.amplify, jitterMs: sc.jitterMs, speed: sc.speed,
    durationMs: sc.durationMs, seed, connect: 'router', router: '', snapshotMs: 1_000, applyClockOffset: false, ...(sc.formats ? { formats: sc.formats } : {}),
  });
  return Math.max(0, ...copies.map((c) => c.ops[0]!.t));
}

const s = (ms: number) => `${+(ms / 1000).toFixed(1)} s`;

/**
 * Where the warm-up ends, or undefined while that is not known yet (live: pass the settled intervals).
 * Auto: the end of the first interval in which every session was open, plus WARMUP_SETTLE_MS; when that
 * never happens (sessions that fail, or that the capture closes), the last planned first connect plus
 * WARMUP_CONNECT_GRACE_MS stands in for it. Never more than half the run, so the steady state has figures.
 */
export function warmupEnd(intervals: RunInterval[], r: WarmupRule, done: boolean): WarmupEnd | undefined {
  if (r.setting !== 'auto') return { endMs: Math.min(r.setting.ms, r.runMs), how: r.setting.ms === 0 ? 'none (warm-up 0)' : `fixed: ${s(r.setting.ms)}` };
  if (r.targetOpen === 0) return { endMs: 0, how: 'none: no client sessions' };
  const capMs = r.runMs / 2;
  const fallbackMs = r.rampMs + WARMUP_CONNECT_GRACE_MS;
  const full = intervals.find((i) => i.open >= r.targetOpen && i.toMs <= fallbackMs);
  let end: WarmupEnd | undefined;
  if (full) end = { endMs: full.toMs + WARMUP_SETTLE_MS, how: `auto: all ${r.targetOpen} connections open at ${s(full.toMs)}, + ${s(WARMUP_SETTLE_MS)}` };
  else if (done || (intervals.at(-1)?.toMs ?? 0) >= fallbackMs)
    end = { endMs: fallbackMs + WARMUP_SETTLE_MS, how: `auto: not all ${r.targetOpen} connections were open by ${s(fallbackMs)} (last planned connect at ${s(r.rampMs)} + ${s(WARMUP_CONNECT_GRACE_MS)}), + ${s(WARMUP_SETTLE_MS)}` };
  if (end && end.endMs > capMs) return { endMs: capMs, how: `${end.how}; capped at half the run (${s(capMs)})` };
  if (!end && (done || (intervals.at(-1)?.toMs ?? 0) >= capMs)) return { endMs: capMs, how: `auto: capped at half the run (${s(capMs)})` };
  return end;
}

export const inWarmup = (i: Pick<RunInterval, 'fromMs' | 'toMs'>, endMs: number): boolean => midpoint(i) < endMs;

export interface WarmupSplit {
  end: WarmupEnd;
  warmup: SpanFigures;
  steady: SpanFigures;
  /** The steady state's merged latency histogram (µs): the headline. */
  steadyLatency: Histogram;
}

/** Warm-up and steady state of a finished run: figures of each, and the steady state's histogram. */
export function splitWarmup(intervals: RunInterval[], end: WarmupEnd): WarmupSplit {
  const warm = intervals.filter((i) => inWarmup(i, end.endMs));
  const steady = intervals.filter((i) => !inWarmup(i, end.endMs));
  const steadyLatency = newHistogram();
  for (const i of steady) steadyLatency.add(i.hist);
  return { end, warmup: spanFigures(warm), steady: spanFigures(steady), steadyLatency };
}

export interface Headline {
  /** The steady state's histogram, or the whole run's when there is no warm-up. */
  latency: Histogram;
  /** Its figures; NaN (every latency threshold fails) when the run had samples but none after the warm-up. */
  figures: Omit<LatencySummary, 'count'>;
  /** msgs/s of the steady state (of the whole run without a warm-up). */
  rate: number;
  warning?: string;
}

/** The figures the summary, the report and the latency and rate thresholds lead with. */
export function headlineOf(split: WarmupSplit, total: Histogram, totalMsgs: number, durationMs: number): Headline {
  if (split.end.endMs <= 0) {
    split.steadyLatency.destroy();
    return { latency: total, figures: latencySummary(total), rate: (totalMsgs * 1000) / durationMs };
  }
  const h = split.steadyLatency;
  if (h.totalCount === 0 && total.totalCount > 0)
    return {
      latency: h, figures: { p50Ms: NaN, p90Ms: NaN, p99Ms: NaN, p999Ms: NaN, maxMs: NaN, meanMs: NaN }, rate: split.steady.msgsPerSec,
      warning: `no latency sample after the warm-up (${split.end.how}): the headline latency is empty; see warmup and total in summary.json`,
    };
  return { latency: h, figures: latencySummary(h), rate: split.steady.msgsPerSec };
}
