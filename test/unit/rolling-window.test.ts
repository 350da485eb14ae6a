// Rolling-window statistics over a known trade sequence: the minute-aligned
// open time, OHLC, exact volumes, weighted average, trade ids and count, a
// window rolling off its oldest minute, a window without trades, more
// decimals arriving later, seven days' retention, a feed restart, and the
// wire reader that takes trades off the bus without a full decode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RollingWindow, MINUTE_MS } from '../../system/server/rolling-window.ts';
import { RollingTickers } from '../../system/server/rolling-tickers.ts';
import { parseWindowSize } from '../../system/server/rolling-rest.ts';
import { isBinanceError } from '../../system/history/binance-api.ts';
import { readTrade } from '../../system/server/trade-reader.ts';
import { create, toBinary } from '@bufbuild/protobuf';
import { EventSchema } from '../../proto/gen/market_pb.js';

const T = Date.UTC(2026, 0, 1, 12, 0, 0);
const H = 60 * MINUTE_MS;
const at = (min: number, sec: number) => T + min * MINUTE_MS + sec * 1000;

test('a window sums its trades exactly and rolls its oldest minute off', () => {
  const w = new RollingWindow(T - H);
  assert.equal(w.stats(H, T), undefined, 'no trade yet: nothing to say');
  assert.ok(w.add({ id: 1, price: '100.00', qty: '1.000', time: at(0, 10) }));
  assert.ok(w.add({ id: 2, price: '102.50', qty: '0.500', time: at(0, 30) }));
  assert.ok(w.add({ id: 3, price: '99.00', qty: '2.000', time: at(1, 0) }));
  assert.equal(w.add({ id: 3, price: '1.00', qty: '9.000', time: at(1, 1) }), false, 'a trade seen before is not counted twice');
  assert.equal(w.add({ id: 9, price: '1e5', qty: '1', time: at(1, 1) }), false, 'not a decimal');
  assert.equal(w.add({ id: 9, price: '99999999999999999.00', qty: '1', time: at(1, 1) }), false, 'beyond exact doubles');

  // 1h ending at 12:59:30: from floor(11:59:30) = 11:59, every trade in.
  assert.deepEqual(w.stats(H, at(59, 30)), {
    openTime: T - MINUTE_MS, closeTime: at(59, 30),
    open: '100.00', high: '102.50', low: '99.00', close: '99.00',
    priceChange: '-1.00', priceChangePercent: '-1.000',
    // 100×1 + 102.5×0.5 + 99×2 = 349.25 over 3.5 = 99.7857…
    weightedAvgPrice: '99.79', volume: '3.500', quoteVolume: '349.25000',
    firstId: 1, lastId: 3, count: 3,
  });

  assert.ok(w.add({ id: 4, price: '101.00', qty: '1.000', time: at(61, 5) }));
  // 1h ending at 13:01:10: from 12:01, so minute 12:00 (ids 1, 2) rolled off.
  assert.deepEqual(w.stats(H, at(61, 10)), {
    openTime: at(1, 0), closeTime: at(61, 10),
    open: '99.00', high: '101.00', low: '99.00', close: '101.00',
    priceChange: '2.00', priceChangePercent: '2.020',
    weightedAvgPrice: '99.67', volume: '3.000', quoteVolume: '299.00000',
    firstId: 3, lastId: 4, count: 2,
  });
  // 2h still holds all four.
  const wide = w.stats(2 * H, at(61, 10))!;
  assert.equal(wide.count, 4);
  assert.equal(wide.volume, '4.500');
  assert.equal(wide.high, '102.50');
  assert.equal(wide.lastId - wide.firstId + 1, wide.count);
});

test('a window without trades stands at the last price before it, with no trade ids', () => {
  const w = new RollingWindow(T);
  w.add({ id: 7, price: '5.5', qty: '2', time: at(0, 0) });
  const s = w.stats(MINUTE_MS, at(30, 0))!;
  assert.deepEqual(
    { o: s.open, h: s.high, l: s.low, c: s.close, w: s.weightedAvgPrice, v: s.volume, q: s.quoteVolume, p: s.priceChange, F: s.firstId, L: s.lastId, n: s.count },
    { o: '5.5', h: '5.5', l: '5.5', c: '5.5', w: '5.5', v: '0', q: '0.0', p: '0.0', F: -1, L: -1, n: 0 },
  );
});

