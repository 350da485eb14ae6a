// `npm run bench:history`: chart-opening kline queries (500 1m candles,
// mixed symbols) against /api/v3/klines, per tier: memory hits, Redis hits,
// Cassandra hits (autocannon: req/s, p50/p99), and the Redis archive write
// rate with and without pipelining. Real Redis and a real Cassandra node
// (from Maven Central's jars) on free ports; the HTTP endpoint is the
// push-server's handler (HistoryService.handle) over a TieredReader, served
// in this process. Everything started is stopped at the end.
// Flags: --seconds N per tier (default 5, after a 2 s warm-up), --connections N (default 10), --symbols N (default 8).
import { parseArgs } from 'node:util';
import { createServer } from 'node:http';
import autocannon from 'autocannon';
import { startRedis } from '../test/helpers/servers.ts';
import { makeKlines } from '../test/helpers/klines.ts';
import { startCassandra } from '../system/history/cassandra-node.ts';
import { CassandraKlineStore } from '../system/history/cassandra-store.ts';
import { RedisKlineStore } from '../system/history/redis-store.ts';
import { MemoryKlineStore } from '../system/history/memory-store.ts';
import { TieredReader } from '../system/history/tiered.ts';
import { answerKlines, isBinanceError, parseKlineQuery } from '../system/history/binance-api.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, connections: { type: 'string', default: '10' }, symbols: { type: 'string', default: '8' } } });
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const nSymbols = Number(values.symbols);
const M = 60_000;
const H = 60 * M;
const D = 24 * H;
const log = (s: string) => process.stderr.write(`bench:history: ${s}\n`);

const cleanups: Array<() => Promise<unknown>> = [];
try {
  const redisSrv = await startRedis();
  cleanups.push(() => redisSrv.stop());
  log('starting Cassandra…');
  // C1-only JIT by default (as in the tests); MP_CASSANDRA_FULL_JIT=1 for C2 (needs a longer warm-up).
  const node = await startCassandra({ quickJit: process.env.MP_CASSANDRA_FULL_JIT !== '1' });
  cleanups.push(() => node.stop());
  log(`Cassandra ready in ${node.startMs} ms, RSS ${node.rssMb()} MB`);
  const redis = await new RedisKlineStore({ url: redisSrv.url, horizonMs: 15 * D }).connect();
  const cold = await new CassandraKlineStore({ contactPoints: node.contactPoint }).connect();
  cleanups.push(() => redis.close(), () => cold.close());
  const memory = new MemoryKlineStore(D);

  // Data: per symbol, 3 days of 1m candles: the last day in memory, days 2-3 in Redis, all of it in Cassandra.
  const now = Math.floor(Date.now() / M) * M;
  const symbols = Array.from({ length: nSymbols }, (_, i) => `SYM${i}USDT`);
  let t0 = performance.now();
  let total = 0;
  for (const s of symbols) {
    const all = makeKlines(s, '1m', now - 3 * D, M, 3 * 1440);
    await memory.put(all.filter((k) => k.openTime >= now - D));
    await cold.put(all);
    total += all.length;
  }
  const coldRate = total / ((performance.now() - t0) / 1000);

  // Redis writes with and without pipelining (the archiver's path: upsert + trim + TTL per batch).
  const writeRate = async (pipeline: boolean, n: number) => {
    const store = await new RedisKlineStore({ url: redisSrv.url, horizonMs: 15 * D, pipeline }).connect();
    try {
      const ks = makeKlines(pipeline ? 'PIPEUSDT' : 'SEQUSDT', '1m', now - 10 * D, M, n);
      const t = performance.now();
      for (let i = 0; i < ks.length; i += 500) await store.put(ks.slice(i, i + 500));
      return n / ((performance.now() - t) / 1000);
    } finally {
      await store.close();
    }
  };
  const piped = await writeRate(true, 50_000);
  const unpiped = await writeRate(false, 5_000);
  for (const s of symbols) await redis.put(makeKlines(s, '1m', now - 3 * D, M, 3 * 1440).filter((k) => k.openTime < now - D));

  const reader = new TieredReader({ memory, redis, cold, redisHorizonMs: 2 * D + H, memoryFrom: () => now - D });
  const http = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = parseKlineQuery(url.searchParams, () => true);
    if (isBinanceError(q)) {
      res.writeHead(q.status).end(JSON.stringify({ code: q.code, msg: q.msg }));
      return;
    }
    void answerKlines(q, (x) => reader.read(x)).then((r) => {
      res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers });
      res.end(JSON.stringify(r.body));
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => http.close(r)));
  const port = (http.address() as { port: number }).port;

  const tiers: Array<[string, (s: string) => string]> = [
    ['memory', (s) => `/api/v3/klines?symbol=${s}&interval=1m&limit=500`],
    ['redis', (s) => `/api/v3/klines?symbol=${s}&interval=1m&startTime=${now - 2 * D}&limit=500`],
    ['cassandra', (s) => `/api/v3/klines?symbol=${s}&interval=1m&startTime=${now - 3 * D}&limit=500`],
  ];
  const rows: Array<Record<string, string | number>> = [];
  for (const [tier, path] of tiers) {
    const check = await fetch(`http://127.0.0.1:${port}${path(symbols[0]!)}`);
    const n = ((await check.json()) as unknown[]).length;
    if (check.headers.get('x-mp-tiers') !== tier || n !== 500) throw new Error(`${tier}: served by ${check.headers.get('x-mp-tiers')} with ${n} rows`);
    const requests = symbols.map((s) => ({ method: 'GET' as const, path: path(s) }));
    await autocannon({ url: `http://127.0.0.1:${port}`, connections, duration: 2, requests }); // warm-up, not recorded
    const r = await autocannon({
      url: `http://127.0.0.1:${port}`,
      connections,
      duration: seconds,
      requests,
    });
    rows.push({ tier, 'req/s': Math.round(r.requests.average), 'p50 ms': r.latency.p50, 'p99 ms': r.latency.p99, errors: r.errors + r.non2xx });
  }
  const out = {
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
    cassandra: { startMs: node.startMs, rssMb: node.rssMb() },
    query: { connections, seconds, symbols: nSymbols, limit: 500, results: rows },
    writes: { redisPipelinedKlinesPerSec: Math.round(piped), redisUnpipelinedKlinesPerSec: Math.round(unpiped), cassandraKlinesPerSec: Math.round(coldRate) },
  };
  console.table(rows);
  console.log(JSON.stringify(out, null, 2));
} finally {
  for (const c of cleanups.reverse()) await c().catch(() => {});
}
