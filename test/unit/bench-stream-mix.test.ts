// bench:fanout --mix: the spec parser, the subscription plan, the per-kind
// rate model against the feed's own simulator, and the raw server's tape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Event } from '../../proto/gen/market_pb.js';
import { MarketSimulator } from '../../system/feed/simulator.ts';
import { expectedMixPerSec, kindRate, MIX_KINDS, parseMix, planMixSubscriptions, POPULATION_MIX, type MixKind } from '../../bench/lib/stream-mix.ts';
import { recordTape, stampPayload } from '../../bench/lib/mix-tape.ts';
import { jsonPublishTimeUs, protobufPublishTimeUs } from '../../bench/lib/frame-time.ts';

test('parseMix reads weights and the population default, and refuses bad specs clearly', () => {
  assert.deepEqual(parseMix('ticker:40,depth@100ms:30,trade:20,bookTicker:10'), [
    { kind: 'ticker', weight: 40 }, { kind: 'depth@100ms', weight: 30 }, { kind: 'trade', weight: 20 }, { kind: 'bookTicker', weight: 10 },
  ]);
  assert.deepEqual(parseMix('population'), parseMix(POPULATION_MIX));
  assert.throws(() => parseMix(''), /--mix: empty/);
  assert.throws(() => parseMix('ticker'), /"ticker" is not KIND:WEIGHT/);
  assert.throws(() => parseMix('aggTrade:5'), /unknown stream kind "aggTrade" \(supported: trade, ticker/);
  assert.throws(() => parseMix('ticker:0'), /weight of "ticker" must be above 0/);
  assert.throws(() => parseMix('ticker:1,ticker:2'), /"ticker" given twice/);
  assert.throws(() => parseMix('ticker:-1'), /not KIND:WEIGHT/);
});

test('planMixSubscriptions: symbols round-robin, exact weights, deterministic, no repeats per client', () => {
  const mix = parseMix('ticker:40,depth@100ms:30,trade:20,bookTicker:10');
  const a = planMixSubscriptions(200, 50, 5, mix);
  const b = planMixSubscriptions(200, 50, 5, mix);
  assert.deepEqual(a.clients, b.clients, 'the same seed gives the same plan');
  assert.notDeepEqual(planMixSubscriptions(200, 50, 5, mix, 2).clients, a.clients, 'another seed, another plan');
  assert.deepEqual(a.perKind, { ticker: 400, 'depth@100ms': 300, trade: 200, bookTicker: 100 });
  const counted: Record<string, number> = {};
  a.clients.forEach((streams, i) => {
    assert.equal(new Set(streams).size, streams.length);
    streams.forEach((s, j) => {
      assert.equal(s.slice(0, s.indexOf('@')), a.symbols[(i * 5 + j) % 50]);
      const kind = s.slice(s.indexOf('@') + 1);
      counted[kind] = (counted[kind] ?? 0) + 1;
    });
  });
  assert.deepEqual(counted, a.perKind);
  assert.deepEqual(a.subscribersPerSymbol, new Array(50).fill(20));
  // Weights that do not divide the total still add up to it.
  const odd = planMixSubscriptions(7, 3, 1, parseMix('ticker:1,trade:1,depth:1'));
  assert.equal(Object.values(odd.perKind).reduce((x, y) => x + y, 0), 7);
  assert.throws(() => planMixSubscriptions(10, 3, 4, mix), /cannot exceed --symbols/);
});

test('kindRate matches what the feed simulator publishes per symbol', () => {
  const cad = { tickerMs: 1000, klineMs: 1000 };
  const symbols = ['btcusdt', 'sym031usdt'];
  const seconds = 120;
  for (const rate of [0.5, 4, 60]) {
    const start = Date.UTC(2024, 0, 1, 12, 0, 0, 300);
    const sim = new MarketSimulator({ symbols, rate, ...cad, depthSnapshotMs: 1000, depthLevels: 20, seed: 3, epoch: 1, startTimeMs: start });
    const counts: Record<string, number> = {};
    sim.advanceTo(start + seconds * 1000, (_s: string, ev: Event) => {
      if (ev.payload.case === 'depthSnapshot') return; // seeds the servers' books, never a client frame
      const kind = ev.topic.slice(ev.topic.indexOf('@') + 1);
      counts[kind] = (counts[kind] ?? 0) + 1;
    });
    const topicKind: Record<MixKind, string> = { trade: 'trade', ticker: 'ticker', miniTicker: 'miniticker', bookTicker: 'bookticker', depth: 'depth', 'depth@100ms': 'depth@100ms', kline_1m: 'kline_1m' };
    for (const kind of MIX_KINDS) {
      const model = kindRate(kind, rate, cad);
      const seen = (counts[topicKind[kind]] ?? 0) / symbols.length / seconds;
      assert.ok(Math.abs(seen - model) <= 0.05 * model + 0.02, `${kind} at ${rate} trades/s: simulator ${seen}/s, model ${model}/s`);
    }
  }
  const plan = planMixSubscriptions(10, 10, 2, parseMix('trade:1,ticker:1'));
  assert.equal(expectedMixPerSec(plan, 7, cad), 10 * 7 + 10 * 1);
});

test('the raw server tape holds only subscribed topics, with pt restamped where the meter reads it', () => {
  const streams = ['btcusdt@ticker', 'btcusdt@depth@100ms', 'ethusdt@bookTicker', 'ethusdt@kline_1m', 'ethusdt@trade', 'btcusdt@miniTicker'];
  const tape = recordTape({ symbols: ['btcusdt', 'ethusdt'], streams, rate: 20, tickerMs: 1000, klineMs: 1000, depthSnapshotMs: 1000, seconds: 4, maxEntries: 10_000, format: 'json' });
  const topics = new Set(tape.entries.map((e) => e.topic));
  assert.deepEqual([...topics].sort(), ['btcusdt@depth@100ms', 'btcusdt@miniticker', 'btcusdt@ticker', 'ethusdt@bookticker', 'ethusdt@kline_1m', 'ethusdt@trade']);
  assert.equal(tape.lengthUs, 4_000_000);
  const trades = tape.entries.filter((e) => e.topic === 'ethusdt@trade').length;
  assert.ok(trades >= 79 && trades <= 81, `${trades} trades in 4 s at 20/s`);
  for (const e of tape.entries) {
    const json = stampPayload(e, 1_234_567_890_123_456);
    assert.equal(jsonPublishTimeUs(json), 1_234_567_890_123_456);
    assert.ok(JSON.parse(json.toString()).stream);
  }
  // protobuf: the Event itself, re-encoded with the new pt where the meter finds it (the raw server sends these bytes as a binary message).
  const proto = recordTape({ symbols: ['btcusdt'], streams: ['btcusdt@depth@100ms'], rate: 20, tickerMs: 1000, klineMs: 1000, depthSnapshotMs: 1000, seconds: 1, maxEntries: 100, format: 'protobuf' });
  assert.equal(proto.entries.length, 10);
  assert.equal(protobufPublishTimeUs(stampPayload(proto.entries[3]!, 42_000_000)), 42_000_000);
  assert.throws(() => recordTape({ symbols: ['btcusdt'], streams: ['btcusdt@trade'], rate: 0, tickerMs: 1000, klineMs: 1000, depthSnapshotMs: 1000, seconds: 1, maxEntries: 10, format: 'json' }), /tape is empty/);
});
