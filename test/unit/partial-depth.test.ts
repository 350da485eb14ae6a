import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { EventSchema, type Event } from '../../proto/gen/market_pb.js';
import { MarketSimulator } from '../../system/feed/simulator.ts';
import { PartialDepth, PartialDepthClock } from '../../system/server/partial-depth.ts';

const START = Date.UTC(2026, 0, 1, 12, 0, 0);

const snapshot = (lastUpdateId: number, bid: string, ask: string): Event =>
  create(EventSchema, { topic: 'btcusdt@depth', payload: { case: 'depthSnapshot', value: { symbol: 'BTCUSDT', lastUpdateId: BigInt(lastUpdateId), bids: [{ price: bid, qty: '1' }], asks: [{ price: ask, qty: '2' }] } } });
const diff = (U: number, u: number, bids: [string, string][]): Event =>
  create(EventSchema, { topic: 'btcusdt@depth', payload: { case: 'depthUpdate', value: { symbol: 'BTCUSDT', firstUpdateId: BigInt(U), finalUpdateId: BigInt(u), bids: bids.map(([price, qty]) => ({ price, qty })), asks: [] } } });
const idOf = (p: Event['payload']) => (p.case === 'depthSnapshot' ? Number(p.value.lastUpdateId) : -1);

test('partial depth: diffs move the book but publish nothing; every tick publishes each known book once, changed or not', () => {
  const sent: Array<{ topic: string; atUs: number; id: number }> = [];
  const clock = new PartialDepthClock((d, atUs) => sent.push({ topic: d.topic, atUs, id: idOf(d.current()) }));
  const d5 = new PartialDepth('btcusdt@depth5', 'btcusdt@depth', 5, 1000);
  const waiting = new PartialDepth('ethusdt@depth5', 'ethusdt@depth', 5, 1000);
  clock.add(d5);
  clock.add(waiting);
  assert.equal(clock.timers, 1, 'one timer for the cadence, however many topics');
  clock.tick(1000, 1_000);
  assert.deepEqual(sent, [], 'no book known yet: nothing to send');
  assert.equal(d5.derive(snapshot(10, '100.00', '101.00'), true), undefined);
  assert.equal(d5.derive(diff(11, 12, [['100.50', '3']]), false), undefined, 'a diff alone publishes nothing');
  clock.tick(1000, 2_000);
  clock.tick(1000, 3_000); // no diff in this window: the same book again, as Binance does
  assert.deepEqual(sent, [{ topic: 'btcusdt@depth5', atUs: 2_000_000, id: 12 }, { topic: 'btcusdt@depth5', atUs: 3_000_000, id: 12 }]);
  const p = d5.current();
  assert.equal(p.case, 'depthSnapshot');
  if (p.case === 'depthSnapshot') assert.deepEqual(p.value.bids.map((l) => l.price), ['100.50', '100.00'], 'bids highest first');
  // A hole in the diffs: no book until the next snapshot, and nothing sent meanwhile.
  d5.derive(diff(20, 21, []), false);
  assert.equal(d5.ready, false);
  clock.tick(1000, 4_000);
  assert.equal(sent.length, 2);
  clock.tick(100, 4_000);
  assert.equal(sent.length, 2, 'another cadence does not send the 1 s topics');
  clock.remove(d5);
  clock.remove(waiting);
  assert.equal(clock.timers, 0, 'the timer stops with the last topic of its cadence');
  clock.stop();
});

test('partial depth: the book after every diff of the simulator equals its next snapshot (top levels)', () => {
  const sim = new MarketSimulator({ symbols: ['btcusdt'], rate: 50, tickerMs: 1000, klineMs: 1000, depthSnapshotMs: 1000, depthLevels: 20, seed: 3, epoch: 1, startTimeMs: START });
  const d = new PartialDepth('btcusdt@depth10@100ms', 'btcusdt@depth@100ms', 10, 100);
  let compared = 0;
  sim.advanceTo(START + 12_000, (_subject: string, ev: Event) => {
    if (ev.topic !== 'btcusdt@depth@100ms') return;
    const isSnap = ev.payload.case === 'depthSnapshot';
    if (isSnap && d.ready && ev.payload.case === 'depthSnapshot') {
      const s = ev.payload.value;
      const cur = d.current();
      assert.equal(idOf(cur), Number(s.lastUpdateId));
      if (cur.case === 'depthSnapshot') {
        assert.deepEqual(cur.value.bids.map((l) => [l.price, l.qty]), s.bids.slice(0, 10).map((l) => [l.price, l.qty]));
        assert.deepEqual(cur.value.asks.map((l) => [l.price, l.qty]), s.asks.slice(0, 10).map((l) => [l.price, l.qty]));
      }
      compared++;
    }
    d.derive(ev, isSnap);
  });
  assert.ok(compared >= 10, `compared ${compared} books`);
});

test('partial depth clock: its timer fires on the window boundaries, one event per window', async () => {
  const times: number[] = [];
  let done!: () => void;
  const three = new Promise<void>((r) => (done = r));
  const clock = new PartialDepthClock((_d, atUs) => {
    times.push(atUs);
    if (times.length === 3) done();
  });
  const d = new PartialDepth('btcusdt@depth5@100ms', 'btcusdt@depth@100ms', 5, 100);
  d.derive(snapshot(1, '1.00', '2.00'), true);
  clock.add(d);
  await three;
  clock.stop();
  assert.equal(clock.timers, 0);
  assert.ok(times.every((t) => t % 100_000 === 0), `on 100 ms boundaries: ${times.join(' ')}`);
  for (let i = 1; i < times.length; i++) assert.ok(times[i]! > times[i - 1]!, 'one event per window, never the same window twice');
});
