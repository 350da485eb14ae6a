// Before / during / after: fault windows from recorded times (and recovery
// after an instant fault), the interval cut, the exact per-phase merge, the
// per-phase thresholds and what the dashboard shows of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import React from 'react';
import { render } from 'ink-testing-library';
import { newHistogram } from '../../cli/lib/bench/meter.ts';
import { faultWindows, recoveredAt, splitPhases, type RunInterval } from '../../cli/lib/bench/phases.ts';
import { evaluate, parseThreshold } from '../../cli/lib/bench/thresholds.ts';
import { BenchDashboard, progressLine } from '../../cli/lib/bench/dashboard.ts';
import type { DashboardState } from '../../cli/lib/bench/controller.ts';
import type { FaultEvent } from '../../cli/lib/chaos/schedule.ts';
import { zeroCounters, type Counters } from '../../cli/lib/bench/wire.ts';

/** Ten 1 s intervals, 10 open, 100 msgs each at `latMs` ms unless overridden. */
function run(over: Record<number, Partial<Counters> & { open?: number; latMs?: number }> = {}): RunInterval[] {
  return Array.from({ length: 10 }, (_, i) => {
    const o = over[i + 1] ?? {};
    const hist = newHistogram();
    for (let n = 0; n < 100; n++) hist.recordValue((o.latMs ?? 2) * 1000);
    const { open, latMs: _l, ...c } = o;
    return { fromMs: i * 1000, toMs: (i + 1) * 1000, counters: { ...zeroCounters(), msgs: 100, ...c }, open: open ?? 10, hist };
  });
}

const kill = (startedMs: number): FaultEvent => ({ spec: { atMs: 4000, fault: 'kill', role: 'gateway-2' }, startedMs, ok: true, message: 'killed gateway-2 (pid 1) with SIGKILL' });

test('a kill lasts until the first calm interval after it; intervals go to the phase their midpoint is in; phases merge exactly', () => {
  const ivs = run({ 5: { unplannedCloses: 5, reconnects: 3, open: 8, latMs: 40 }, 6: { reconnects: 2, open: 10, latMs: 30 } });
  assert.equal(recoveredAt(ivs, 4_003), 6_000);
  const [w] = faultWindows([kill(4_003)], ivs, 10_000);
  assert.deepEqual({ from: w!.fromMs, to: w!.toMs, window: w!.window, fault: w!.fault }, { from: 4_003, to: 6_000, window: 'recovered', fault: 'kill gateway-2' });
  const p = splitPhases([w!], ivs)!;
  const [before, during, after] = p.phases;
  assert.deepEqual([before!.intervals, during!.intervals, after!.intervals], [4, 2, 4]);
  assert.deepEqual([before!.fromS, before!.toS, during!.fromS, during!.toS, after!.fromS, after!.toS], [0, 4, 4, 6, 6, 10]);
  assert.equal(during!.unplannedCloses, 5);
  assert.equal(during!.reconnects, 5);
  assert.equal(before!.reconnects + after!.reconnects, 0);
  assert.equal(during!.latency.count, 200);
  assert.equal(during!.latency.p50Ms >= 29 && during!.latency.p50Ms <= 31, true, `p50 ${during!.latency.p50Ms}`);
  assert.equal(during!.latency.maxMs >= 39.9 && during!.latency.maxMs <= 40.1, true);
  assert.equal(after!.latency.p99Ms < 2.1, true);
  assert.equal(during!.msgsPerSec, 100);
  assert.deepEqual([during!.openMin, during!.openMax, during!.openEnd], [8, 10, 10]);
});

