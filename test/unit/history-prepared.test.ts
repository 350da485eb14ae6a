// Prepared kline answers, the open candle folded from trades, the HTTP
// caching rules (ETag, 304, Cache-Control) and the byte-for-byte shape of
// every path against the old JSON.stringify(klines.map(toRow)).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryKlineStore } from '../../system/history/memory-store.ts';
import { SqliteKlineStore } from '../../system/history/sqlite-store.ts';
import { TieredReader } from '../../system/history/tiered.ts';
import { PreparedKlines } from '../../system/history/prepared.ts';
import { OpenCandles, foldTrade } from '../../system/history/open-candle.ts';
import { KlineHttp, bodyBytes, etagMatches } from '../../system/history/kline-http.ts';
import { decAdd, decCmp, decMul, etagOf, rowBytes, rowsBody } from '../../system/history/rows.ts';
import { toRow, type Kline } from '../../system/history/kline.ts';
import { makeKlines } from '../helpers/klines.ts';

const M = 60_000;
const NOW = 1_700_000_040_000 - (1_700_000_040_000 % M) + 30_000; // 30 s into a minute
const OPEN = NOW - 30_000; // the open candle's open time
const old = (ks: readonly Kline[]) => Buffer.from(JSON.stringify(ks.map(toRow)));

test('exact decimals', () => {
  assert.equal(decAdd('1.50', '0.25'), '1.75');
  assert.equal(decAdd('0.00000000', '0.00100000'), '0.00100000');
  assert.equal(decAdd('99.9', '0.15'), '100.05');
  assert.equal(decMul('27000.10', '0.00150'), '40.5001500');
  assert.equal(decCmp('100.10', '100.1'), 0);
  assert.equal(decCmp('99.99', '100.00'), -1);
  assert.equal(decAdd('-1.5', '1.25'), '-0.25');
});

test('prepared last-N answers: the old bytes, closed part rebuilt only on a close, newest row current', () => {
  const mem = new MemoryKlineStore(24 * 60 * M, () => NOW);
  const all = makeKlines('BTCUSDT', '1m', OPEN - 1200 * M, M, 1201);
  for (const k of all) mem.upsert(k);
  const prep = new PreparedKlines(mem);
  for (const n of [1, 2, 500, 1000]) {
    const p = prep.get('BTCUSDT', '1m', n, 0)!;
    assert.deepEqual(bodyBytes(p), old(all.slice(-n)), `limit ${n}`);
  }
  assert.equal(prep.fullBuilds, 4);
  const again = prep.get('BTCUSDT', '1m', 500, 0)!;
  assert.equal(prep.hits, 1);
  // The open candle moves: only the tail is rebuilt.
  const moved = { ...all[all.length - 1]!, close: '123.45', trades: 99 };
  mem.upsert(moved);
  const p2 = prep.get('BTCUSDT', '1m', 500, 0)!;
  assert.equal(prep.tailBuilds, 1);
  assert.deepEqual(bodyBytes(p2), old([...all.slice(-500, -1), moved]));
  assert.notEqual(p2.etag, again.etag);
  assert.equal(p2.etag, etagOf(bodyBytes(p2)), 'the incremental tag is the tag of the whole body');
  // A new candle opens: the closed part changes.
  const next = makeKlines('BTCUSDT', '1m', OPEN + M, M, 1)[0]!;
  mem.upsert(next);
  const p3 = prep.get('BTCUSDT', '1m', 500, 0)!;
  assert.equal(prep.fullBuilds, 5);
  assert.deepEqual(bodyBytes(p3), old([...all.slice(-499, -1), moved, next]));
  // Memory that does not reach back far enough (memoryFrom after the window's start): no prepared answer.
  assert.equal(prep.get('BTCUSDT', '1m', 500, OPEN - 10 * M), undefined);
  assert.equal(prep.get('BTCUSDT', '1m', 5000, 0), undefined);
  assert.equal(prep.get('ETHUSDT', '1m', 5, 0), undefined);
  // No older tier: memory is all there is, a shorter series is the whole answer.
  const short = new MemoryKlineStore(24 * 60 * M, () => NOW);
  for (const k of all.slice(-3)) short.upsert(k);
  assert.equal(new PreparedKlines(short).get('BTCUSDT', '1m', 500, 0), undefined);
  assert.deepEqual(bodyBytes(new PreparedKlines(short).get('BTCUSDT', '1m', 500, 0, false)!), old(all.slice(-3)));
});

