// The warm-up: where it ends (auto: all connections open + a margin; fixed;
// none), what falls in it (the midpoint cut), the headline being the steady
// state after it (finished run, live dashboard), and the settings it parses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import React from 'react';
import { render } from 'ink-testing-library';
import { encodeIntoCompressedBase64 } from 'hdr-histogram-js';
import { newHistogram } from '../../cli/lib/bench/meter.ts';
import { headlineOf, splitWarmup, warmupEnd, WARMUP_SETTLE_MS, WARMUP_CONNECT_GRACE_MS, plannedRampMs, type WarmupRule } from '../../cli/lib/bench/warmup.ts';
import { parseWarmup } from '../../cli/lib/bench/scenario.ts';
import { evaluate, parseThreshold } from '../../cli/lib/bench/thresholds.ts';
import { LiveMerge, newTrack } from '../../cli/lib/bench/live-merge.ts';
import { BenchDashboard, progressLine } from '../../cli/lib/bench/dashboard.ts';
import type { RunInterval } from '../../cli/lib/bench/phases.ts';
import { zeroCounters, type AgentSnapshot } from '../../cli/lib/bench/wire.ts';

/** 1 s intervals: open count and latency (ms) of each; 100 samples each. */
function run(spec: Array<{ open: number; latMs: number }>): RunInterval[] {
  return spec.map((s, i) => {
    const hist = newHistogram();
    for (let n = 0; n < 100; n++) hist.recordValue(s.latMs * 1000);
    return { fromMs: i * 1000, toMs: (i + 1) * 1000, counters: { ...zeroCounters(), msgs: 100, errors: i === 0 ? 2 : 0 }, open: s.open, hist };
  });
}

// A ramp: connections open over 3 s at 250 ms latency, then 2 ms for 9 s.
const ramp = run([
  { open: 100, latMs: 250 }, { open: 300, latMs: 250 }, { open: 500, latMs: 250 },
  ...Array.from({ length: 9 }, () => ({ open: 500, latMs: 2 })),
]);
const rule = (over: Partial<WarmupRule> = {}): WarmupRule => ({ setting: 'auto', targetOpen: 500, rampMs: 2_000, runMs: 12_000, ...over });

test('auto warm-up: ends the settling margin after the first interval with every connection open; its events stay out of the headline', () => {
  const end = warmupEnd(ramp, rule(), true)!;
  assert.equal(end.endMs, 3_000 + WARMUP_SETTLE_MS);
  assert.match(end.how, /all 500 connections open at 3 s/);
  const split = splitWarmup(ramp, end);
  assert.deepEqual([split.warmup.fromS, split.warmup.toS, split.steady.fromS, split.steady.toS], [0, 6, 6, 12]);
  // The 250 ms ramp samples are all in the warm-up: the headline is the 2 ms steady state.
  assert.equal(split.steadyLatency.totalCount, 600);
  assert.ok(split.steadyLatency.getValueAtPercentile(100) < 2_100, `steady max ${split.steadyLatency.maxValue} µs`);
  assert.equal(split.steady.latency.p99Ms < 2.1, true);
  assert.equal(split.warmup.latency.count, 600);
  assert.ok(split.warmup.latency.p99Ms >= 249);
  assert.equal(split.warmup.errors, 2);
  assert.equal(split.steady.errors, 0);
  assert.equal(split.steady.msgsPerSec, 100);
});

test('auto warm-up: not known while connections are still opening; a target never reached falls back to the last planned connect + grace; capped at half the run', () => {
  assert.equal(warmupEnd(ramp.slice(0, 2), rule(), false), undefined, 'live, still ramping');
  const never = run(Array.from({ length: 20 }, () => ({ open: 400, latMs: 2 })));
  assert.equal(warmupEnd(never.slice(0, 5), rule({ runMs: 20_000 }), false), undefined);
  const fb = warmupEnd(never, rule({ runMs: 20_000 }), true)!;
  assert.equal(fb.endMs, 2_000 + WARMUP_CONNECT_GRACE_MS + WARMUP_SETTLE_MS);
  assert.match(fb.how, /not all 500 connections were open/);
  // Live, the fallback is decided once the intervals pass it.
  assert.equal(warmupEnd(never.slice(0, 7), rule({ runMs: 20_000 }), false)!.endMs, fb.endMs);
  const capped = warmupEnd(ramp, rule({ runMs: 8_000 }), true)!;
  assert.equal(capped.endMs, 4_000);
  assert.match(capped.how, /capped at half the run/);
});

test('fixed and no warm-up; HTTP-only runs have none; the setting parses auto, durations and 0, and refuses the rest', () => {
  assert.equal(warmupEnd(ramp, rule({ setting: { ms: 2_000 } }), false)!.endMs, 2_000);
  const none = warmupEnd(ramp, rule({ setting: { ms: 0 } }), true)!;
  assert.equal(none.endMs, 0);
  assert.equal(splitWarmup(ramp, none).steadyLatency.totalCount, 1_200, 'no warm-up: every sample is in the headline');
  assert.equal(warmupEnd([], rule({ targetOpen: 0 }), false)!.endMs, 0);
  assert.equal(parseWarmup(undefined, 'warmup'), 'auto');
  assert.equal(parseWarmup('auto', 'warmup'), 'auto');
  assert.deepEqual(parseWarmup('5s', 'warmup'), { ms: 5_000 });
  assert.deepEqual(parseWarmup(0, 'warmup'), { ms: 0 });
  assert.throws(() => parseWarmup('soon', '--warmup'), /--warmup .*"soon" is not a duration/);
});

