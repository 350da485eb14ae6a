// `npm run bench:conn-memory`: what one idle subscribed WebSocket connection
// costs the market-push gateway and push-server, and where the bytes go
// (issue 13). The pipeline of bench:peers (nats, router, server, feed at rate
// 0, gateway), then N clients (10 `<sym>@trade` topics each, no traffic)
// connected in --steps equal batches. After each batch: RSS of the gateway
// and the server, and the gateway's heap and external memory (/stats). With
// --heap-snapshot, a heap snapshot of the gateway and the server (each taken
// after a full GC, through --heapsnapshot-signal) before the first and after
// the last batch; their difference ÷ N, per constructor, is the heap's share
// of a connection, object by object. Writes reports/<time>-conn-memory/summary.json.
//   --connections 10000 --steps 2 --load-procs 4 --symbols 100 --topics-per-client 10 --heap-snapshot
import { parseArgs } from 'node:util';
import { mkdirSync, readdirSync, statSync, writeFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoadFleet } from './lib/load-fleet.ts';
import { planSubscriptions, streamUrl } from './lib/subscriptions.ts';
import { startPipeline, getJson } from './lib/pipeline.ts';
import { treeRssBytes } from './lib/peers/memory.ts';
import { cleanupList } from './lib/cleanups.ts';
import { machineInfo } from './lib/report.ts';
import { perConnection, summarizeHeapSnapshot, type HeapSummary } from './lib/heap-summary.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '10000' }, steps: { type: 'string', default: '2' },
    'load-procs': { type: 'string', default: '4' }, symbols: { type: 'string', default: '100' },
    'topics-per-client': { type: 'string', default: '10' }, 'heap-snapshot': { type: 'boolean', default: false },
    settle: { type: 'string', default: '3' }, out: { type: 'string', default: join(ROOT, 'reports') },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (values.help) {
  console.log('usage: npm run bench:conn-memory -- [--connections 10000] [--steps 2] [--load-procs 4] [--symbols 100] [--topics-per-client 10] [--settle 3] [--heap-snapshot] [--out reports]');
  process.exit(0);
}
const num = (k: keyof typeof values, min: number, max: number) => {
  const n = Number(values[k]);
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`bench:conn-memory: --${k} must be an integer in [${min}, ${max}], got "${values[k]}"`);
    process.exit(2);
  }
  return n;
};
const N = num('connections', 1, 100_000);
const steps = num('steps', 1, 20);
const loadProcs = num('load-procs', 1, 16);
const symbolCount = num('symbols', 1, 10_000);
const topicsPerClient = num('topics-per-client', 1, 255);
const settleMs = num('settle', 0, 120) * 1000;
const capMs = 120_000 + N * 30;

const { onCleanup, cleanup } = cleanupList();
const hardCap = setTimeout(() => {
  console.error('bench:conn-memory: hard cap reached; stopping everything');
  void cleanup().then(() => process.exit(2));
}, capMs);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void cleanup().then(() => process.exit(130)));

interface Sample {
  connections: number;
  gatewayRss: number;
  serverRss: number;
  gatewayMemMb: Record<string, number>;
}