test('open candle: trades after the feed\'s last candle are folded in, replayed on the next candle, and open the successor', () => {
  const mem = new MemoryKlineStore(24 * 60 * M, () => NOW);
  const oc = new OpenCandles(mem, { '1m': M });
  const base: Kline = {
    symbol: 'BTCUSDT', interval: '1m', openTime: OPEN, closeTime: OPEN + M - 1, open: '100.00', high: '101.00', low: '99.00', close: '100.50',
    volume: '2.000', quoteVolume: '201.00000', trades: 2, takerBuyBase: '1.000', takerBuyQuote: '100.50000',
  };
  oc.onKline(base, false, 12);
  oc.onTrade('BTCUSDT', { id: 12, price: '500.00', qty: '9.000', takerBuys: true }); // already in the candle: ignored
  oc.onTrade('BTCUSDT', { id: 13, price: '102.00', qty: '0.500', takerBuys: true });
  oc.onTrade('BTCUSDT', { id: 14, price: '98.50', qty: '0.250', takerBuys: false });
  const want = { ...base, high: '102.00', low: '98.50', close: '98.50', volume: '2.750', quoteVolume: '276.62500', trades: 4, takerBuyBase: '1.500', takerBuyQuote: '151.50000' };
  assert.deepEqual(mem.last('BTCUSDT', '1m'), want);
  // The feed's next copy contains trade 13 only: 14 is folded again, nothing twice.
  oc.onKline(foldTrade(base, { id: 13, price: '102.00', qty: '0.500', takerBuys: true }), false, 13);
  assert.deepEqual(mem.last('BTCUSDT', '1m'), want);
  // The feed closes the candle (with every trade), then a trade opens the next at the previous close.
  oc.onKline(want, true, 14);
  oc.onTrade('BTCUSDT', { id: 15, price: '99.00', qty: '1.000', takerBuys: true });
  const next = mem.last('BTCUSDT', '1m')!;
  assert.equal(next.openTime, OPEN + M);
  assert.deepEqual([next.open, next.high, next.low, next.close, next.volume, next.quoteVolume, next.trades], ['99.00', '99.00', '99.00', '99.00', '1.000', '99.00000', 1]);
  assert.deepEqual(mem.querySync({ symbol: 'BTCUSDT', interval: '1m', from: OPEN, to: OPEN, limit: 1, order: 'asc' })[0], want, 'the closed candle is untouched');
  // The feed's empty successor (no trades yet, last id 0) gets trade 15 back, not the closed candle's trades.
  oc.onKline({ ...want, openTime: OPEN + M, closeTime: OPEN + 2 * M - 1, open: '98.50', high: '98.50', low: '98.50', close: '98.50', volume: '0.000', quoteVolume: '0.00000', trades: 0, takerBuyBase: '0.000', takerBuyQuote: '0.00000' }, false, 0);
  const again = mem.last('BTCUSDT', '1m')!;
  assert.deepEqual([again.open, again.close, again.trades, again.volume], ['99.00', '99.00', 1, '1.000']);
});

