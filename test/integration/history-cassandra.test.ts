// Kline history on the real stores: ONE Cassandra node (from Maven Central's
// jars, see scripts/cassandra/) shared by every test here, plus real Redis and
// nats-server processes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { toBinary, create } from '@bufbuild/protobuf';
import { jetstream } from '@nats-io/jetstream';
import { EventSchema } from '../../proto/gen/market_pb.js';
import { startCassandra, type CassandraNode } from '../../system/history/cassandra-node.ts';
import { CassandraKlineStore, ROWS_PER_BUCKET } from '../../system/history/cassandra-store.ts';
import { RedisKlineStore } from '../../system/history/redis-store.ts';
import { MemoryKlineStore } from '../../system/history/memory-store.ts';
import { TieredReader } from '../../system/history/tiered.ts';
import { KlineArchiver } from '../../system/history/archiver.ts';
import { closedKlineSubject, ensureKlineStream } from '../../system/history/kline-stream.ts';
import { toRow, type Kline } from '../../system/history/kline.ts';
import { KlineHttp, bodyBytes } from '../../system/history/kline-http.ts';
import { PreparedKlines } from '../../system/history/prepared.ts';
import { connectNats } from '../../system/common/nats-bus.ts';
import { createLogger } from '../../system/common/logger.ts';
import { startNats, startRedis, freePort } from '../helpers/servers.ts';
import { makeKlines, expected } from '../helpers/klines.ts';

const M = 60_000;
const log = createLogger('history-test');
let node: CassandraNode;

before(async () => {
  node = await startCassandra();
  process.stderr.write(`cassandra: CQL ${node.contactPoint} ready in ${node.startMs} ms, RSS ${node.rssMb()} MB\n`);
});
after(async () => {
  await node?.stop();
  await log.close();
});

const cassandra = async (keyspace: string) => new CassandraKlineStore({ contactPoints: node.contactPoint, keyspace }).connect();

const klineEvent = (k: Kline, seq: number) =>
  toBinary(
    EventSchema,
    create(EventSchema, {
      topic: `${k.symbol.toLowerCase()}@kline_${k.interval}`,
      seq: BigInt(seq),
      payload: {
        case: 'kline',
        value: {
          symbol: k.symbol, interval: k.interval, openTime: BigInt(k.openTime), closeTime: BigInt(k.closeTime), open: k.open, high: k.high, low: k.low, close: k.close,
          volume: k.volume, quoteVolume: k.quoteVolume, tradeCount: BigInt(k.trades), takerBuyBaseVolume: k.takerBuyBase, takerBuyQuoteVolume: k.takerBuyQuote, closed: true,
        },
      },
    }),
  );

test('Cassandra store: ranges across buckets, both orders, limits, idempotent upserts', async (t) => {
  const store = await cassandra('hist_store');
  t.after(() => store.close());
  const first = Date.UTC(2024, 0, 1) - 700 * M; // straddles two day-buckets of 1m candles
  const all = makeKlines('BTCUSDT', '1m', first, M, 3000);
  await store.put(all);
  await store.put(all.slice(0, 100)); // a replay: no duplicates
  const q = (from: number, to: number, limit: number, order: 'asc' | 'desc') => store.query({ symbol: 'BTCUSDT', interval: '1m', from, to, limit, order });
  const everything = await q(0, Number.MAX_SAFE_INTEGER, 10_000, 'asc');
  assert.equal(everything.length, 3000);
  assert.deepEqual(everything, all);
  assert.ok(3000 > ROWS_PER_BUCKET);
  const mid = all[1400]!.openTime;
  assert.deepEqual(await q(mid, mid + 200 * M, 1000, 'asc'), all.slice(1400, 1601));
  assert.deepEqual(await q(mid, Number.MAX_SAFE_INTEGER, 5, 'asc'), all.slice(1400, 1405));
  assert.deepEqual(await q(0, mid, 5, 'desc'), all.slice(1396, 1401).reverse());
  assert.deepEqual(await q(0, first - 1, 5, 'desc'), []);
  // Far ends: the buckets read directly are empty, the listed ones hold the data.
  assert.deepEqual(await q(0, Number.MAX_SAFE_INTEGER, 3, 'desc'), all.slice(2997).reverse());
  assert.deepEqual(await q(first - 5 * 24 * 60 * M, Number.MAX_SAFE_INTEGER, 3, 'asc'), all.slice(0, 3));
  assert.deepEqual(await q(first - 5 * 24 * 60 * M, all[2999]!.openTime + 9 * 24 * 60 * M, 3000, 'desc'), [...all].reverse());
  await store.put([{ ...all[5]!, close: '1.23' }]);
  const [k5] = await q(all[5]!.openTime, all[5]!.openTime, 10, 'asc');
  assert.equal(k5!.close, '1.23');
  assert.equal((await store.query({ symbol: 'ETHUSDT', interval: '1m', from: 0, to: Number.MAX_SAFE_INTEGER, limit: 10, order: 'asc' })).length, 0);
  assert.deepEqual(await store.symbols(), ['BTCUSDT']);
});

