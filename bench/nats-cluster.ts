// `npm run bench:nats-cluster`: what a 3-node NATS cluster costs against one
// nats-server, with the configs `pushctl up` writes (same users, route
// credential, JetStream). Four figures, each the best of --repeats runs:
//   core 1 node      publish → subscribe on one server
//   core 3 nodes     publisher on node 1, subscriber on node 2 (one route hop)
//   js R1, js R3     JetStream publishes acked (window of --window in flight)
//                    into a stream with 1 replica on one server / 3 replicas
// Writes reports/<time>-nats-cluster/summary.json. Everything it starts is
// stopped at the end, on Ctrl-C and on error; every loop is bounded in count
// and time.
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { generateSecrets, type Credential } from '../system/common/secrets.ts';
import { natsServerConfig } from '../cli/lib/nats-server-config.ts';
import { natsClusterBlock } from '../cli/lib/nats-cluster.ts';
import { findOnPath } from '../cli/lib/binaries.ts';
import { freePorts, isPortFree } from '../cli/lib/ports.ts';
import { KLINE_STREAM, ensureKlineStream } from '../system/history/kline-stream.ts';
import { cleanupList } from './lib/cleanups.ts';
import { machineInfo } from './lib/report.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '200000' },
    'js-messages': { type: 'string', default: '20000' },
    size: { type: 'string', default: '200' },
    window: { type: 'string', default: '256' },
    repeats: { type: 'string', default: '3' },
    'max-seconds': { type: 'string', default: '300' },
    out: { type: 'string', default: 'reports' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (values.help) {
  console.log(`usage: npm run bench:nats-cluster -- [--messages N] [--js-messages N] [--size BYTES] [--window N] [--repeats N] [--max-seconds S] [--out DIR]`);
  process.exit(0);
}
const o = {
  messages: Number(values.messages), jsMessages: Number(values['js-messages']), size: Number(values.size),
  window: Number(values.window), repeats: Number(values.repeats), maxSeconds: Number(values['max-seconds']),
};
for (const [k, v] of Object.entries(o)) if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer`);

const bin = findOnPath('nats-server');
if (!bin) throw new Error('nats-server is not on PATH (scripts/system-deps.sh installs it)');
const secrets = generateSecrets();
const { onCleanup, cleanup } = cleanupList();
const hardCap = setTimeout(() => {
  console.error(`bench:nats-cluster: over --max-seconds ${o.maxSeconds}; stopping`);
  void cleanup().then(() => process.exit(1));
}, o.maxSeconds * 1000);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void cleanup().then(() => process.exit(130)));

/** Starts n nats-servers (n > 1: joined by routes); resolves with their client URLs once JetStream answers. */
async function startServers(n: number): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'mp-bench-nats-'));
  onCleanup(`nats dir ${dir}`, async () => rmSync(dir, { recursive: true, force: true }));
  const ports = await freePorts(2 * n, '127.0.0.1');
  const routes = Array.from({ length: n }, (_, i) => ({ host: '127.0.0.1', port: ports[n + i]! }));
  const urls: string[] = [];
  for (let i = 0; i < n; i++) {
    const file = join(dir, `nats-${i + 1}.conf`);
    const text = natsServerConfig({
      host: '127.0.0.1', port: ports[i]!, storeDir: join(dir, `js-${i + 1}`), secrets,
      ...(n > 1 ? { cluster: natsClusterBlock({ index: i, routes }, secrets) } : {}),
    });
    writeFileSync(file, text, { mode: 0o600 });
    const child = spawn(bin!, ['-c', file], { stdio: 'ignore' });
    onCleanup(`nats-server ${i + 1}`, async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    });
    urls.push(`nats://127.0.0.1:${ports[i]}`);
  }
  // Every node listening, then JetStream ready (a meta leader elected): the operator may ask $JS.API.INFO.
  for (let i = 0; i < n; i++) {
    const until = Date.now() + 15_000;
    while (await isPortFree(ports[i]!, '127.0.0.1')) {
      if (Date.now() > until) throw new Error(`nats-server ${i + 1} did not listen on ${ports[i]} within 15 s`);
      await sleep(50);
    }
  }
  const nc = await connect({ servers: urls, user: secrets.nats.operator.user, pass: secrets.nats.operator.password, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await (await jetstreamManager(nc, { timeout: 2_000 })).getAccountInfo();
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
  await nc.close();
  return urls;
}

const conn = (url: string, u: Credential) => connect({ servers: url, user: u.user, pass: u.password });

/** Core NATS: publish `messages` as fast as the client flushes; msgs/s as the subscriber counts them. */
async function corePubSub(pubUrl: string, subUrl: string): Promise<number> {
  const op = secrets.nats.operator;
  const [pub, sub] = [await conn(pubUrl, op), await conn(subUrl, op)];
  try {
    let got = 0;
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    const subject = 'pushctl.bench.cluster';
    sub.subscribe(subject, {
      callback: () => {
        if (++got >= o.messages) done();
      },
    });
    await sub.flush();
    // Interest must have crossed the route before the clock starts.
    for (let i = 0; i < 50 && got === 0; i++) {
      pub.publish(subject, new Uint8Array(1));
      await pub.flush();
      await sleep(20);
    }
    got = 0;
    const payload = new Uint8Array(o.size);
    const t0 = performance.now();
    for (let i = 0; i < o.messages; i++) {
      pub.publish(subject, payload);
      if (i % 1000 === 999) await pub.flush(); // bounded in-flight bytes
    }
    await pub.flush();
    await Promise.race([all, sleep(60_000)]);
    const s = (performance.now() - t0) / 1000;
    if (got < o.messages) console.warn(`  core: ${o.messages - got} of ${o.messages} not delivered within 60 s`);
    return got / s;
  } finally {
    await Promise.all([pub.close(), sub.close()]);
  }
}

/** JetStream: acked publishes into KLINES (replicas as given), `window` in flight; acks/s. */
async function jsPublish(url: string, replicas: number): Promise<number> {
  const nc: NatsConnection = await conn(url, secrets.nats.feed);
  try {
    await ensureKlineStream(nc, replicas);
    const info = await (await jetstreamManager(nc)).streams.info(KLINE_STREAM);
    if (info.config.num_replicas !== replicas) throw new Error(`KLINES has ${info.config.num_replicas} replicas, wanted ${replicas}`);
    const js = jetstream(nc);
    const payload = new Uint8Array(o.size);
    let next = 0;
    let acked = 0;
    const t0 = performance.now();
    const worker = async () => {
      while (next < o.jsMessages && performance.now() - t0 < 60_000) {
        const i = next++;
        await js.publish(`kline.closed.bench${i % 10}.1m`, payload, { msgID: `b${t0}-${i}` });
        acked++;
      }
    };
    await Promise.all(Array.from({ length: o.window }, worker));
    return acked / ((performance.now() - t0) / 1000);
  } finally {
    await nc.close();
  }
}

const best = (xs: number[]) => Math.round(Math.max(...xs));
async function main(): Promise<void> {
  const results: Record<string, number[]> = { core1: [], core3: [], jsR1: [], jsR3: [] };
  for (let r = 0; r < o.repeats; r++) {
    // Fresh servers per repetition: one run's JetStream files do not slow the next.
    const one = await startServers(1);
    results.core1!.push(await corePubSub(one[0]!, one[0]!));
    results.jsR1!.push(await jsPublish(one[0]!, 1));
    const three = await startServers(3);
    results.core3!.push(await corePubSub(three[0]!, three[1]!));
    results.jsR3!.push(await jsPublish(three[0]!, 3));
    await cleanup();
    console.log(`run ${r + 1}/${o.repeats}: core ${Math.round(results.core1!.at(-1)!)} vs ${Math.round(results.core3!.at(-1)!)} msgs/s; JetStream R1 ${Math.round(results.jsR1!.at(-1)!)} vs R3 ${Math.round(results.jsR3!.at(-1)!)} acks/s`);
  }
  const summary = {
    bench: 'nats-cluster',
    options: o,
    machine: machineInfo(ROOT),
    bestOf: o.repeats,
    core: { oneNodeMsgsPerSec: best(results.core1!), threeNodesCrossRouteMsgsPerSec: best(results.core3!), ratio: +(best(results.core3!) / best(results.core1!)).toFixed(2) },
    jetstream: { r1OneNodeAcksPerSec: best(results.jsR1!), r3ThreeNodesAcksPerSec: best(results.jsR3!), ratio: +(best(results.jsR3!) / best(results.jsR1!)).toFixed(2) },
    runs: results,
  };
  const dir = join(ROOT, values.out!, `${new Date().toISOString().replace(/[:.]/g, '-')}-nats-cluster`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  console.log(`core pub/sub (${o.size} B): 1 node ${summary.core.oneNodeMsgsPerSec} msgs/s, 3 nodes (across a route) ${summary.core.threeNodesCrossRouteMsgsPerSec} msgs/s (×${summary.core.ratio})`);
  console.log(`JetStream acked publishes: R1 on 1 node ${summary.jetstream.r1OneNodeAcksPerSec}/s, R3 on 3 nodes ${summary.jetstream.r3ThreeNodesAcksPerSec}/s (×${summary.jetstream.ratio})`);
  console.log(`report: ${join(dir, 'summary.json')}`);
}

try {
  await main();
} finally {
  clearTimeout(hardCap);
  await cleanup();
}
