import { test } from 'node:test';
import assert from 'node:assert/strict';
import React from 'react';
import { render } from 'ink-testing-library';
import { encodeIntoCompressedBase64 } from 'hdr-histogram-js';
import { newHistogram, Meter, TopicTrack } from '../../cli/lib/bench/meter.ts';
import { addEncoded, latencySummary, latencyBars } from '../../cli/lib/bench/figures.ts';
import { parseThreshold, evaluate } from '../../cli/lib/bench/thresholds.ts';
import { parseCapture, formatCapture, remapSymbols, parseDuration } from '../../cli/lib/bench/scenario.ts';
import { expandShare, rng, type AgentPlan } from '../../cli/lib/bench/plan.ts';
import { BenchDashboard, progressLine } from '../../cli/lib/bench/dashboard.ts';
import type { DashboardState } from '../../cli/lib/bench/controller.ts';
import { zeroCounters } from '../../cli/lib/bench/wire.ts';

test('merging encoded histograms from several agents equals recording everything in one', () => {
  const r = rng(7);
  const single = newHistogram();
  const encoded: string[] = [];
  for (let agent = 0; agent < 4; agent++) {
    const h = newHistogram();
    for (let i = 0; i < 5_000; i++) {
      // A long-tailed mix: most around 2 ms, some up to 2 s.
      const v = Math.floor(r() < 0.99 ? 500 + r() * 3_000 : 10_000 + r() * 2_000_000);
      h.recordValue(v);
      single.recordValue(v);
    }
    encoded.push(encodeIntoCompressedBase64(h));
  }
  const merged = newHistogram();
  for (const e of encoded) addEncoded(merged, e);
  assert.equal(merged.totalCount, single.totalCount);
  for (const p of [0, 50, 90, 99, 99.9, 99.99, 100]) assert.equal(merged.getValueAtPercentile(p), single.getValueAtPercentile(p), `p${p}`);
  // The encoding keeps bucket counts, not the raw max: the max is the top of its bucket, as in the single histogram.
  assert.equal(merged.maxValue, single.getValueAtPercentile(100));
  assert.deepEqual({ ...latencySummary(merged), maxMs: 0 }, { ...latencySummary(single), maxMs: 0 });
});

test('thresholds parse units and pass/fail against figures', () => {
  const ts = ['p99<50ms', 'p99.9<=0.2s', 'errors<1%', 'gaps==0', 'max<500us', 'rate>10'].map(parseThreshold);
  assert.deepEqual(ts.map((t) => t.value), [50, 200, 1, 0, 0.5, 10]);
  const figs = { p99: 20, 'p99.9': 250, errors: 3, gaps: 0, max: 0.4, rate: 5, operations: 100, http_requests: 0 };
  assert.deepEqual(evaluate(ts, figs).map((r) => r.pass), [true, false, false, true, true, false]);
  assert.equal(evaluate([parseThreshold('errors<1%')], figs)[0]!.actual, 3);
  assert.throws(() => parseThreshold('p98<1ms'), /unknown metric/);
  assert.throws(() => parseThreshold('p99 about 5'), /expected/);
  assert.throws(() => parseThreshold('gaps<1%'), /% only/);
});

test('captures round-trip through formatCapture, and symbols a feed lacks are remapped', () => {
  const text = [
    '{"capture":1}',
    '{"t":0,"s":"a","ev":"connect","streams":["xyzusdt@trade"]}',
    '{"t":10,"s":"a","ev":"subscribe","streams":["btcusdt@ticker"]}',
    '{"t":20,"s":"b","ev":"connect","format":"protobuf","streams":[]}',
    '{"t":30,"s":"a","ev":"close"}',
  ].join('\n');
  const sessions = parseCapture(text);
  assert.equal(sessions.length, 2);
  assert.equal(sessions[1]!.format, 'protobuf');
  assert.deepEqual(parseCapture(formatCapture(sessions)), sessions);
  const map = remapSymbols(sessions, ['btcusdt', 'ethusdt']);
  assert.deepEqual(map, { xyzusdt: 'btcusdt' });
  assert.deepEqual((sessions[0]!.ops[0] as { streams: string[] }).streams, ['btcusdt@trade']);
  assert.throws(() => parseCapture('{"t":0,"s":"x","ev":"subscribe","streams":["a@trade"]}'), /before its connect/);
  assert.equal(parseDuration('1.5s', 'd'), 1500);
});