test('the planned ramp is the latest first connect of any amplified copy (jitter and speed applied)', () => {
  const sessions = [
    { id: 'a', format: 'json' as const, ops: [{ t: 0, ev: 'connect' as const, streams: [] }] },
    { id: 'b', format: 'json' as const, ops: [{ t: 4_000, ev: 'connect' as const, streams: [] }] },
  ];
  const ms = plannedRampMs({ sessions, amplify: 10, jitterMs: 1_000, speed: 2, durationMs: 60_000 }, 7);
  assert.ok(ms >= 2_000 && ms < 3_000, `ramp ${ms}`);
  assert.equal(plannedRampMs({ sessions, amplify: 1, jitterMs: 0, speed: 1, durationMs: 60_000 }, 1), 4_000);
});

test('live: the dashboard headline is the warm-up (labelled) until it ends, then only the steady state; the warm-up row keeps its own figures', () => {
  const merge = new LiveMerge([newTrack('a1', 'h')], 1_000);
  merge.startMs = 1_000_000;
  merge.warmup = rule({ targetOpen: 10, rampMs: 500 });
  const snap = (k: number, open: number, latMs: number): AgentSnapshot => {
    const h = newHistogram();
    for (let n = 0; n < 50; n++) h.recordValue(latMs * 1000);
    const empty = encodeIntoCompressedBase64(newHistogram());
    return {
      agent: 'a1', seq: k, atMs: merge.startMs + k * 1_000, intervalMs: 1_000, open, target: 10, delta: { ...zeroCounters(), msgs: 50 },
      latency: encodeIntoCompressedBase64(h), connect: empty, health: { cpu: 0.42, loopDelayP99Ms: 3, loopDelayMaxMs: 4, rssMb: 90, saturated: false }, errorSamples: [],
    };
  };
  const view = (done = false) => merge.view({ scenario: 'hot', target: 'http://r', durationS: 12, sessions: 10, http: [], warnings: [], done });
  merge.onSnapshot(snap(1, 5, 300));
  merge.onSnapshot(snap(2, 10, 300));
  let v = view();
  assert.equal(v.warmup!.endS, undefined, 'not decided while the newest interval may still be filling');
  assert.ok(v.latency.p99Ms >= 299, 'the headline shows the warm-up meanwhile');
  const frame = (s: typeof v) => {
    const r = render(React.createElement(BenchDashboard, { s }));
    const out = r.lastFrame() ?? '';
    r.unmount();
    return out;
  };
  assert.match(frame(v), /latency ms \(warm-up, not the headline\)/);
  assert.match(progressLine(v), /\[warm-up\]/);
  for (let k = 3; k <= 8; k++) merge.onSnapshot(snap(k, 10, 2));
  v = view();
  // All open in the interval ending at 2 s: + the margin. Intervals ending at 1–5 s (midpoints < 5 s) are warm-up.
  assert.equal(v.warmup!.endS, 2 + WARMUP_SETTLE_MS / 1000);
  assert.equal(v.latency.count, 3 * 50);
  assert.ok(v.latency.maxMs < 2.1, `steady max ${v.latency.maxMs}`);
  assert.equal(v.warmup!.latency.count, 5 * 50);
  assert.ok(v.warmup!.latency.maxMs >= 299);
  merge.onSnapshot(snap(9, 10, 2));
  assert.equal(view().latency.count, 4 * 50, 'later snapshots go straight to the steady state');
  const out = frame(view());
  assert.match(out, /latency ms \(steady, from 5 s\)/);
  assert.match(out, /warm-up 0–5 s\s+p50 \d/);
  assert.match(out, /CPU %core/);
  assert.match(out, /a1\s+running\s+10\/10\s+\d+\s+42%/);
});

test('headline: the steady state with a warm-up, the whole run without; no steady sample makes latency thresholds fail, with a warning', () => {
  const total = newHistogram();
  for (const i of ramp) total.add(i.hist);
  const steady = headlineOf(splitWarmup(ramp, warmupEnd(ramp, rule(), true)!), total, 1_200, 12_000);
  assert.equal(steady.latency.totalCount, 600);
  assert.ok(steady.figures.p99Ms < 2.1);
  assert.equal(steady.rate, 100);
  assert.equal(steady.warning, undefined);
  const whole = headlineOf(splitWarmup(ramp, warmupEnd(ramp, rule({ setting: { ms: 0 } }), true)!), total, 1_200, 12_000);
  assert.equal(whole.latency, total);
  assert.ok(whole.figures.p99Ms >= 249, 'the ramp is in a run without warm-up');
  // Samples only in the warm-up (the clients stopped receiving after it):
  const silent = ramp.map((i, k) => (k < 6 ? i : { ...i, hist: newHistogram() }));
  const empty = headlineOf(splitWarmup(silent, warmupEnd(silent, rule(), true)!), total, 1_200, 12_000);
  assert.ok(Number.isNaN(empty.figures.p99Ms));
  assert.match(empty.warning!, /no latency sample after the warm-up/);
  const [t] = evaluate([parseThreshold('p99<50ms')], { p99: empty.figures.p99Ms, operations: 0, http_requests: 0 });
  assert.equal(t!.pass, false, 'an empty steady state never passes a latency threshold');
});
