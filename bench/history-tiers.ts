// `npm run bench:history-tiers`: where a Redis or Cassandra answer's time
// goes, without HTTP or a load generator in the way. Per tier: answers/s
// through KlineHttp.answer (500-candle ranges that only that tier holds, no
// answer cache) at --concurrency at once, p50/p99, and CPU per answer of this
// process (client, driver, body) and of the store's server process (read
// from /proc), then one store read alone, serially. Real Redis and a real
// Cassandra node on free ports. Prints only; the figures go in docs/history.md.
// Flags: --tiers redis,cassandra  --answers N (3000)  --concurrency N (10).
import { parseArgs } from 'node:util';
import { readFileSync, readdirSync } from 'node:fs';
import { startRedis } from '../test/helpers/servers.ts';
import { makeKlines } from '../test/helpers/klines.ts';
import { startCassandra, type CassandraNode } from '../system/history/cassandra-node.ts';
import { CassandraKlineStore } from '../system/history/cassandra-store.ts';
import { RedisKlineStore } from '../system/history/redis-store.ts';
import { MemoryKlineStore } from '../system/history/memory-store.ts';
import { TieredReader } from '../system/history/tiered.ts';
import { KlineHttp } from '../system/history/kline-http.ts';
import type { Kline, KlineStore } from '../system/history/kline.ts';

const { values } = parseArgs({ options: { tiers: { type: 'string', default: 'redis,cassandra' }, answers: { type: 'string', default: '3000' }, concurrency: { type: 'string', default: '10' } } });
const tiers = values.tiers!.split(',');
for (const t of tiers) if (t !== 'redis' && t !== 'cassandra') throw new Error(`--tiers: redis and/or cassandra, got ${t}`);
const n = Number(values.answers);
const conc = Number(values.concurrency);
if (!Number.isInteger(n) || n < 1 || !Number.isInteger(conc) || conc < 1) throw new Error('--answers and --concurrency must be integers ≥ 1');
const M = 60_000;
const D = 1440 * M;

/** CPU milliseconds a process has used (utime + stime, 10 ms ticks). */
const cpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};
/** The redis-server started on this port (spawned through a tying shell; it retitles itself `redis-server host:port`). */
const redisPid = (port: number) => {
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/comm`, 'utf8').trim() !== 'redis-server') continue; // not its tying shell
      const c = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if ((c.includes(`:${port}`) || c.split('\0').includes(String(port)))) return Number(p);
    } catch {}
  }
  throw new Error(`no redis-server process on port ${port}`);
};

const cleanups: Array<() => Promise<unknown>> = [];
try {
  const rs = await startRedis();
  cleanups.push(() => rs.stop());
  const redis = await new RedisKlineStore({ url: rs.url, horizonMs: 15 * D }).connect();
  cleanups.push(() => redis.close());
  let node: CassandraNode | undefined;
  let cold: CassandraKlineStore | undefined;
  if (tiers.includes('cassandra')) {
    node = await startCassandra({ quickJit: process.env.MP_CASSANDRA_FULL_JIT !== '1' });
    cleanups.push(() => node!.stop());
    cold = await new CassandraKlineStore({ contactPoints: node.contactPoint }).connect();
    cleanups.push(() => cold!.close());
  }
  // 3 days of 1m candles per symbol: the last day in memory, the day before in Redis, all in Cassandra.
  const now = Math.floor(Date.now() / M) * M;
  const memory = new MemoryKlineStore(60 * D);
  const symbols = ['SYM0USDT', 'SYM1USDT', 'SYM2USDT', 'SYM3USDT'];
  for (const s of symbols) {
    const all = makeKlines(s, '1m', now - 3 * D, M, 3 * 1440);
    await memory.put(all.filter((k: Kline) => k.openTime >= now - D));
    if (cold) await cold.put(all);
    await redis.put(all.filter((k: Kline) => k.openTime < now - D && k.openTime >= now - 2 * D - 60 * M));
  }
  const memoryFrom = () => now - D;
  const reader = new TieredReader({ memory, redis, ...(cold ? { cold } : {}), redisHorizonMs: 2 * D + 60 * M, memoryFrom });
  const kh = new KlineHttp({ reader, knownSymbol: () => true, memoryFrom, finalCacheBytes: 0 });
  const starts: Record<string, number> = { redis: now - 2 * D, cassandra: now - 3 * D };
  for (const t of tiers) {
    const serverPid = t === 'redis' ? redisPid(rs.port) : node!.pid;
    const qs = symbols.map((s) => new URLSearchParams({ symbol: s, interval: '1m', startTime: String(starts[t]), limit: '500' }));
    const first = await kh.answer(qs[0]!);
    if (first.headers['x-mp-tiers'] !== t) throw new Error(`${t}: answered by ${first.headers['x-mp-tiers']}`);
    for (const round of ['warm-up', 'measured']) {
      const count = round === 'warm-up' ? Math.min(n, 1000) : n;
      let i = 0;
      const lat: number[] = [];
      const c0 = process.cpuUsage();
      const s0 = cpuMs(serverPid);
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: conc }, async () => {
          while (i < count) {
            const q = qs[i++ % qs.length]!;
            const x = performance.now();
            const a = await kh.answer(q);
            if (a.status !== 200) throw new Error(`${t}: HTTP ${a.status}`);
            lat.push(performance.now() - x);
          }
        }),
      );
      const elapsed = performance.now() - t0;
      const c = process.cpuUsage(c0);
      const server = cpuMs(serverPid) - s0;
      lat.sort((a, b) => a - b);
      if (round === 'measured') {
        const us = (ms: number) => Math.round((ms / count) * 1000);
        console.log(`${t}: ${Math.round(count / (elapsed / 1000))} answers/s, p50 ${lat[lat.length >> 1]!.toFixed(2)} ms, p99 ${lat[Math.floor(lat.length * 0.99)]!.toFixed(2)} ms; CPU per answer: this process ${us((c.user + c.system) / 1000)} µs, ${t} server ${us(server)} µs`);
      }
    }
    const store: KlineStore = t === 'redis' ? redis : cold!;
    const rq = { symbol: 'SYM0USDT', interval: '1m', from: starts[t]!, to: t === 'redis' ? now - D - 1 : now - 2 * D - 60 * M - 1, limit: 500, order: 'asc' as const };
    const x = performance.now();
    for (let j = 0; j < 200; j++) await store.queryRows!(rq);
    console.log(`${t}: one 500-row read alone, serially: ${((performance.now() - x) / 200).toFixed(3)} ms`);
  }
} finally {
  for (const c of cleanups.reverse()) await c().catch(() => {});
}