test('HTTP answers: ETag and 304, immutable closed ranges, short-lived open ones, Binance errors, tiers byte-for-byte', async (t) => {
  const all = makeKlines('BTCUSDT', '1m', OPEN - 300 * M, M, 301); // the last one is open at NOW
  const memFrom = OPEN - 60 * M;
  const mem = new MemoryKlineStore(61 * M, () => NOW);
  const cold = new SqliteKlineStore(':memory:', 'cassandra');
  t.after(() => cold.close());
  await mem.put(all.filter((k) => k.openTime >= memFrom));
  await cold.put(all.filter((k) => k.openTime < memFrom));
  const reader = new TieredReader({ memory: mem, cold, redisHorizonMs: 0, memoryFrom: () => memFrom, now: () => NOW });
  const http = new KlineHttp({ reader, prepared: new PreparedKlines(mem), knownSymbol: (s) => s === 'BTCUSDT', memoryFrom: () => memFrom, finalCacheBytes: 1 << 20, now: () => NOW });
  const get = (qs: string, inm?: string) => http.answer(new URLSearchParams(qs), inm);

  // Hot shape: prepared, open candle → a short max-age, the old bytes.
  const hot = await get('symbol=BTCUSDT&interval=1m&limit=50');
  assert.equal(hot.status, 200);
  assert.deepEqual(bodyBytes(hot), old(all.slice(-50)));
  assert.equal(hot.headers['cache-control'], 'public, max-age=1');
  assert.equal(hot.headers['x-mp-tiers'], 'memory');
  assert.match(hot.headers.etag!, /^"[A-Za-z0-9_-]{27}"$/);
  const nm = await get('symbol=BTCUSDT&interval=1m&limit=50', hot.headers.etag);
  assert.equal(nm.status, 304);
  assert.equal(bodyBytes(nm).length, 0);
  assert.equal(nm.headers.etag, hot.headers.etag);
  assert.equal((await get('symbol=BTCUSDT&interval=1m&limit=50', '"other"')).status, 200);
  assert.equal(http.served.prepared, 3);

  // Across both tiers, old shape, every row closed and the window full: immutable.
  const q = `symbol=BTCUSDT&interval=1m&startTime=${OPEN - 100 * M}&limit=80`;
  const closed = await get(q);
  assert.equal(closed.headers['x-mp-tiers'], 'cassandra,memory');
  assert.deepEqual(bodyBytes(closed), old(all.filter((k) => k.openTime >= OPEN - 100 * M).slice(0, 80)));
  assert.equal(closed.headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.equal((await get(q, `W/${closed.headers.etag}, "x"`)).status, 304);
  const cached = await get(q);
  assert.deepEqual(bodyBytes(cached), bodyBytes(closed));
  assert.equal(cached.headers['x-mp-cache'], 'final');
  assert.equal(cached.headers['x-mp-tiers'], 'cassandra,memory', 'where the cached bytes came from');
  assert.equal(http.served.finalCache, 2);
  // An endTime whose candle has closed: immutable; one that reaches the open candle: not.
  const ended = await get(`symbol=BTCUSDT&interval=1m&endTime=${OPEN - 200 * M}&limit=5`);
  assert.deepEqual(bodyBytes(ended), old(all.filter((k) => k.openTime <= OPEN - 200 * M).slice(-5)));
  assert.equal(ended.headers['cache-control'], 'public, max-age=31536000, immutable');
  const reaching = await get(`symbol=BTCUSDT&interval=1m&startTime=${OPEN - 3 * M}&limit=10`);
  assert.equal(JSON.parse(bodyBytes(reaching).toString()).length, 4);
  assert.equal(reaching.headers['cache-control'], 'public, max-age=1');
  // Fewer than limit candles, but an endTime in the past: the window cannot gain any.
  const notFull = await get(`symbol=BTCUSDT&interval=1m&startTime=${OPEN - 3 * M}&endTime=${OPEN - M}&limit=10`);
  assert.equal(notFull.headers['cache-control'], 'public, max-age=31536000, immutable', 'an endTime in the past closes the window');

  // Each tier's rows are the bytes the old path built.
  for (const qs of [`startTime=${OPEN - 290 * M}&limit=1000`, 'limit=1000', `endTime=${OPEN - 61 * M}&limit=7`]) {
    const p = new URLSearchParams(`symbol=BTCUSDT&interval=1m&${qs}`);
    const tq = { symbol: 'BTCUSDT', interval: '1m', startTime: p.has('startTime') ? Number(p.get('startTime')) : undefined, endTime: p.has('endTime') ? Number(p.get('endTime')) : undefined, limit: Number(p.get('limit')) };
    const rows = await reader.readRows(tq);
    const ks = await reader.read(tq);
    assert.equal(`[${rows.rows.map(String).join(',')}]`, JSON.stringify(ks.klines.map(toRow)), qs);
    assert.deepEqual(rows.tiers, ks.tiers);
  }
  assert.equal(rowBytes(all[0]!).toString(), JSON.stringify(toRow(all[0]!)));
  assert.equal(rowsBody([]).toString(), '[]');
  assert.equal(rowsBody(all.slice(0, 3).map(rowBytes)).toString(), JSON.stringify(all.slice(0, 3).map(toRow)));

  // Bad parameters: Binance's error JSON, never cached.
  for (const [qs, code] of [['symbol=BTCUSDT&interval=7m', -1120], ['symbol=NOPE&interval=1m', -1121], ['interval=1m', -1102], ['symbol=BTCUSDT&interval=1m&limit=x', -1100], ['symbol=BTCUSDT&interval=1m&startTime=9&endTime=1', -1128]] as const) {
    const e = await get(qs);
    assert.equal(e.status, 400, qs);
    assert.equal((JSON.parse(bodyBytes(e).toString()) as { code: number }).code, code, qs);
    assert.equal(e.headers['cache-control'], 'no-store');
    assert.equal(e.headers.etag, undefined);
  }
  assert.ok(etagMatches('*', '"a"'));
  assert.ok(!etagMatches(undefined, '"a"'));
});
