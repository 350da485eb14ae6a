import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseKlineQuery, isBinanceError, answerKlines } from '../../system/history/binance-api.ts';
import { MemoryKlineStore } from '../../system/history/memory-store.ts';
import { SqliteKlineStore } from '../../system/history/sqlite-store.ts';
import { TieredReader } from '../../system/history/tiered.ts';
import { makeKlines, expected } from '../helpers/klines.ts';

const M = 60_000;
const NOW = 1_700_000_040_000 - (1_700_000_040_000 % M);

const q = (s: string) => parseKlineQuery(new URLSearchParams(s), (sym) => sym === 'BTCUSDT');

test('Binance parameter checks and error bodies', () => {
  assert.deepEqual(q('symbol=BTCUSDT&interval=2m'), { status: 400, code: -1120, msg: 'Invalid interval.' });
  assert.deepEqual(q('symbol=ETHBTC&interval=1m'), { status: 400, code: -1121, msg: 'Invalid symbol.' });
  const missing = q('interval=1m');
  assert.ok(isBinanceError(missing) && missing.code === -1102 && missing.msg.includes("'symbol'"));
  const bad = q('symbol=BTCUSDT&interval=1m&startTime=abc');
  assert.ok(isBinanceError(bad) && bad.code === -1100 && bad.msg.includes("'startTime'"));
  const zero = q('symbol=BTCUSDT&interval=1m&limit=0');
  assert.ok(isBinanceError(zero) && zero.code === -1100);
  const order = q('symbol=BTCUSDT&interval=1m&startTime=10&endTime=5');
  assert.ok(isBinanceError(order) && order.code === -1128);
  assert.deepEqual(q('symbol=btcusdt&interval=1m'), { symbol: 'BTCUSDT', interval: '1m', startTime: undefined, endTime: undefined, limit: 500 });
  const clamped = q('symbol=BTCUSDT&interval=1M&limit=5000&startTime=0&endTime=9');
  assert.ok(!isBinanceError(clamped) && clamped.limit === 1000 && clamped.interval === '1M' && clamped.startTime === 0 && clamped.endTime === 9);
});

test('memory tier: bounded to its horizon, in-progress candles replaced in place', () => {
  let now = NOW;
  const mem = new MemoryKlineStore(10 * M, () => now);
  for (const k of makeKlines('BTCUSDT', '1m', NOW - 20 * M, M, 21)) mem.upsert(k);
  const all = mem.querySync({ symbol: 'BTCUSDT', interval: '1m', from: 0, to: Number.MAX_SAFE_INTEGER, limit: 1000, order: 'asc' });
  assert.equal(all.length, 11);
  assert.equal(all[0]!.openTime, NOW - 10 * M);
  mem.upsert({ ...all[10]!, close: '999.00' });
  const last = mem.querySync({ symbol: 'BTCUSDT', interval: '1m', from: 0, to: Number.MAX_SAFE_INTEGER, limit: 1, order: 'desc' });
  assert.equal(last.length, 1);
  assert.equal(last[0]!.close, '999.00');
  now += 5 * M;
  mem.upsert(makeKlines('BTCUSDT', '1m', NOW + M, M, 1)[0]!);
  assert.equal(mem.querySync({ symbol: 'BTCUSDT', interval: '1m', from: 0, to: NOW - 6 * M, limit: 1000, order: 'asc' }).length, 0);
});