test('a klines table from before the row blob gains the column; old rows still read, byte-identical', async (t) => {
  const ks = 'hist_legacy';
  const raw = new CassandraKlineStore({ contactPoints: node.contactPoint, keyspace: ks }).client;
  t.after(() => raw.shutdown());
  await raw.execute(`CREATE KEYSPACE IF NOT EXISTS ${ks} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
  // The layout as it was created before: no row column.
  await raw.execute(`CREATE TABLE ${ks}.klines (symbol text, interval text, bucket bigint, open_time bigint, close_time bigint,
    open text, high text, low text, close text, volume text, quote_volume text, trades bigint, taker_buy_base text, taker_buy_quote text,
    PRIMARY KEY ((symbol, interval, bucket), open_time)) WITH CLUSTERING ORDER BY (open_time ASC)`);
  await raw.execute(`CREATE TABLE ${ks}.kline_buckets (symbol text, interval text, bucket bigint, PRIMARY KEY ((symbol, interval), bucket))`);
  const all = makeKlines('BTCUSDT', '1m', Date.UTC(2024, 0, 1) - 30 * M, M, 60);
  const old = all.slice(0, 40);
  for (const k of old) {
    await raw.execute(
      `INSERT INTO ${ks}.klines (symbol, interval, bucket, open_time, close_time, open, high, low, close, volume, quote_volume, trades, taker_buy_base, taker_buy_quote) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [k.symbol, k.interval, Math.floor(k.openTime / (M * ROWS_PER_BUCKET)), k.openTime, k.closeTime, k.open, k.high, k.low, k.close, k.volume, k.quoteVolume, k.trades, k.takerBuyBase, k.takerBuyQuote],
      { prepare: true },
    );
    await raw.execute(`INSERT INTO ${ks}.kline_buckets (symbol, interval, bucket) VALUES (?, ?, ?)`, [k.symbol, k.interval, Math.floor(k.openTime / (M * ROWS_PER_BUCKET))], { prepare: true });
  }
  const store = await cassandra(ks); // adds the column
  t.after(() => store.close());
  await store.put(all.slice(40)); // new rows carry the blob
  const cols = await store.client.execute('SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?', [ks, 'klines'], { prepare: true });
  assert.ok(cols.rows.some((r) => r.column_name === 'row'), 'the row column was added');
  for (const order of ['asc', 'desc'] as const) {
    const rows = await store.queryRows({ symbol: 'BTCUSDT', interval: '1m', from: 0, to: Number.MAX_SAFE_INTEGER, limit: 1000, order });
    const want = order === 'asc' ? all : [...all].reverse();
    assert.deepEqual(rows.map(String), want.map((k) => JSON.stringify(toRow(k))), order);
  }
  // Only new rows in range: served from their blobs, same bytes.
  const fresh = await store.queryRows({ symbol: 'BTCUSDT', interval: '1m', from: all[40]!.openTime, to: Number.MAX_SAFE_INTEGER, limit: 5, order: 'asc' });
  assert.deepEqual(fresh.map(String), all.slice(40, 45).map((k) => JSON.stringify(toRow(k))));
  assert.deepEqual(await store.query({ symbol: 'BTCUSDT', interval: '1m', from: 0, to: Number.MAX_SAFE_INTEGER, limit: 1000, order: 'asc' }), all);
  // Connecting again does not try to add it twice.
  const again = await cassandra(ks);
  await again.close();
});