/** Asks a role (started with --heapsnapshot-signal) for a snapshot and waits until the file is complete. */
async function heapSnapshot(dir: string, pid: number): Promise<string> {
  const mine = () => readdirSync(dir).filter((f) => f.includes(`.${pid}.`) && f.endsWith('.heapsnapshot'));
  const known = new Set(mine());
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 300_000;
  let last = -1;
  while (Date.now() < deadline) {
    await sleep(1_000);
    const f = mine().find((x) => !known.has(x));
    if (!f) continue;
    const size = statSync(join(dir, f)).size;
    // The writer ends with the strings table's closing brackets; a stable size over a second means it is done.
    if (size > 0 && size === last) return join(dir, f);
    last = size;
  }
  throw new Error(`no heap snapshot from pid ${pid} within 300 s`);
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const dir = join(resolve(values.out), `${startedAt.toISOString().replace(/[:.]/g, '-')}-conn-memory`);
  const snapDir = join(dir, 'snapshots');
  mkdirSync(snapDir, { recursive: true });
  const fleet = await LoadFleet.start(loadProcs, capMs);
  onCleanup('load clients', () => fleet.stop());
  const plan = planSubscriptions(N, symbolCount, topicsPerClient);
  // Every role of the pipeline writes a snapshot on SIGUSR2 (only the gateway and the server are asked).
  const before = process.env.NODE_OPTIONS;
  if (values['heap-snapshot']) process.env.NODE_OPTIONS = `${before ?? ''} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapDir}`.trim();
  const plan0 = { symbols: plan.symbols, clients: [], subscribersPerSymbol: [], totalSubscriptions: 0 };
  const pipe = await startPipeline(
    { clients: 0, symbols: symbolCount, format: 'json', profile: new Set(), pin: {}, busTap: false, connectClients: false },
    plan0, fleet, 0, '', capMs, onCleanup,
  );
  if (before === undefined) delete process.env.NODE_OPTIONS;
  else process.env.NODE_OPTIONS = before;
  const gw = pipe.procs.gateway!;
  const server = pipe.procs.server!;
  const sample = async (connections: number): Promise<Sample> => {
    const st = await getJson<{ memoryMb: Record<string, number> }>(`${pipe.gatewayAdminUrl}/stats`);
    const s = { connections, gatewayRss: treeRssBytes(gw) ?? 0, serverRss: treeRssBytes(server) ?? 0, gatewayMemMb: st.memoryMb };
    console.log(`  ${String(connections).padStart(6)} connections: gateway RSS ${(s.gatewayRss / 1048576).toFixed(1)} MB (heap ${st.memoryMb.heapUsed} MB used / ${st.memoryMb.heapTotal} MB, external ${st.memoryMb.external} MB), server RSS ${(s.serverRss / 1048576).toFixed(1)} MB`);
    return s;
  };
  await sleep(settleMs);
  let snaps: { gateway: [HeapSummary, HeapSummary]; server: [HeapSummary, HeapSummary] } | undefined;
  const first: Partial<Record<'gateway' | 'server', HeapSummary>> = {};
  if (values['heap-snapshot']) {
    first.gateway = summarizeHeapSnapshot(await heapSnapshot(snapDir, gw));
    first.server = summarizeHeapSnapshot(await heapSnapshot(snapDir, server));
  }
  const samples = [await sample(0)];
  let open = 0;
  for (let i = 0; i < steps; i++) {
    const batch = plan.clients.slice(Math.floor((i * N) / steps), Math.floor(((i + 1) * N) / steps));
    const r = await fleet.connect(batch.map((s) => streamUrl(pipe.gatewayUrl, s, 'json')), 180_000);
    open = r.open; // the fleet reports every connection it holds, not only this batch
    if (r.failed) console.log(`  ${r.failed} connections failed: ${r.errors.join('; ')}`);
    await sleep(settleMs);
    samples.push(await sample(open));
  }
  if (values['heap-snapshot']) {
    snaps = {
      gateway: [first.gateway!, summarizeHeapSnapshot(await heapSnapshot(snapDir, gw))],
      server: [first.server!, summarizeHeapSnapshot(await heapSnapshot(snapDir, server))],
    };
  }
  await cleanup();
  clearTimeout(hardCap);

  const a = samples[0]!;
  const z = samples.at(-1)!;
  const perConn = (x: number, y: number, n: number) => (n > 0 ? Math.round((y - x) / n) : null);
  // The slope between the first and the last batch leaves out one-off growth (young generation, parser pool) that the first batch pays.
  const s1 = samples[1]!;
  const result = {
    bench: 'conn-memory', startedAt: startedAt.toISOString(), command: `npm run bench:conn-memory -- ${process.argv.slice(2).join(' ')}`.trim(),
    options: { connections: N, steps, loadProcs, symbols: symbolCount, topicsPerClient, settleMs }, machine: machineInfo(ROOT), samples,
    perConnection: {
      gatewayRssBytes: perConn(a.gatewayRss, z.gatewayRss, z.connections),
      serverRssBytes: perConn(a.serverRss, z.serverRss, z.connections),
      gatewayRssSlopeBytes: steps > 1 ? perConn(s1.gatewayRss, z.gatewayRss, z.connections - s1.connections) : null,
      serverRssSlopeBytes: steps > 1 ? perConn(s1.serverRss, z.serverRss, z.connections - s1.connections) : null,
    },
    heap: snaps
      ? Object.fromEntries(Object.entries(snaps).map(([role, [b, e]]) => [role, { liveBytesPerConnection: Math.round((e.totalBytes - b.totalBytes) / z.connections), rows: perConnection(b, e, z.connections).slice(0, 40) }]))
      : undefined,
  };
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(result, null, 2) + '\n');
  const kb = (b: number | null) => (b === null ? '?' : `${(b / 1024).toFixed(2)} KiB`);
  console.log(`\nper connection (${z.connections} connections): gateway RSS ${kb(result.perConnection.gatewayRssBytes)} (slope ${kb(result.perConnection.gatewayRssSlopeBytes)}), server RSS ${kb(result.perConnection.serverRssBytes)} (slope ${kb(result.perConnection.serverRssSlopeBytes)})`);
  for (const [role, h] of Object.entries(result.heap ?? {})) {
    console.log(`\n${role}: live heap after GC ${kb(h.liveBytesPerConnection)} per connection`);
    for (const r of h.rows) console.log(`  ${r.bytesPerConn.toFixed(0).padStart(6)} B  ${r.countPerConn.toFixed(2).padStart(6)} ×  ${r.key}`);
  }
  // The snapshots are hundreds of MB: only the summary stays.
  rmSync(snapDir, { recursive: true, force: true });
  console.log(`report: ${dir}`);
}

main().catch(async (err: unknown) => {
  console.error(`bench:conn-memory failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  await cleanup();
  process.exit(1);
});