test('amplified copies are split across agents without overlap, jittered, scaled and cut at the duration', () => {
  const sessions = parseCapture('{"t":0,"s":"a","ev":"connect","streams":["btcusdt@trade"]}\n{"t":4000,"s":"a","ev":"close"}\n{"t":100,"s":"b","ev":"connect","streams":[]}');
  const base: AgentPlan = {
    runId: 'r', agent: 'x', index: 0, agents: 3, sessions, amplify: 10, jitterMs: 1000, speed: 2, durationMs: 1900, seed: 1,
    connect: 'router', router: 'http://r', snapshotMs: 1000, applyClockOffset: false,
  };
  const shares = [0, 1, 2].map((index) => expandShare({ ...base, index }));
  const keys = shares.flat().map((c) => c.key);
  assert.equal(keys.length, 20);
  assert.equal(new Set(keys).size, 20);
  for (const c of shares.flat()) {
    assert.ok(c.offsetMs >= 0 && c.offsetMs < 1000);
    // close at 4000 ms / speed 2 = 2000 ms + offset: past the 1900 ms duration, so cut.
    assert.ok(c.ops.every((op) => op.t < 1900 && op.ev !== 'close'));
  }
  assert.deepEqual(expandShare({ ...base, index: 1 }), shares[1], 'deterministic from the seed');
});

test('the meter checks per-topic sequences, counts resyncs and keeps snapshots out of the latency', () => {
  let now = 10_000_000;
  const m = new Meter(() => now);
  const track = new TopicTrack();
  track.subscribed(['btcusdt@depth', 'btcusdt@ticker'], now - 1_000_000);
  const frame = (topic: string, e: string, seq: number, pt: number) => Buffer.from(`{"stream":"${topic}","data":{"e":"${e}","E":1,"s":"BTCUSDT","seq":${seq},"ep":1,"pt":${pt}}}`);
  m.onJson(frame('btcusdt@depth', 'depthSnapshot', 5, 1), track); // snapshot: base of the sequence, not a sample
  m.onJson(frame('btcusdt@depth', 'depthUpdate', 6, now - 2_000), track);
  m.onJson(frame('btcusdt@depth', 'depthUpdate', 9, now - 200_000), track); // 7 and 8 missing
  m.onJson(frame('btcusdt@depth', 'depthUpdate', 9, now), track); // duplicate
  m.onJson(Buffer.from('{"e":"resync","E":1,"stream":"btcusdt@depth","reason":"slow_client"}'), track);
  m.onJson(frame('btcusdt@depth', 'depthSnapshot', 50, 1), track);
  m.onJson(frame('btcusdt@depth', 'depthUpdate', 51, now + 5), track); // pt after receipt: counted, recorded as 0
  m.onJson(Buffer.from('{"error":{"code":2,"msg":"bad"},"id":1}'), track);
  // Published before the client subscribed (a ticker's snapshot): catch-up, not a sample.
  m.onJson(frame('btcusdt@ticker', '24hrTicker', 7, now - 2_000_000), track);
  m.onJson(frame('btcusdt@ticker', '24hrTicker', 8, now - 1_000), track);
  const c = m.counters;
  assert.equal(c.msgs, 8);
  assert.equal(c.catchup, 1);
  assert.equal(c.snapshots, 2);
  assert.equal(c.gaps, 2);
  assert.equal(c.gapEvents, 1);
  assert.equal(c.outOfOrder, 1);
  assert.equal(c.resyncs, 1);
  assert.equal(c.negative, 1);
  assert.equal(c.errors, 1);
  assert.equal(m.latency.totalCount, 4);
  assert.ok(Math.abs(m.latency.maxValue - 200_000) < 200);
  now += 1;
});

function snapshotState(over: Partial<DashboardState> = {}): DashboardState {
  const h = newHistogram();
  for (let i = 1; i <= 1000; i++) h.recordValue(i * 100);
  return {
    scenario: 'hot-symbol', target: 'http://127.0.0.1:7100', elapsedS: 5, durationS: 20,
    connections: { target: 500, open: 480, failed: 2 }, msgsPerSec: 12345, latency: latencySummary(h), bars: latencyBars(h),
    counters: { ...zeroCounters(), msgs: 60000, gaps: 3, resyncs: 1, errors: 2 },
    agents: [
      { name: 'local-1', host: 'h', state: 'running', open: 240, target: 250, msgsPerSec: 6000, health: { cpu: 0.95, loopDelayP99Ms: 80, loopDelayMaxMs: 90, rssMb: 100, saturated: true } },
      { name: 'local-2', host: 'h', state: 'dead', open: 0, target: 250, msgsPerSec: 0, why: 'process exited (SIGKILL)' },
    ],
    http: [], warnings: ['agent local-1 is saturated (CPU 95%, loop p99 80 ms): latencies include its own queueing; add agents'], done: false,
    ...over,
  };
}

