// `npm run bench:history`: chart-opening kline queries against the real
// handler (KlineHttp over the tiers: prepared last-N answers from memory,
// Redis members and Cassandra rows as bytes) beside, in the same run, a bare
// node:http server answering a prepared body of the same size (the ceiling)
// and one that JSON.stringify's per request. Per row: req/s, p50/p99 and the
// ratio to the prepared-body server. Then a storm of --storm-connections
// (1,000) over mixed symbols and intervals, against the memory tier and the
// bare server, and (unless --no-isolation) bench/rest-isolation.ts with the
// same storm for the stream p99 beside it. Real Redis and a real Cassandra
// node on free ports; load from autocannon in a child process; trades folded
// into the open candles (100/s per symbol) throughout, so prepared answers
// rebuild their newest row as they would live. Writes reports/<time>-history/.
// Flags: --seconds N per row (default 5, after a 2 s warm-up), --connections N (10), --symbols N (8),
// --storm-connections N (1000), --no-isolation, --loadgen-nice N (0).
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis } from '../test/helpers/servers.ts';
import { makeKlines } from '../test/helpers/klines.ts';
import { startCassandra } from '../system/history/cassandra-node.ts';
import { CassandraKlineStore } from '../system/history/cassandra-store.ts';
import { RedisKlineStore } from '../system/history/redis-store.ts';
import { MemoryKlineStore } from '../system/history/memory-store.ts';
import { TieredReader } from '../system/history/tiered.ts';
import { PreparedKlines } from '../system/history/prepared.ts';
import { OpenCandles } from '../system/history/open-candle.ts';
import { KlineHttp, writeKlineAnswer } from '../system/history/kline-http.ts';
import type { Kline } from '../system/history/kline.ts';
import { httpLoad, type HttpLoadResult } from './lib/http-load.ts';
import { machineInfo, table } from './lib/report.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '10' },
    symbols: { type: 'string', default: '8' },
    'storm-connections': { type: 'string', default: '1000' },
    'no-isolation': { type: 'boolean', default: false },
    'loadgen-nice': { type: 'string', default: '0' },
    out: { type: 'string', default: join(ROOT, 'reports') },
  },
});
const num = (k: 'seconds' | 'connections' | 'symbols' | 'storm-connections' | 'loadgen-nice', min = 1) => {
  const n = Number(values[k]);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${k} must be an integer ≥ ${min}, got ${values[k]}`);
  return n;
};
const seconds = num('seconds');
const connections = num('connections');
const nSymbols = num('symbols');
const stormConnections = num('storm-connections');
const nice = num('loadgen-nice', 0);
const M = 60_000;
const H = 60 * M;
const D = 24 * H;
const log = (s: string) => process.stderr.write(`bench:history: ${s}\n`);
const startedAt = new Date();

const cleanups: Array<() => Promise<unknown>> = [];
const serve = async (handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> => {
  const s: Server = createServer(handler);
  s.keepAliveTimeout = 5_000;
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => { s.close(r); s.closeAllConnections(); }));
  return `http://127.0.0.1:${(s.address() as { port: number }).port}`;
};

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

  // Data per symbol: 3 days of 1m candles (the last day in memory, days 2-3 in Redis, all in Cassandra),
  // and 1000 candles of 5m and 1h in memory; the newest candle of every series is open.
  const now = Math.floor(Date.now() / M) * M;
  const memory = new MemoryKlineStore(60 * D);
  const symbols = Array.from({ length: nSymbols }, (_, i) => `SYM${i}USDT`);
  const intervals: Record<string, number> = { '1m': M, '5m': 5 * M, '1h': H };
  const open = (ks: Kline[], ms: number) => ks.map((k, i) => (i === ks.length - 1 ? { ...k, closeTime: k.openTime + ms - 1 } : k));
  let t0 = performance.now();
  let total = 0;
  for (const s of symbols) {
    const all = makeKlines(s, '1m', now - 3 * D, M, 3 * 1440 + 1);
    await memory.put(open(all.filter((k) => k.openTime >= now - D), M));
    await cold.put(all.slice(0, -1));
    total += all.length - 1;
    for (const i of ['5m', '1h']) {
      const ms = intervals[i]!;
      await memory.put(open(makeKlines(s, i, Math.floor(now / ms) * ms - 999 * ms, ms, 1000), ms));
    }
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

  // Trades keep the open candles moving (100/s per symbol), as the bus does on a push-server.
  const oc = new OpenCandles(memory, intervals);
  let tradeId = 0;
  const trader = setInterval(() => {
    tradeId++;
    for (const s of symbols) oc.onTrade(s, { id: tradeId, price: (100 + (tradeId % 50) / 10).toFixed(2), qty: '0.5', takerBuys: tradeId % 2 === 0 });
  }, 10);
  cleanups.push(async () => clearInterval(trader));

  const memoryFrom = (_s: string, i: string) => (i === '1m' ? now - D : 0);
  const reader = new TieredReader({ memory, redis, cold, redisHorizonMs: 2 * D + H, memoryFrom });
  const prepared = new PreparedKlines(memory);
  const handlerOf = (finalCacheBytes: number) => {
    const kh = new KlineHttp({ reader, prepared, knownSymbol: () => true, memoryFrom, finalCacheBytes });
    return async (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://x');
      writeKlineAnswer(res, await kh.answer(url.searchParams, req.headers['if-none-match']));
    };
  };
  const plain = handlerOf(0);
  const cached = handlerOf(256 << 20);
  const mp = await serve((q, r) => void plain(q, r));
  const mpCached = await serve((q, r) => void cached(q, r));

  // The ceiling: a bare server answering the memory tier's body for SYM0, prepared once; and one that stringifies per request.
  const sample = Buffer.from(await (await fetch(`${mp}/api/v3/klines?symbol=SYM0USDT&interval=1m&limit=500`)).arrayBuffer());
  const sampleRows = JSON.parse(sample.toString()) as unknown[];
  const headers = { 'content-type': 'application/json', 'content-length': String(sample.length), 'access-control-allow-origin': '*' };
  const bare = await serve((_q, r) => {
    r.writeHead(200, headers);
    r.end(sample);
  });
  const bareStringify = await serve((_q, r) => {
    const b = JSON.stringify(sampleRows);
    r.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(b)), 'access-control-allow-origin': '*' });
    r.end(b);
  });

  const paths = {
    memory: (s: string) => `/api/v3/klines?symbol=${s}&interval=1m&limit=500`,
    redis: (s: string) => `/api/v3/klines?symbol=${s}&interval=1m&startTime=${now - 2 * D}&limit=500`,
    cassandra: (s: string) => `/api/v3/klines?symbol=${s}&interval=1m&startTime=${now - 3 * D}&limit=500`,
  };
  for (const [tier, path] of Object.entries(paths)) {
    const check = await fetch(`${mp}${path(symbols[0]!)}`);
    const n = ((await check.json()) as unknown[]).length;
    if (check.headers.get('x-mp-tiers') !== tier || n !== 500) throw new Error(`${tier}: served by ${check.headers.get('x-mp-tiers')} with ${n} rows`);
  }

  const runs: Array<{ name: string; r: HttpLoadResult }> = [];
  const measure = async (name: string, url: string, reqs: string[], conns = connections) => {
    log(`${name}…`);
    const requests = reqs.map((path) => ({ path }));
    await httpLoad({ url, connections: conns, seconds: 2, requests, nice }); // warm-up, not recorded
    runs.push({ name, r: await httpLoad({ url, connections: conns, seconds, requests, nice }) });
  };
  await measure('bare server, body prepared once', bare, symbols.map(paths.memory));
  await measure('bare server, JSON.stringify per request', bareStringify, symbols.map(paths.memory));
  await measure('memory tier (prepared, open candle current)', mp, symbols.map(paths.memory));
  await measure('Redis tier', mp, symbols.map(paths.redis));
  await measure('Cassandra tier', mp, symbols.map(paths.cassandra));
  await measure('Redis range, immutable-answer cache', mpCached, symbols.map(paths.redis));
  await measure('Cassandra range, immutable-answer cache', mpCached, symbols.map(paths.cassandra));
  // The ceiling again: the machine is shared, so the baseline is the better of the two runs.
  await measure('bare server, body prepared once (again)', bare, symbols.map(paths.memory));
  // The storm: chart opens over mixed symbols, intervals and sizes.
  const mixed = symbols.flatMap((s) => [`/api/v3/klines?symbol=${s}&interval=1m&limit=500`, `/api/v3/klines?symbol=${s}&interval=5m&limit=1000`, `/api/v3/klines?symbol=${s}&interval=1h&limit=200`, `/api/v3/uiKlines?symbol=${s}&interval=1m&limit=100`]);
  await measure(`storm ${stormConnections} conns: bare server, prepared body`, bare, symbols.map(paths.memory), stormConnections);
  await measure(`storm ${stormConnections} conns: memory tier, mixed intervals`, mp, mixed, stormConnections);

  const bares = runs.filter((x) => x.name.startsWith('bare server, body prepared once')).map((x) => x.r);
  const base = bares.reduce((a, b) => (b.reqPerSec > a.reqPerSec ? b : a));
  const stormBase = runs.find((x) => x.name.startsWith('storm') && x.name.includes('bare'))!.r;
  const rows = runs.map(({ name, r }) => {
    const b = name.startsWith('storm') ? stormBase : base;
    return {
      name,
      'req/s': r.reqPerSec,
      'p50 ms': r.p50Ms,
      'p99 ms': r.p99Ms,
      'req/s ratio': Math.round((r.reqPerSec / Math.max(1, b.reqPerSec)) * 100) / 100,
      'p99 ratio': Math.round((r.p99Ms / Math.max(1, b.p99Ms)) * 10) / 10,
      errors: r.errors + r.non2xx + r.timeouts,
      'B/req': r.bytesPerRequest,
    };
  });
  console.table(rows);

  // Stream p99 beside the storm: the REST-isolation bench with the same number of connections.
  let isolation: unknown;
  if (!values['no-isolation']) {
    log('stream p99 under the storm (bench/rest-isolation.ts)…');
    const lines: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const p = spawn(process.execPath, [join(ROOT, 'bench', 'rest-isolation.ts'), '--rest-connections', String(stormConnections), '--seconds', String(seconds), '--out', values.out!, '--loadgen-nice', String(nice)], { stdio: ['ignore', 'pipe', 'inherit'] });
      p.stdout.on('data', (d: Buffer) => {
        process.stdout.write(d);
        lines.push(d.toString());
      });
      const killer = setTimeout(() => p.kill('SIGTERM'), 20 * 60_000);
      p.once('exit', (code) => {
        clearTimeout(killer);
        if (code === 0) resolve();
        else reject(new Error(`rest-isolation exited with ${code}`));
      });
    });
    isolation = { report: /report: (\S+)/.exec(lines.join(''))?.[1] };
  }

  const dir = join(values.out!, `${startedAt.toISOString().replace(/[:.]/g, '-')}-history`);
  mkdirSync(dir, { recursive: true });
  const summary = {
    options: values,
    machine: machineInfo(ROOT),
    cassandra: { startMs: node.startMs, rssMb: node.rssMb() },
    query: { connections, seconds, symbols: nSymbols, bodyBytes: sample.length, results: rows },
    prepared: { hits: prepared.hits, tailBuilds: prepared.tailBuilds, fullBuilds: prepared.fullBuilds, tradesFolded: oc.folded },
    writes: { redisPipelinedKlinesPerSec: Math.round(piped), redisUnpipelinedKlinesPerSec: Math.round(unpiped), cassandraKlinesPerSec: Math.round(coldRate) },
    isolation,
  };
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  console.log(table([['report', dir], ['writes', `Redis ${Math.round(piped)} klines/s pipelined, ${Math.round(unpiped)} unpipelined; Cassandra ${Math.round(coldRate)} klines/s`]]));
} finally {
  for (const c of cleanups.reverse()) await c().catch(() => {});
}