test('three real tiers: exact answers inside each tier and straddling both boundaries', async (t) => {
  const redisSrv = await startRedis();
  t.after(() => redisSrv.stop());
  const NOW = Math.floor(Date.now() / M) * M;
  const memFrom = NOW - 60 * M;
  const redisHorizon = 180 * M;
  const redis = await new RedisKlineStore({ url: redisSrv.url, horizonMs: redisHorizon, now: () => NOW }).connect();
  const cold = await cassandra('hist_tiers');
  t.after(() => Promise.all([redis.close(), cold.close()]));
  const all = makeKlines('ETHUSDT', '1m', NOW - 2000 * M, M, 2001);
  const mem = new MemoryKlineStore(60 * M, () => NOW);
  // Each tier holds only its own slice: a range sent to the wrong tier would show a hole.
  await mem.put(all.filter((k) => k.openTime >= memFrom));
  await redis.put(all.filter((k) => k.openTime >= NOW - redisHorizon && k.openTime < memFrom));
  await cold.put(all.filter((k) => k.openTime < NOW - redisHorizon));
  const reader = new TieredReader({ memory: mem, redis, cold, redisHorizonMs: redisHorizon, memoryFrom: () => memFrom, now: () => NOW });
  const redisFrom = NOW - redisHorizon;
  const cases: Array<[{ startTime?: number; endTime?: number; limit: number }, string[]]> = [
    [{ limit: 500 }, ['memory', 'redis', 'cassandra']],
    [{ limit: 1000 }, ['memory', 'redis', 'cassandra']],
    [{ limit: 61 }, ['memory']],
    [{ startTime: NOW - 20 * M, limit: 500 }, ['memory']],
    [{ startTime: NOW - 100 * M, endTime: NOW - 80 * M, limit: 500 }, ['redis']],
    [{ startTime: NOW - 1900 * M, endTime: NOW - 1000 * M, limit: 1000 }, ['cassandra']],
    [{ startTime: memFrom - 3 * M, endTime: memFrom + 3 * M, limit: 500 }, ['redis', 'memory']],
    [{ startTime: redisFrom - 3 * M, endTime: redisFrom + 3 * M, limit: 500 }, ['cassandra', 'redis']],
    [{ startTime: redisFrom - 10 * M, limit: 1000 }, ['cassandra', 'redis', 'memory']],
    [{ endTime: redisFrom + 2 * M, limit: 7 }, ['redis', 'cassandra']],
    [{ startTime: 0, limit: 3 }, ['cassandra']],
  ];
  for (const [query, tiers] of cases) {
    const r = await reader.read({ symbol: 'ETHUSDT', interval: '1m', ...query });
    const want = expected(all, query);
    assert.deepEqual(r.klines.map((k) => k.openTime), want.map((k) => k.openTime), JSON.stringify(query));
    assert.deepEqual(r.klines, want);
    assert.deepEqual(r.tiers, tiers, JSON.stringify(query));
    // The bytes path (Redis members and Cassandra rows straight into the body) gives the old JSON exactly.
    const rows = await reader.readRows({ symbol: 'ETHUSDT', interval: '1m', ...query });
    assert.equal(`[${rows.rows.map(String).join(',')}]`, JSON.stringify(want.map(toRow)), JSON.stringify(query));
    assert.deepEqual(rows.tiers, tiers);
  }
  // Over HTTP: a closed Cassandra range is immutable, cached, and revalidates to 304; the hot shape is prepared.
  const http = new KlineHttp({ reader, prepared: new PreparedKlines(mem), knownSymbol: () => true, memoryFrom: () => memFrom, finalCacheBytes: 1 << 20, now: () => NOW });
  const coldQ = new URLSearchParams({ symbol: 'ETHUSDT', interval: '1m', startTime: String(NOW - 1900 * M), endTime: String(NOW - 1000 * M), limit: '1000' });
  const a1 = await http.answer(coldQ);
  assert.equal(a1.headers['x-mp-tiers'], 'cassandra');
  assert.equal(a1.headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.equal(bodyBytes(a1).toString(), JSON.stringify(expected(all, { startTime: NOW - 1900 * M, endTime: NOW - 1000 * M, limit: 1000 }).map(toRow)));
  assert.equal((await http.answer(coldQ, a1.headers.etag)).status, 304);
  const redisQ = new URLSearchParams({ symbol: 'ETHUSDT', interval: '1m', startTime: String(NOW - 100 * M), limit: '10' });
  const a2 = await http.answer(redisQ);
  assert.equal(a2.headers['x-mp-tiers'], 'redis');
  assert.equal(bodyBytes(a2).toString(), JSON.stringify(expected(all, { startTime: NOW - 100 * M, limit: 10 }).map(toRow)));
  const hot = await http.answer(new URLSearchParams({ symbol: 'ETHUSDT', interval: '1m', limit: '50' }));
  assert.equal(bodyBytes(hot).toString(), JSON.stringify(expected(all, { limit: 50 }).map(toRow)));
  assert.equal(http.served.prepared, 1);

  // Redis killed: its slice comes from Cassandra (which the archiver fills with everything).
  await cold.put(all.filter((k) => k.openTime >= redisFrom && k.openTime < memFrom));
  await redisSrv.stop();
  const r = await reader.read({ symbol: 'ETHUSDT', interval: '1m', limit: 500 });
  assert.deepEqual(r.klines, expected(all, { limit: 500 }));
  assert.deepEqual(r.tiers, ['memory', 'cassandra']);
  assert.deepEqual(r.degraded, ['redis']);
});

test('Cassandra down: recent ranges still answer, older ones fail clearly', async (t) => {
  const deadPort = await freePort();
  const dead = new CassandraKlineStore({ contactPoints: `127.0.0.1:${deadPort}`, keyspace: 'nowhere' });
  t.after(() => dead.close());
  const NOW = Math.floor(Date.now() / M) * M;
  const mem = new MemoryKlineStore(60 * M, () => NOW);
  await mem.put(makeKlines('BTCUSDT', '1m', NOW - 30 * M, M, 31));
  const reader = new TieredReader({ memory: mem, cold: dead, redisHorizonMs: 0, memoryFrom: () => NOW - 60 * M, now: () => NOW });
  const recent = await reader.read({ symbol: 'BTCUSDT', interval: '1m', startTime: NOW - 10 * M, limit: 500 });
  assert.equal(recent.klines.length, 11);
  await assert.rejects(reader.read({ symbol: 'BTCUSDT', interval: '1m', startTime: NOW - 120 * M, limit: 500 }), /unavailable: the cassandra tier is down/);
});

test('archiver: a restart mid-stream loses and duplicates nothing; Redis down keeps Cassandra going', async (t) => {
  const nats = await startNats();
  const redisSrv = await startRedis();
  t.after(() => Promise.all([nats.stop(), redisSrv.stop()]));
  const nc = await connectNats(nats.url, 'archiver-test');
  t.after(() => nc.close());
  await ensureKlineStream(nc);
  const js = jetstream(nc);
  const NOW = Math.floor(Date.now() / M) * M;
  const all = makeKlines('SOLUSDT', '1m', NOW - 3000 * M, M, 3000);
  const cold = await cassandra('hist_archive');
  const redis = await new RedisKlineStore({ url: redisSrv.url, horizonMs: 10 * 24 * 3600_000 }).connect();
  t.after(() => Promise.all([cold.close(), redis.close()]));
  // Count the writes that reach Cassandra, to see each kline archived exactly once.
  let coldWrites = 0;
  const counted = { name: cold.name, put: async (ks: readonly Kline[]) => { await cold.put(ks); coldWrites += ks.length; }, query: cold.query.bind(cold), close: async () => {} };

  await Promise.all(all.slice(0, 1500).map((k, i) => js.publish(closedKlineSubject('SOLUSDT', '1m'), klineEvent(k, i + 1))));
  const a1 = new KlineArchiver({ nc, redis, cold: counted, log, batch: 200, ackWaitMs: 3_000 });
  await a1.start();
  while (a1.archived < 400) await new Promise((r) => setTimeout(r, 20));
  await a1.stop(); // mid-stream: some of the first 1500 are archived, the rest wait in the consumer
  assert.ok(a1.archived < 1500, `stopped mid-stream (${a1.archived} archived)`);

  for (let i = 1500; i < 3000; i++) void js.publish(closedKlineSubject('SOLUSDT', '1m'), klineEvent(all[i]!, i + 1));
  await nc.flush();
  const a2 = new KlineArchiver({ nc, redis, cold: counted, log, batch: 200, ackWaitMs: 3_000 });
  await a2.start();
  while (a1.archived + a2.archived < 3000) await new Promise((r) => setTimeout(r, 50));
  const stored = await cold.query({ symbol: 'SOLUSDT', interval: '1m', from: 0, to: Number.MAX_SAFE_INTEGER, limit: 10_000, order: 'asc' });
  assert.deepEqual(stored, all);
  assert.equal(coldWrites, 3000, 'each kline written once');
  assert.equal(await redis.redis.zcard(RedisKlineStore.key('SOLUSDT', '1m')), 3000);
  assert.ok((await redis.redis.pttl(RedisKlineStore.key('SOLUSDT', '1m'))) > 0, 'the series key expires');

  // Redis down: Cassandra still gets every kline and the batch is acked; Redis catches up when back.
  await redisSrv.stop();
  const more = makeKlines('SOLUSDT', '1m', NOW, M, 50);
  for (let i = 0; i < 50; i++) void js.publish(closedKlineSubject('SOLUSDT', '1m'), klineEvent(more[i]!, 3001 + i));
  await nc.flush();
  while (a2.archived < 3000 - a1.archived + 50) await new Promise((r) => setTimeout(r, 50));
  assert.equal((await cold.query({ symbol: 'SOLUSDT', interval: '1m', from: NOW, to: Number.MAX_SAFE_INTEGER, limit: 100, order: 'asc' })).length, 50);
  assert.equal(a2.redisBacklog, 50);
  await a2.stop();
});