test('a window opens no earlier than the trades it has seen, and more decimals later stay exact', () => {
  const w = new RollingWindow(at(0, 20));
  w.add({ id: 1, price: '10.5', qty: '1', time: at(0, 30) });
  w.add({ id: 2, price: '10.125', qty: '0.25', time: at(0, 40) });
  const s = w.stats(24 * H, at(1, 0))!;
  assert.equal(s.openTime, at(0, 20), 'not 24 h earlier: nothing before the start was seen');
  assert.equal(s.open, '10.500');
  assert.equal(s.low, '10.125');
  assert.equal(s.volume, '1.25');
  assert.equal(s.quoteVolume, '13.03125');
});

test('seven days are kept, older minutes are dropped', () => {
  const w = new RollingWindow(T);
  for (let d = 0; d < 10; d++) w.add({ id: d + 1, price: '1.0', qty: '1', time: T + d * 24 * H });
  assert.equal(w.buckets, 9, 'the last 7 days and the minute before, and one older minute: the base of their running totals');
  const s = w.stats(7 * 24 * H, T + 9 * 24 * H)!;
  assert.equal(s.count, 8);
  assert.equal(s.firstId, 3);
});

test('a restarted feed (newer epoch) starts the window again: its trade ids start again', () => {
  const r = new RollingTickers(T);
  r.add('btcusdt', T, { id: 1, price: '1.00', qty: '1', time: at(0, 1) });
  r.add('btcusdt', T, { id: 2, price: '2.00', qty: '1', time: at(0, 2) });
  r.add('btcusdt', at(5, 0), { id: 1, price: '3.00', qty: '1', time: at(5, 1) });
  r.add('btcusdt', T, { id: 3, price: '9.00', qty: '1', time: at(5, 2) }); // a straggler of the old epoch
  const s = r.stats('btcusdt', H, at(6, 0))!;
  assert.deepEqual({ open: s.open, count: s.count, F: s.firstId, L: s.lastId, O: s.openTime }, { open: '3.00', count: 1, F: 1, L: 1, O: at(5, 0) });
  const t = r.ticker('btcusdt', H, at(6, 0))!;
  assert.equal(t.symbol, 'BTCUSDT');
  assert.equal(t.lastPrice, '3.00');
});

test('windowSize: one unit, 1m-59m, 1h-23h, 1d-7d, default 1d', () => {
  assert.equal(parseWindowSize(null), 24 * H);
  assert.equal(parseWindowSize('1m'), MINUTE_MS);
  assert.equal(parseWindowSize('59m'), 59 * MINUTE_MS);
  assert.equal(parseWindowSize('23h'), 23 * H);
  assert.equal(parseWindowSize('7d'), 7 * 24 * H);
  for (const bad of ['', '0m', '60m', '24h', '8d', '1d2h', '1w', '01h', 'h', '1M']) {
    const e = parseWindowSize(bad);
    assert.ok(isBinanceError(e), bad);
    assert.equal(e.code, -1100, bad);
  }
});

test('readTrade reads a trade event off the wire as a full decode would; anything else is undefined', () => {
  const trade = (id: bigint, price: string, qty: string, time: bigint) =>
    toBinary(EventSchema, create(EventSchema, { topic: 'btcusdt@trade', seq: 9n, epoch: 3n, publishTimeUs: 1n, payload: { case: 'trade', value: { symbol: 'BTCUSDT', tradeId: id, price, qty, tradeTime: time, buyerIsMaker: true } } }));
  assert.deepEqual(readTrade(trade(1n, '65000.01', '0.00123', 1_767_225_600_123n)), { id: 1, price: '65000.01', qty: '0.00123', time: 1_767_225_600_123 });
  const long = `1.${'0'.repeat(40)}1`;
  assert.deepEqual(readTrade(trade(2n ** 40n, long, '7', 5n)), { id: 2 ** 40, price: long, qty: '7', time: 5 });
  const ticker = toBinary(EventSchema, create(EventSchema, { topic: 'btcusdt@ticker', seq: 1n, payload: { case: 'ticker', value: { symbol: 'BTCUSDT', lastPrice: '1' } } }));
  assert.equal(readTrade(ticker), undefined);
  const whole = trade(3n, '1.5', '2', 10n);
  assert.equal(readTrade(whole.subarray(0, whole.length - 3)), undefined, 'truncated');
  assert.equal(readTrade(new Uint8Array([0xff, 0xff])), undefined, 'garbage');
});