test('a profile uses its recorded start and end; a kill that never settles runs to the end; a failed fault makes no phases', () => {
  const ivs = run({ 3: { gaps: 7 } });
  const profile: FaultEvent = { spec: { atMs: 2000, profile: 'rtt-100ms', target: 'clients', backend: 'auto', forMs: 3000 }, startedMs: 2_010, endedMs: 5_020, ok: true, message: 'delay→proxy' };
  const [w] = faultWindows([profile], ivs, 10_000);
  assert.deepEqual([w!.fromMs, w!.toMs, w!.window], [2_010, 5_020, 'recorded']);
  const ph = splitPhases([w!], ivs)!.phases;
  assert.deepEqual(ph.map((x) => x.intervals), [2, 3, 5]);
  assert.equal(ph[1]!.gaps, 7);

  // Two clients never come back: never calm, so the window ends with the run and "after" is empty.
  const stuck = run({ 5: { unplannedCloses: 2, open: 8 }, 6: { open: 8 }, 7: { open: 8 }, 8: { open: 8 }, 9: { open: 8 }, 10: { open: 8 } });
  const [k] = faultWindows([kill(4_000)], stuck, 10_000);
  assert.deepEqual([k!.toMs, k!.window], [10_000, 'not recovered']);
  const sp = splitPhases([k!], stuck)!.phases;
  assert.equal(sp[2]!.intervals, 0);
  assert.equal(sp[2]!.fromS, undefined);

  const failed: FaultEvent = { spec: { atMs: 1000, fault: 'kill', role: 'gateway-9' }, startedMs: 1_000, ok: false, message: 'no role gateway-9' };
  const fw = faultWindows([failed], ivs, 10_000);
  assert.equal(fw[0]!.fromMs, undefined);
  assert.equal(splitPhases(fw, ivs), undefined);
  const pending: FaultEvent = { spec: { atMs: 60_000, fault: 'kill', role: 'gateway-2' }, ok: false, message: 'pending' };
  assert.equal(splitPhases(faultWindows([pending], ivs, 10_000), ivs), undefined);
});

test('per-phase thresholds: parsed, refused when unknown, and failing when the phase is missing', () => {
  assert.deepEqual(
    ['during.p99<200ms', 'after.gaps==0', 'during.p999<1s', 'before.rate>10', 'after.unplanned_closes==0'].map((t) => parseThreshold(t).metric),
    ['during.p99', 'after.gaps', 'during.p99.9', 'before.rate', 'after.unplanned_closes'],
  );
  assert.equal(parseThreshold('during.p999<1s').value, 1000);
  assert.throws(() => parseThreshold('during.http_rps>1'), /no per-phase metric "http_rps"/);
  assert.throws(() => parseThreshold('whenever.p99<1ms'), /unknown metric "whenever.p99"/);
  assert.throws(() => parseThreshold('during.errors<1%'), /% only applies/);
  const [a, b] = evaluate([parseThreshold('after.gaps==0'), parseThreshold('during.p99<200ms')], { 'after.gaps': Number.NaN, 'during.p99': 150, operations: 0, http_requests: 0 });
  assert.equal(a!.pass, false);
  assert.equal(b!.pass, true);
});

test('the dashboard shows the current phase, fault markers and each phase\'s figures', () => {
  const ivs = run({ 5: { unplannedCloses: 5, reconnects: 5, open: 8, latMs: 40 } });
  const windows = faultWindows([kill(4_003), { spec: { atMs: 9000, fault: 'restart', role: 'server-1' }, ok: false, message: 'pending' }], ivs, 10_000);
  const phases = splitPhases(windows, ivs)!.phases;
  const s: DashboardState = {
    scenario: 'gateway-kill', target: 'http://router', elapsedS: 7, durationS: 10, connections: { target: 10, open: 10, failed: 0 }, msgsPerSec: 100,
    latency: { count: 1, p50Ms: 2, p90Ms: 2, p99Ms: 2, p999Ms: 2, maxMs: 40, meanMs: 2 }, bars: [], counters: zeroCounters(), agents: [], http: [], warnings: [], done: false,
    faults: windows, phase: 'after', phases,
  };
  const { lastFrame, unmount } = render(React.createElement(BenchDashboard, { s }));
  const frame = lastFrame() ?? '';
  unmount();
  assert.match(frame, /phase after/);
  assert.match(frame, /✓ kill gateway-2 @4\.0s→5\.0s/);
  assert.match(frame, /· restart server-1/);
  assert.match(frame, /during\s+4–5\s+100\s+40/);
  assert.match(progressLine(s), /^\s+7s \[after\]/);
});
