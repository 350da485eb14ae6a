// `npm run bench:rest-isolation`: can chart traffic starve the streams? A real
// cluster (nats-server, router, push-server, feed), a gateway with the REST
// budget (restMaxInFlight, default config) and the history process
// (system/history/main.ts: kline REST on a port of its own, at nice 10; and
// one at nice 0 to show what the priority buys). WebSocket clients on the
// gateway measure stream latency (receive time − the feed's intended publish
// time) alone, then while autocannon (a process of its own) holds
// --rest-connections concurrent kline connections over mixed symbols and
// intervals — against the gateway's /api/v3/klines, then against each
// history process. Side by side: stream p50/p99 and the ratio to the
// no-REST run, and what REST got (req/s, 2xx, 429, p99).
// Flags: --rest-connections 2000 --seconds 10 --clients 20 --symbols 10 --rate 20 --loadgen-nice 0
// (the clients share this process: more would measure it)
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import hdr from 'hdr-histogram-js';
import { startCluster, startRole, type RoleProc } from '../test/helpers/cluster.ts';
import { startRedis } from '../test/helpers/servers.ts';
import { makeKlines } from '../test/helpers/klines.ts';
import { defaultSymbols } from '../system/common/topics.ts';
import { RedisKlineStore } from '../system/history/redis-store.ts';
import { nowUs } from './lib/clock.ts';
import { cpuSeconds } from './lib/proc-cpu.ts';
import { jsonPublishTimeUs } from './lib/frame-time.ts';
import { httpLoad, type HttpLoadResult } from './lib/http-load.ts';
import { latencySummary, machineInfo, table, type LatencySummary } from './lib/report.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    'rest-connections': { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '10' },
    clients: { type: 'string', default: '20' },
    symbols: { type: 'string', default: '10' },
    rate: { type: 'string', default: '20' },
    'loadgen-nice': { type: 'string', default: '0' },
    out: { type: 'string', default: join(ROOT, 'reports') },
  },
});
const num = (k: Exclude<keyof typeof values, 'out'>, min = 1) => {
  const n = Number(values[k]);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${k} must be a number ≥ ${min}, got ${values[k]}`);
  return n;
};
const log = (s: string) => process.stderr.write(`bench:rest-isolation: ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const startedAt = new Date();
// A day of 1m and 5m candles per symbol in Redis, so the push-server and the history processes warm a
// full memory tier and a chart's "last 500" is the ~85 KB answer it is in production.
const M = 60_000;
const redisSrv = await startRedis();
const seed = await new RedisKlineStore({ url: redisSrv.url, horizonMs: 15 * 24 * 60 * M }).connect();
const lastClosed = Math.floor(Date.now() / M) * M - M;
for (const s of defaultSymbols(num('symbols'))) {
  await seed.put(makeKlines(s.toUpperCase(), '1m', lastClosed - 1439 * M, M, 1440));
  await seed.put(makeKlines(s.toUpperCase(), '5m', Math.floor(lastClosed / (5 * M)) * 5 * M - 287 * 5 * M, 5 * M, 288));
}
await seed.close();
// Weights are per client IP and the whole storm comes from one: lift them so that REST is served, not refused.
const noWeights = { restWeightPerMinute: 1_000_000_000 };
const cluster = await startCluster({ servers: 1, gateways: 0, symbols: num('symbols'), rate: num('rate'), server: { redis: redisSrv.url } }).catch(async (err: unknown) => {
  await redisSrv.stop();
  throw err;
});
const sockets: WebSocket[] = [];
const extra: RoleProc[] = [];
try {
  const symbols = ((await (await fetch(`${cluster.routerUrl}/v1/symbols`)).json()) as { symbols: string[] }).symbols;
  const streams = symbols.map((s) => `${s}@trade`).join('/');
  const gateway = await cluster.startGateway(1, { acceptRate: 100_000, ...noWeights });
  const historyProc = async (id: string, nice: number) => {
    const p = await startRole('history', { id, nats: cluster.nats.url, redis: redisSrv.url, host: '127.0.0.1', port: 0, nice, ...noWeights });
    extra.push(p);
    return p;
  };
  const history = { nice10: await historyProc('history-nice10', 10), nice0: await historyProc('history-nice0', 0) };
  // Every target answers a full chart from memory before the storm starts.
  for (const url of [gateway.urls.http!, history.nice10.urls.http!, history.nice0.urls.http!]) {
    const r = await fetch(`${url}/api/v3/klines?symbol=${symbols[0]!.toUpperCase()}&interval=1m&limit=500`);
    const n = ((await r.json()) as unknown[]).length;
    if (r.status !== 200 || n !== 500 || r.headers.get('x-mp-tiers') !== 'memory') throw new Error(`${url}: ${r.status}, ${n} rows from ${r.headers.get('x-mp-tiers')}`);
  }
  // Chart opens over mixed symbols and intervals.
  const requests = symbols.flatMap((s) => {
    const u = s.toUpperCase();
    return [`/api/v3/klines?symbol=${u}&interval=1m&limit=500`, `/api/v3/klines?symbol=${u}&interval=1m&limit=1000`, `/api/v3/uiKlines?symbol=${u}&interval=5m&limit=200`].map((path) => ({ path }));
  });

  /** Stream latency on the gateway for `seconds`, optionally while a REST storm runs against `target`. */
  const measure = async (target?: { url: string; pid: number }) => {
    const gw = gateway.urls;
    const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
    let recording = false;
    const clients = await Promise.all(
      Array.from(
        { length: num('clients') },
        () =>
          new Promise<WebSocket>((resolve, reject) => {
            const c = new WebSocket(`${gw.ws}/stream?streams=${streams}`, { perMessageDeflate: false });
            c.on('message', (data: Buffer) => {
              if (!recording) return;
              const pt = jsonPublishTimeUs(data);
              if (pt > 0) hist.recordValue(Math.max(1, nowUs() - pt));
            });
            c.once('open', () => resolve(c));
            c.once('error', reject);
          }),
      ),
    );
    sockets.push(...clients);
    await sleep(2_000); // subscriptions settle
    recording = true;
    const gwPid = gateway.proc.pid!;
    const cpu0 = cpuSeconds(gwPid);
    const tcpu0 = target ? cpuSeconds(target.pid) : undefined;
    const t0 = performance.now();
    const rest = target ? await httpLoad({ url: target.url, connections: num('rest-connections'), seconds: num('seconds'), requests, nice: num('loadgen-nice', 0) }) : await sleep(num('seconds') * 1000).then(() => undefined);
    recording = false;
    const secs = (performance.now() - t0) / 1000;
    const share = (a?: number, b?: number) => (a === undefined || b === undefined ? null : Math.round(((b - a) / secs) * 100) / 100);
    const gatewayCpu = share(cpu0, cpuSeconds(gwPid));
    const targetCpu = target ? share(tcpu0, cpuSeconds(target.pid)) : null;
    for (const c of clients) c.terminate();
    await sleep(1_000);
    return { latency: latencySummary(hist), rest, gatewayCpu, targetCpu };
  };

  const results: Record<string, { latency: LatencySummary; rest: HttpLoadResult | undefined; gatewayCpu: number | null; targetCpu: number | null }> = {};
  const runs: Array<[string, { url: string; pid: number } | undefined]> = [
    ['no REST', undefined],
    ['storm on the gateway (budget)', { url: gateway.urls.http!, pid: gateway.proc.pid! }],
    ['storm on the history process (nice 10)', { url: history.nice10.urls.http!, pid: history.nice10.proc.pid! }],
    ['storm on the history process (nice 0)', { url: history.nice0.urls.http!, pid: history.nice0.proc.pid! }],
    ['no REST (again)', undefined],
  ];
  for (const [name, target] of runs) {
    log(`${name}…`);
    results[name] = await measure(target);
  }
  const base = Math.max(0.001, Math.min(results['no REST']!.latency.p99Ms, results['no REST (again)']!.latency.p99Ms));
  const ratio = (name: string) => Math.round((results[name]!.latency.p99Ms / base) * 10) / 10;
  const fmt = (l: LatencySummary) => `p50 ${l.p50Ms} ms · p99 ${l.p99Ms} ms · max ${l.maxMs} ms (n=${l.count})`;
  const pct = (x: number | null) => (x === null ? '?' : `${Math.round(x * 100)} %`);
  const rows: Array<[string, string]> = [];
  for (const [name, r] of Object.entries(results)) {
    rows.push([
      name,
      `${fmt(r.latency)} · p99 ×${ratio(name)} · gateway CPU ${pct(r.gatewayCpu)}` +
        (r.rest ? ` · REST ${r.rest.reqPerSec} req/s: ${r.rest.ok2xx} 2xx, ${r.rest.non2xx} non-2xx, ${r.rest.errors} errors, p99 ${r.rest.p99Ms} ms, ${r.rest.bytesPerRequest} B/req, its CPU ${pct(r.targetCpu)}` : ''),
    ]);
  }
  console.log(`stream latency on the gateway, ${num('clients')} WebSocket clients × ${symbols.length} trade streams, ${num('rest-connections')} concurrent kline connections, ${num('seconds')} s each (p99 ratio against the better no-REST run; goal ≤ 2×)`);
  console.log(table(rows));
  const dir = join(values.out!, `${startedAt.toISOString().replace(/[:.]/g, '-')}-rest-isolation`);
  mkdirSync(dir, { recursive: true });
  const degradation = Object.fromEntries(Object.keys(results).map((n) => [n, ratio(n)]));
  writeFileSync(join(dir, 'summary.json'), JSON.stringify({ options: values, machine: machineInfo(ROOT), results, degradation }, null, 2) + '\n');
  console.log(`report: ${dir}`);
} finally {
  for (const c of sockets) c.terminate();
  for (const p of extra) await p.kill();
  await cluster.stop();
  await redisSrv.stop();
}
