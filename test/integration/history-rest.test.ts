// GET /api/v3/klines through a real cluster (router, push-server, gateway,
// feed on nats-server) with a real Redis and the embedded cold store: warm-up
// from Redis before healthy, tiers header, Binance errors, Redis killed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, waitFor } from '../helpers/cluster.ts';
import { startRedis } from '../helpers/servers.ts';
import { RedisKlineStore } from '../../system/history/redis-store.ts';
import { SqliteKlineStore } from '../../system/history/sqlite-store.ts';
import { makeKlines } from '../helpers/klines.ts';
import { REAL_SYMBOLS } from '../../system/common/topics.ts';
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { KlinesRequestSchema, KlinesResponseSchema } from '../../proto/gen/history_pb.js';

/** One unary KlineHistory.Klines call over real gRPC; resolves with the response or the error status. */
function grpcKlines(target: string, req: Parameters<typeof create<typeof KlinesRequestSchema>>[1]) {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const bytes = (b: Buffer) => b;
  return new Promise<{ res?: ReturnType<typeof fromBinary<typeof KlinesResponseSchema>>; err?: grpc.ServiceError }>((resolve) => {
    client.makeUnaryRequest('/marketpush.v1.KlineHistory/Klines', bytes, bytes, Buffer.from(toBinary(KlinesRequestSchema, create(KlinesRequestSchema, req))), (err, value) => {
      client.close();
      resolve(err ? { err } : { res: fromBinary(KlinesResponseSchema, value!) });
    });
  });
}

const M = 60_000;
const H = 60 * M;