test('tiered reader: exact answers inside each tier and across both boundaries', async (t) => {
  // memory: last 60 min; middle tier: 60..180 min ago; cold: older. Each tier holds ONLY its slice,
  // so any range routed to the wrong tier would come back with a hole.
  const all = makeKlines('BTCUSDT', '1m', NOW - 400 * M, M, 401);
  const memFrom = NOW - 60 * M;
  const redisFrom = NOW - 180 * M;
  const mem = new MemoryKlineStore(60 * M, () => NOW);
  const mid = new SqliteKlineStore(':memory:', 'redis');
  const cold = new SqliteKlineStore(':memory:', 'cassandra');
  t.after(() => Promise.all([mid.close(), cold.close()]));
  await mem.put(all.filter((k) => k.openTime >= memFrom));
  await mid.put(all.filter((k) => k.openTime >= redisFrom && k.openTime < memFrom));
  await cold.put(all.filter((k) => k.openTime < redisFrom));
  const reader = new TieredReader({ memory: mem, redis: mid, cold, redisHorizonMs: 180 * M, memoryFrom: () => memFrom, now: () => NOW });
  const cases: Array<[{ startTime?: number; endTime?: number; limit: number }, string[]]> = [
    [{ limit: 500 }, ['memory', 'redis', 'cassandra']],
    [{ limit: 30 }, ['memory']],
    [{ limit: 100 }, ['memory', 'redis']],
    [{ startTime: NOW - 30 * M, endTime: NOW - 10 * M, limit: 500 }, ['memory']],
    [{ startTime: NOW - 120 * M, endTime: NOW - 90 * M, limit: 500 }, ['redis']],
    [{ startTime: NOW - 300 * M, endTime: NOW - 200 * M, limit: 500 }, ['cassandra']],
    [{ startTime: NOW - 70 * M, endTime: NOW - 50 * M, limit: 500 }, ['redis', 'memory']],
    [{ startTime: NOW - 190 * M, endTime: NOW - 170 * M, limit: 500 }, ['cassandra', 'redis']],
    [{ startTime: NOW - 190 * M, endTime: NOW, limit: 1000 }, ['cassandra', 'redis', 'memory']],
    [{ startTime: NOW - 190 * M, limit: 5 }, ['cassandra']],
    [{ startTime: memFrom - M, endTime: memFrom, limit: 500 }, ['redis', 'memory']],
    [{ startTime: redisFrom - M, endTime: redisFrom, limit: 500 }, ['cassandra', 'redis']],
    [{ endTime: NOW - 170 * M, limit: 20 }, ['redis', 'cassandra']],
    [{ startTime: 0, endTime: 1000, limit: 500 }, ['cassandra']],
  ];
  for (const [query, tiers] of cases) {
    const r = await reader.read({ symbol: 'BTCUSDT', interval: '1m', ...query });
    const want = expected(all, query);
    assert.deepEqual(r.klines.map((k) => k.openTime), want.map((k) => k.openTime), JSON.stringify(query));
    assert.deepEqual(r.klines, want, JSON.stringify(query));
    assert.deepEqual(r.tiers, tiers, JSON.stringify(query));
  }
  const res = await answerKlines({ symbol: 'BTCUSDT', interval: '1m', limit: 2 }, (x) => reader.read(x));
  assert.equal(res.status, 200);
  assert.equal(res.headers['x-mp-tiers'], 'memory');
  const k = all[all.length - 1]!;
  assert.deepEqual((res.body as unknown[])[1], [k.openTime, k.open, k.high, k.low, k.close, k.volume, k.closeTime, k.quoteVolume, k.trades, k.takerBuyBase, k.takerBuyQuote, '0']);
});

test('tiered reader: a failing middle tier falls through to cold; a failing cold tier is a clear 503', async (t) => {
  const all = makeKlines('BTCUSDT', '1m', NOW - 200 * M, M, 201);
  const mem = new MemoryKlineStore(60 * M, () => NOW);
  const cold = new SqliteKlineStore(':memory:', 'cassandra');
  t.after(() => cold.close());
  await mem.put(all.filter((k) => k.openTime >= NOW - 60 * M));
  await cold.put(all);
  const broken = { name: 'redis', put: async () => {}, query: async () => { throw new Error('connection refused'); }, close: async () => {} };
  const reader = new TieredReader({ memory: mem, redis: broken, cold, redisHorizonMs: 180 * M, memoryFrom: () => NOW - 60 * M, now: () => NOW });
  const r = await reader.read({ symbol: 'BTCUSDT', interval: '1m', limit: 150 });
  assert.deepEqual(r.klines, expected(all, { limit: 150 }));
  assert.deepEqual(r.tiers, ['memory', 'cassandra']);
  assert.deepEqual(r.degraded, ['redis']);

  const deadCold = { name: 'cassandra', put: async () => {}, query: async () => { throw new Error('no host available'); }, close: async () => {} };
  const reader2 = new TieredReader({ memory: mem, cold: deadCold, redisHorizonMs: 180 * M, memoryFrom: () => NOW - 60 * M, now: () => NOW });
  const recent = await answerKlines({ symbol: 'BTCUSDT', interval: '1m', limit: 30 }, (x) => reader2.read(x));
  assert.equal(recent.status, 200);
  assert.equal((recent.body as unknown[]).length, 30);
  const old = await answerKlines({ symbol: 'BTCUSDT', interval: '1m', startTime: NOW - 100 * M, limit: 10 }, (x) => reader2.read(x));
  assert.equal(old.status, 503);
  assert.equal((old.body as { code: number }).code, -1001);
  assert.match((old.body as { msg: string }).msg, /unavailable: the cassandra tier is down/);
});
