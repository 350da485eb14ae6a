// A bench Outcome rebuilt from a real run's recorded agent snapshots
// (test/fixtures/bench-snapshots.jsonl: a 2-agent hot-symbol run, 3 s),
// through the same LiveMerge and warm-up split the controller uses, so the
// report can be written and checked without starting a cluster.
import { readFileSync } from 'node:fs';
import { LiveMerge, newTrack } from '../../cli/lib/bench/live-merge.ts';
import { newHistogram } from '../../cli/lib/bench/meter.ts';
import { latencySummary } from '../../cli/lib/bench/figures.ts';
import { headlineOf, splitWarmup, warmupEnd } from '../../cli/lib/bench/warmup.ts';
import type { Outcome } from '../../cli/lib/bench/controller.ts';
import type { Scenario, WarmupSetting } from '../../cli/lib/bench/scenario.ts';
import type { AgentSnapshot } from '../../cli/lib/bench/wire.ts';

const fixtures = new URL('../fixtures/', import.meta.url);

export interface FixtureMeta {
  startedAt: string;
  scenario: string;
  sessions: number;
  agents: string[];
}

export function fixtureRun(): { meta: FixtureMeta; snaps: AgentSnapshot[] } {
  const meta = JSON.parse(readFileSync(new URL('bench-snapshots.summary.json', fixtures), 'utf8')) as FixtureMeta;
  const snaps = readFileSync(new URL('bench-snapshots.jsonl', fixtures), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AgentSnapshot);
  return { meta, snaps };
}

/** The fixture run as the controller would have finished it, with the given warm-up. */
export function fixtureOutcome(warmup: WarmupSetting): { outcome: Outcome; scenario: Scenario } {
  const { meta, snaps } = fixtureRun();
  const durationMs = 3_000;
  const merge = new LiveMerge(meta.agents.map((n) => newTrack(n, 'fixture-host')), 1_000);
  merge.startMs = Date.parse(meta.startedAt);
  for (const s of snaps) merge.onSnapshot(s);
  const runIntervals = merge.intervals();
  const rule = { setting: warmup, targetOpen: meta.sessions, rampMs: 1_000, runMs: durationMs };
  const split = splitWarmup(runIntervals, warmupEnd(runIntervals, rule, true)!);
  const total = newHistogram();
  total.add(merge.live);
  const connect = newHistogram();
  for (const a of merge.agents) connect.add(a.connect);
  const counters = merge.view({ scenario: meta.scenario, target: 'http://router', durationS: 3, sessions: meta.sessions, http: [], warnings: [], done: true }).counters;
  const scenario: Scenario = {
    name: meta.scenario, description: 'One hot symbol to 500 clients. Fixture: a recorded 3 s run.', file: 'fixture.yaml', sessions: [], amplify: 1, jitterMs: 0,
    speed: 1, durationMs, connect: 'router', thresholds: ['p99<1s'], http: [], faults: [], warmup,
  };
  const outcome: Outcome = {
    runId: 'fixture', startedAt: new Date(merge.startMs), endedAt: new Date(merge.startMs + durationMs), durationMs,
    latency: headlineOf(split, total, counters.msgs, durationMs).latency, totalLatency: total, connect, counters,
    warmup: { endMs: split.end.endMs, how: split.end.how, figures: split.warmup }, steady: split.steady,
    connections: { target: meta.sessions, peakOpen: Math.max(...runIntervals.map((i) => i.open)), failed: counters.connectFailures },
    intervals: merge.timeline(), faults: [],
    agents: merge.agents.map((a) => ({
      name: a.name, host: a.host, state: 'done', open: a.open, target: a.target, msgsPerSec: Math.round(a.msgsPerSec), sessions: a.target,
      counters: a.counters, latency: latencySummary(a.latency), ...(a.health ? { health: a.health, healthOverRun: { ...a.health, cpuMax: a.health.cpu } } : {}),
      errorSamples: a.errorSamples, partial: false, snapshots: a.snaps, saturatedSnapshots: a.saturatedSnaps,
    })),
    http: [], thresholds: [], warnings: [], snapshots: snaps,
  };
  return { outcome, scenario };
}