test('klines REST on a gateway: warm-up from Redis, exact tiers, Binance errors, Redis killed degrades', async (t) => {
  const redisSrv = await startRedis();
  t.after(() => redisSrv.stop());
  const dir = mkdtempSync(join(tmpdir(), 'mp-hist-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const symbol = REAL_SYMBOLS[0]!.toUpperCase();
  // The archived past: two days of closed 1m candles up to the previous minute, in Redis and in the
  // cold store; the feed must start within this minute so that its first candle follows on.
  if (Date.now() % M > 20_000) await new Promise((r) => setTimeout(r, M - (Date.now() % M) + 100));
  const lastClosed = Math.floor(Date.now() / M) * M - M;
  const past = makeKlines(symbol, '1m', lastClosed - 48 * H, M, 48 * 60 + 1);
  const seedRedis = await new RedisKlineStore({ url: redisSrv.url, horizonMs: 15 * 24 * H }).connect();
  await seedRedis.put(past);
  await seedRedis.close();
  const seedCold = new SqliteKlineStore(join(dir, 'history.sqlite'));
  await seedCold.put(past);
  // Imported history of a symbol no feed publishes: only the cold tier has it.
  const imported = makeKlines('OLDUSDT', '1d', Date.UTC(2020, 0, 1), 24 * H, 30);
  await seedCold.put(imported);
  await seedCold.close();

  const cluster = await startCluster({ symbols: 2, server: { redis: redisSrv.url, history: { embeddedPath: join(dir, 'history.sqlite') } } });
  t.after(() => cluster.stop());
  const admin = cluster.servers[0]!.urls.admin!;
  const gw = cluster.gateways[0]!.urls.http!;
  // Warm-up happened before the server printed its readiness line.
  const health = (await (await fetch(`${admin}/healthz`)).json()) as { warmed: boolean; degraded: string[] };
  assert.equal(health.warmed, true);
  assert.deepEqual(health.degraded, []);

  const get = async (qs: string) => {
    const r = await fetch(`${gw}/api/v3/klines?${qs}`);
    return { status: r.status, tiers: r.headers.get('x-mp-tiers'), degraded: r.headers.get('x-mp-degraded'), body: (await r.json()) as unknown };
  };
  // Wait for the in-progress candle of this minute from the live feed.
  let rows: Array<[number, ...unknown[]]> = [];
  await waitFor(async () => {
    const r = await get(`symbol=${symbol}&interval=1m&limit=1000`);
    rows = r.body as typeof rows;
    return r.status === 200 && rows.length > 0 && rows[rows.length - 1]![0] >= lastClosed + M;
  }, 15_000, 'the live candle');
  const recent = await get(`symbol=${symbol}&interval=1m&limit=1000`);
  assert.equal(recent.tiers, 'memory');
  rows = recent.body as typeof rows;
  assert.equal(rows.length, 1000);
  // Archived candles then live ones, no duplicates, no holes. Only if the feed started in a later
  // minute than the seed (a very slow start) is there a gap, and only where nobody made candles.
  const firstLive = rows.find((r) => r[0] > lastClosed)![0];
  const seeded = new Set(past.map((k) => k.openTime));
  for (let i = 1; i < rows.length; i++) {
    assert.equal(rows[i]![0] - rows[i - 1]![0], rows[i]![0] === firstLive ? firstLive - lastClosed : M, 'continuous, no duplicates');
  }
  for (const r of rows) if (r[0] <= lastClosed) assert.ok(seeded.has(r[0]));
  assert.equal(rows[0]!.length, 12);
  assert.equal(rows[0]![11], '0');

  // Older than the memory horizon: Redis; straddling it: Redis then memory.
  const start = lastClosed - 30 * H;
  const old = await get(`symbol=${symbol}&interval=1m&startTime=${start}&endTime=${start + 60 * M}`);
  assert.equal(old.tiers, 'redis');
  assert.deepEqual((old.body as number[][]).map((r) => r[0]), past.filter((k) => k.openTime >= start && k.openTime <= start + 60 * M).map((k) => k.openTime));
  const edge = Date.now() - 24 * H;
  const straddle = await get(`symbol=${symbol}&interval=1m&startTime=${edge - 10 * M}&limit=20`);
  assert.equal(straddle.tiers, 'redis,memory');
  const sr = straddle.body as number[][];
  assert.equal(sr.length, 20);
  for (let i = 1; i < sr.length; i++) assert.equal(sr[i]![0]! - sr[i - 1]![0]!, M);

  // A symbol only the cold tier holds is valid; its old candles come from there.
  let oldRows: { status: number; tiers: string | null; body: unknown } = { status: 0, tiers: null, body: null };
  await waitFor(async () => (oldRows = await get('symbol=OLDUSDT&interval=1d&startTime=0&limit=10')).status === 200, 10_000, 'imported symbol');
  assert.equal(oldRows.tiers, 'embedded');
  assert.deepEqual((oldRows.body as number[][]).map((r) => r[0]), imported.slice(0, 10).map((k) => k.openTime));

  // The same query over gRPC and gRPC-web.
  const viaGrpc = await grpcKlines(cluster.gateways[0]!.urls.grpc!, { symbol, interval: '1m', startTime: BigInt(start), endTime: BigInt(start + 60 * M) });
  assert.equal(viaGrpc.err, undefined);
  assert.deepEqual(viaGrpc.res!.klines.map((k) => Number(k.openTime)), (old.body as number[][]).map((r) => r[0]));
  assert.deepEqual(viaGrpc.res!.tiers, ['redis']);
  assert.equal(viaGrpc.res!.klines[0]!.close, (old.body as string[][])[0]![4]);
  const badGrpc = await grpcKlines(cluster.gateways[0]!.urls.grpc!, { symbol, interval: '7m' });
  assert.equal(badGrpc.err?.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(badGrpc.err?.details, 'Invalid interval.');
  assert.deepEqual(badGrpc.err?.metadata.get('x-binance-code'), ['-1120']);
  const msg = toBinary(KlinesRequestSchema, create(KlinesRequestSchema, { symbol, interval: '1m', limit: 5 }));
  const framed = Buffer.alloc(5 + msg.length);
  framed.writeUInt32BE(msg.length, 1);
  framed.set(msg, 5);
  const web = await fetch(`${gw}/marketpush.v1.KlineHistory/Klines`, { method: 'POST', headers: { 'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1' }, body: framed });
  const wb = Buffer.from(await web.arrayBuffer());
  assert.equal(wb[0], 0);
  const len = wb.readUInt32BE(1);
  const webRes = fromBinary(KlinesResponseSchema, wb.subarray(5, 5 + len));
  assert.equal(webRes.klines.length, 5);
  assert.deepEqual(webRes.tiers, ['memory']);
  assert.equal(wb[5 + len], 0x80);
  assert.match(wb.subarray(10 + len).toString(), /grpc-status:0/);

  // Binance errors.
  assert.deepEqual(await get(`symbol=${symbol}&interval=7m`), { status: 400, tiers: null, degraded: null, body: { code: -1120, msg: 'Invalid interval.' } });
  assert.deepEqual((await get('symbol=NOPEUSDT&interval=1m')).body, { code: -1121, msg: 'Invalid symbol.' });
  assert.equal(((await get(`symbol=${symbol}&interval=1m&limit=abc`)).body as { code: number }).code, -1100);
  assert.equal(((await get('interval=1m')).body as { code: number }).code, -1102);

  // Redis killed: the Redis slice comes from the cold store, and the gateway says it is degraded (still 200).
  // (The query above is final and now cached on the server; limit=61 asks for the same candles past that cache.)
  await redisSrv.stop();
  const fallback = await get(`symbol=${symbol}&interval=1m&startTime=${start}&endTime=${start + 60 * M}&limit=61`);
  assert.equal(fallback.status, 200);
  assert.equal(fallback.tiers, 'embedded');
  assert.equal(fallback.degraded, 'redis');
  assert.deepEqual(fallback.body, old.body);
  const gh = await fetch(`${gw}/healthz`);
  assert.equal(gh.status, 200);
  assert.deepEqual(((await gh.json()) as { degraded: string[] }).degraded, ['redis']);
  const sh = (await (await fetch(`${admin}/healthz`)).json()) as { degraded: string[]; redis: string };
  assert.equal(sh.redis, 'down');
  assert.ok(sh.degraded.includes('redis'));
});
