// `npm run bench:memory`: does a gateway give memory back? A real cluster
// (nats-server, router, push-server, feed, one gateway as OS processes) and,
// one after another, four loads: clients that never read, idle connections,
// connection churn, and REST kline queries. The gateway's heap and RSS
// (/stats memoryMb, sampled every second) are recorded before, at the peak
// during, and at the end of a quiet period after each load.
// Flags (defaults = the full run):
//   --stuck 50 --idle 3000 --churn-rate 400 --churn-seconds 20
//   --rest-connections 500 --rest-seconds 20 --hold 15 (s each load is held)
//   --after 60 (quiet seconds after each load) --symbols 20 --rate 50
//   --phases stuck,idle,churn,rest (which loads, in this order)
// The gateway inherits this process's environment: MALLOC_ARENA_MAX=2 etc.
// can be tried without code changes (docs/design.md, "Memory").
// A quick run: --idle 1000 --churn-seconds 5 --rest-seconds 5 --hold 5 --after 15
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import autocannon from 'autocannon';
import { startCluster } from '../test/helpers/cluster.ts';
import { machineInfo, table } from './lib/report.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    stuck: { type: 'string', default: '50' },
    idle: { type: 'string', default: '3000' },
    'churn-rate': { type: 'string', default: '400' },
    'churn-seconds': { type: 'string', default: '20' },
    'rest-connections': { type: 'string', default: '500' },
    'rest-seconds': { type: 'string', default: '20' },
    hold: { type: 'string', default: '15' },
    after: { type: 'string', default: '60' },
    phases: { type: 'string', default: 'stuck,idle,churn,rest' },
    symbols: { type: 'string', default: '20' },
    rate: { type: 'string', default: '50' },
    out: { type: 'string', default: join(ROOT, 'reports') },
  },
});
const num = (k: keyof typeof values) => {
  const n = Number(values[k]);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${k} must be a number ≥ 0, got ${values[k]}`);
  return n;
};
const log = (s: string) => process.stderr.write(`bench:memory: ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Mem {
  t: number;
  heapUsed: number;
  heapTotal: number;
  rss: number;
  external: number;
  arrayBuffers: number;
  connections: number;
}

const startedAt = new Date();
const cluster = await startCluster({
  servers: 1,
  gateways: 0,
  symbols: num('symbols'),
  rate: num('rate'),
});
const samples: Mem[] = [];
let sampler: NodeJS.Timeout | undefined;
const open = new Set<WebSocket>();
try {
  // Admission and the REST budget are not what is measured: the loads must reach the gateway.
  const gw = await cluster.startGateway(1, { acceptRate: 100_000, sendQueueBytes: 4 * 1024 * 1024, slowClientGraceMs: 10_000 });
  const http = gw.urls.http!;
  const ws = gw.urls.ws!;
  const stats = async () => (await (await fetch(`${http}/stats`)).json()) as { connections: number; memoryMb: Omit<Mem, 't' | 'connections'>; counters: Record<string, number> };
  const sample = async () => {
    const s = await stats();
    samples.push({ t: Date.now(), connections: s.connections, ...s.memoryMb });
  };
  sampler = setInterval(() => void sample().catch(() => {}), 1_000);
  const symbolNames = ((await (await fetch(`${cluster.routerUrl}/v1/symbols`)).json()) as { symbols: string[] }).symbols;
  const allStreams = symbolNames.flatMap((s) => [`${s}@trade`, `${s}@depth`]);

  const connectWs = (url: string) =>
    new Promise<WebSocket>((resolve, reject) => {
      const c = new WebSocket(url, { perMessageDeflate: false });
      c.once('open', () => {
        open.add(c);
        resolve(c);
      });
      c.once('error', reject);
      c.once('close', () => open.delete(c));
    });
  const closeAll = async () => {
    for (const c of open) c.terminate();
    open.clear();
    await sleep(500);
  };
  const quiet = async () => {
    await sample();
    return samples.at(-1)!;
  };

  interface PhaseResult {
    phase: string;
    detail: Record<string, number>;
    before: Mem;
    peak: Mem;
    after: Mem;
    afterMin: Mem;
  }
  const results: PhaseResult[] = [];
  const phase = async (name: string, load: () => Promise<Record<string, number>>) => {
    if (!values.phases!.split(',').includes(name)) return;
    log(`${name}: baseline`);
    await sleep(2_000);
    const before = await quiet();
    const from = samples.length;
    const detail = await load();
    await closeAll();
    const duringEnd = samples.length;
    log(`${name}: load over; quiet for ${num('after')} s`);
    await sleep(num('after') * 1000);
    const after = await quiet();
    const during = samples.slice(from, duringEnd + 1);
    const peak = during.reduce((a, b) => (b.rss > a.rss ? b : a), before);
    const afterMin = samples.slice(duringEnd).reduce((a, b) => (b.heapUsed < a.heapUsed ? b : a), after);
    results.push({ phase: name, detail, before, peak, after, afterMin });
    log(`${name}: heap ${before.heapUsed} → peak ${peak.heapUsed} → ${after.heapUsed} MB; RSS ${before.rss} → ${peak.rss} → ${after.rss} MB`);
  };

  // Warm-up: the first clients compile the hot paths (code lives in the heap too); the baseline is a warmed-up gateway.
  const warm = await Promise.all(Array.from({ length: 20 }, () => connectWs(`${ws}/stream?streams=${allStreams.slice(0, 6).join('/')}`)));
  await sleep(3_000);
  for (const c of warm) c.close();
  await sleep(1_000);

  // 1. Clients that never read: subscribed to every trade and depth stream, socket paused.
  await phase('stuck', async () => {
    const n = num('stuck');
    const counters0 = (await stats()).counters;
    for (let i = 0; i < n; i++) {
      const c = await connectWs(`${ws}/stream?streams=${allStreams.join('/')}`);
      (c as unknown as { _socket: Socket })._socket.pause();
    }
    const t0 = Date.now();
    const deadline = t0 + Math.max(num('hold'), 90) * 1000;
    let closed = 0;
    let allOverflowedAt = 0;
    while (Date.now() < deadline) {
      const c = (await stats()).counters;
      closed = (c.slow_disconnects ?? 0) - (counters0.slow_disconnects ?? 0);
      if (!allOverflowedAt && (c.overflows ?? 0) - (counters0.overflows ?? 0) >= n) allOverflowedAt = Date.now();
      if (closed >= n) break;
      await sleep(250);
    }
    const c = (await stats()).counters;
    const s = (ms: number) => Math.round(ms / 100) / 10;
    return {
      clients: n,
      slowDisconnects: closed,
      lagDisconnects: (c.lag_disconnects ?? 0) - (counters0.lag_disconnects ?? 0),
      // Connect → overflow is the time to fill kernel buffers and the 4 MiB queue at this feed rate.
      secondsToAllOverflowed: s(allOverflowedAt - t0),
      secondsFromLastOverflowToAllClosed: s(Date.now() - allOverflowedAt),
    };
  });

  // 2. Idle connections: one quiet stream each (a kline), held, then all closed.
  await phase('idle', async () => {
    const n = num('idle');
    for (let i = 0; i < n; i += 100) await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => connectWs(`${ws}/ws/${symbolNames[0]}@kline_1h`)));
    await sleep(num('hold') * 1000);
    return { connections: n };
  });

  // 3. Churn: a steady rate of connections that subscribe, live a moment, and go.
  await phase('churn', async () => {
    const rate = num('churn-rate');
    const until = Date.now() + num('churn-seconds') * 1000;
    let made = 0;
    let failed = 0;
    const pending = new Set<Promise<void>>();
    while (Date.now() < until) {
      const tick = Date.now();
      for (let i = 0; i < rate / 10; i++) {
        const p = connectWs(`${ws}/stream?streams=${allStreams[made % allStreams.length]}`)
          .then(async (c) => {
            made++;
            await sleep(500);
            c.close();
          })
          .catch(() => void failed++)
          .finally(() => pending.delete(p));
        pending.add(p);
      }
      await sleep(Math.max(0, 100 - (Date.now() - tick)));
    }
    await Promise.all(pending);
    return { connections: made, failed, ratePerSec: rate };
  });

  // 4. REST: chart-opening kline queries from many connections at once.
  await phase('rest', async () => {
    const r = await autocannon({
      url: `${http}/api/v3/klines?symbol=${symbolNames[0]!.toUpperCase()}&interval=1m&limit=500`,
      connections: num('rest-connections'),
      duration: num('rest-seconds'),
    });
    return { connections: num('rest-connections'), requests: r.requests.total, non2xx: r.non2xx, errors: r.errors };
  });

  const row = (r: PhaseResult): [string, string] => [
    r.phase,
    `heap ${r.before.heapUsed} → ${r.peak.heapUsed} → ${r.after.heapUsed} MB (lowest after ${r.afterMin.heapUsed} MB, ${Math.round(((r.afterMin.heapUsed - r.before.heapUsed) / r.before.heapUsed) * 100)} %) · ` +
      `heapTotal ${r.before.heapTotal} → ${r.peak.heapTotal} → ${r.after.heapTotal} MB · RSS ${r.before.rss} → ${r.peak.rss} → ${r.after.rss} MB · external ${r.before.external} → ${r.peak.external} → ${r.after.external} MB · ${JSON.stringify(r.detail)}`,
  ];
  console.log(`gateway memory: before → peak during → ${num('after')} s after each load`);
  console.log(table(results.map(row)));
  const dir = join(values.out!, `${startedAt.toISOString().replace(/[:.]/g, '-')}-gateway-memory`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'summary.json'), JSON.stringify({ options: values, machine: machineInfo(ROOT), results, samples }, null, 2) + '\n');
  console.log(`report: ${dir}`);
} finally {
  clearInterval(sampler);
  for (const c of open) c.terminate();
  await cluster.stop();
}