test('the dashboard renders a recorded snapshot: connections, rates, percentiles, histogram, agents and warnings', () => {
  const s = snapshotState();
  const { lastFrame, unmount } = render(React.createElement(BenchDashboard, { s }));
  const out = lastFrame() ?? '';
  unmount();
  assert.match(out, /target 500\s+open 480\s+failed 2/);
  assert.match(out, /msgs\/s 12,345/);
  assert.match(out, new RegExp(`p99 ${s.latency.p99Ms}`));
  assert.match(out, /p99\.9 /);
  assert.match(out, /gaps 3\s+resyncs 1/);
  assert.match(out, /≤1ms/);
  assert.match(out, /█/);
  assert.match(out, /local-2\s+dead.*SIGKILL/);
  assert.match(out, /saturated/);
  assert.match(progressLine(s), /open 480\/500/);
  // Bars account for every sample.
  assert.equal(s.bars.reduce((a, b) => a + b.count, 0), 1000);
});

test('record: a tap stream becomes capture sessions; tcp replays as tcp, gRPC as protobuf, private streams are left out', async (t) => {
  const { createServer } = await import('node:http');
  const { recordTap } = await import('../../cli/lib/bench/recorder.ts');
  const at = Date.now();
  const lines = [
    { tap: 1, source: 'gateway-9', at },
    { at: at + 10, ev: 'connect', s: '1', format: 'grpc', streams: ['btcusdt@trade'] },
    { at: at + 20, ev: 'subscribe', s: '1', streams: ['orders'] },
    { at: at + 30, ev: 'subscribe', s: '2', streams: ['ethusdt@ticker'] }, // connected before the recording
    { at: at + 40, ev: 'close', s: '1' },
  ];
  const srv = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.end(lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => srv.close(() => r())));
  const rec = await recordTap(`http://127.0.0.1:${(srv.address() as { port: number }).port}`, 2_000);
  assert.equal(rec.source, 'gateway-9');
  assert.equal(rec.privateDropped, 1);
  const [a, b] = rec.sessions;
  assert.equal(a!.format, 'protobuf');
  assert.deepEqual(a!.ops.map((o) => o.ev), ['connect', 'close']);
  assert.equal((a!.ops[0] as { protocol?: string }).protocol, 'grpc');
  assert.deepEqual(b!.ops.map((o) => o.ev), ['connect', 'subscribe']);
  lines.push({ at: at + 50, ev: 'connect', s: '3', format: 'tcp', streams: [] });
  const again = await recordTap(`http://127.0.0.1:${(srv.address() as { port: number }).port}`, 2_000);
  assert.equal(again.sessions[2]!.format, 'tcp');
  assert.doesNotMatch(formatCapture(rec.sessions), /orders/);
});

test('the dashboard re-renders a real run from its recorded agent snapshots, and the merge matches that run\'s summary', async () => {
  const { readFileSync } = await import('node:fs');
  const { LiveMerge, newTrack } = await import('../../cli/lib/bench/live-merge.ts');
  const fixtures = new URL('../fixtures/', import.meta.url);
  const meta = JSON.parse(readFileSync(new URL('bench-snapshots.summary.json', fixtures), 'utf8'));
  const snaps = readFileSync(new URL('bench-snapshots.jsonl', fixtures), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const merge = new LiveMerge(meta.agents.map((n: string) => newTrack(n, 'h')), 1_000);
  merge.startMs = Date.parse(meta.startedAt);
  const frames: string[] = [];
  for (const s of snaps) {
    assert.equal(merge.onSnapshot(s), true);
    const view = merge.view({ scenario: meta.scenario, target: 'http://router', durationS: 3, sessions: meta.sessions, http: [], warnings: [], done: false, nowMs: s.atMs });
    const { lastFrame, unmount } = render(React.createElement(BenchDashboard, { s: view }));
    frames.push(lastFrame() ?? '');
    unmount();
  }
  // Snapshot deltas add up to the run's own totals, and the merged histogram to its percentiles.
  const view = merge.view({ scenario: meta.scenario, target: 'http://router', durationS: 3, sessions: meta.sessions, http: [], warnings: [], done: true });
  assert.deepEqual(view.counters, meta.counters);
  assert.deepEqual(view.latency, meta.latencyMs);
  const last = frames[frames.length - 1]!;
  assert.match(last, /pushctl bench · hot-symbol/);
  assert.match(last, new RegExp(`p99 ${meta.latencyMs.p99Ms}`));
  assert.match(last, new RegExp(`target ${meta.sessions}`));
  for (const n of meta.agents) assert.match(last, new RegExp(n));
  assert.ok(merge.buckets.size >= 2);
});
