// Runs the real roles as OS processes for integration tests (and the fan-out
// benchmark): a nats-server on a free port, routers, servers, gateways and a
// feed, each `node system/<role>/main.ts --config <json>`. Everything it
// starts is stopped by stop(), also after a failed start. Every role gets
// the test run's secrets file (testSecrets) unless its config names one
// (secretsFile: null starts a role without secrets).
import { spawn, type ChildProcess } from 'node:child_process';
import { get as httpsGet } from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startNats, startRestartableNats, type RestartableNats, type RunningServer } from './servers.ts';
import { natsServerConfig } from '../../cli/lib/nats-server-config.ts';
import { nodeFlagsFor } from '../../system/common/node-flags.ts';
import { generateSecrets, writeSecretsFile, type ClusterSecrets } from '../../system/common/secrets.ts';

let shared: { file: string; secrets: ClusterSecrets } | undefined;

/** One generated secrets file (0600) for this test process, removed when it exits. */
export function testSecrets(): { file: string; secrets: ClusterSecrets } {
  if (shared) return shared;
  const dir = mkdtempSync(join(tmpdir(), 'mp-secrets-'));
  const file = join(dir, 'secrets.json');
  const secrets = generateSecrets();
  writeSecretsFile(file, secrets);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  shared = { file, secrets };
  return shared;
}

/** Authorization header of the operator (admin token) and of a role (cluster token). */
export const adminHeaders = () => ({ authorization: `Bearer ${testSecrets().secrets.adminToken}` });
export const clusterHeaders = () => ({ authorization: `Bearer ${testSecrets().secrets.clusterToken}` });

/** GET/POST on an admin listener with the operator's token; the parsed JSON answer. */
export async function adminJson<T = any>(url: string, body?: unknown): Promise<T> {
  const res = await fetch(url, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { ...adminHeaders(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${body === undefined ? 'GET' : 'POST'} ${url}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface RoleProc {
  id: string;
  role: string;
  proc: ChildProcess;
  urls: Record<string, string>;
  output: string[];
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startRole(role: string, config: Record<string, unknown>, timeoutMs = 60_000): Promise<RoleProc> {
  if (!('secretsFile' in config)) config = { ...config, secretsFile: testSecrets().file };
  const proc = spawn(process.execPath, [...nodeFlagsFor(role), join(ROOT, 'system', role, 'main.ts'), '--config', JSON.stringify(config)], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    // Roles exit when this process dies (stdin closes), even if the test runner is killed.
    env: { ...process.env, PUSH_LOG_LEVEL: process.env.PUSH_LOG_LEVEL ?? 'warn', PUSH_EXIT_WITH_PARENT: '1' },
  });
  const output: string[] = [];
  proc.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(t);
  };
  const urls = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${role} ${config.id} not ready in ${timeoutMs} ms:\n${output.join('')}`)), timeoutMs);
    const lines = createInterface({ input: proc.stdout! });
    lines.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as { ready?: boolean; urls?: Record<string, string> };
        if (msg.ready) {
          clearTimeout(timer);
          resolve(msg.urls ?? {});
        }
      } catch {
        output.push(line);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${role} ${config.id} exited with ${code} before ready:\n${output.join('')}`));
    });
  }).catch(async (err) => {
    await kill('SIGKILL');
    throw err;
  });
  return { id: String(config.id), role, proc, urls, output, kill };
}

export interface TestCluster {
  /** A RestartableNats (crash/restart on the same port and store) when started with restartableNats. */
  nats: RunningServer | RestartableNats;
  /** With storeAuth: the cluster's secrets (NATS users). */
  secrets?: ClusterSecrets;
  routers: RoleProc[];
  servers: RoleProc[];
  gateways: RoleProc[];
  feed: RoleProc | undefined;
  /** The router's client port (GET /v1/gateways, /v1/symbols). */
  routerUrl: string;
  /** The router's admin listener: the registry roles use (cluster token), stats and drain (admin token). */
  routerAdminUrl: string;
  startServer(i: number): Promise<RoleProc>;
  startGateway(i: number, extra?: Record<string, unknown>): Promise<RoleProc>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  servers?: number;
  gateways?: number;
  symbols?: number;
  rate?: number;
  feed?: Record<string, unknown> | false;
  gateway?: Record<string, unknown>;
  server?: Record<string, unknown>;
  /** Router and gateway client ports over TLS with this pair; every role trusts the certificate. */
  tls?: { certFile: string; keyFile: string };
  /** NATS with the users and permissions `pushctl up` configures; every role connects as its own user. */
  storeAuth?: boolean;
  /** A nats-server the test can kill -9 and restart on the same port and JetStream store (not with storeAuth). */
  restartableNats?: boolean;
}

/** GET a JSON body; over https trusting only `caFile` (the test process itself trusts nothing extra). */
export function getJson<T>(url: string, caFile?: string): Promise<T> {
  if (!url.startsWith('https:')) return fetch(url).then((r) => r.json() as Promise<T>);
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, { ...(caFile ? { ca: readFileSync(caFile) } : {}), timeout: 3_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as T);
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

export async function startCluster(o: ClusterOptions = {}): Promise<TestCluster> {
  // With TLS: router and gateways serve it, and every role trusts the certificate for its calls to them.
  const tlsFor = (role: 'router' | 'gateway' | 'other') =>
    o.tls ? { tlsCaFile: o.tls.certFile, ...(role === 'other' ? {} : { tls: o.tls }) } : {};
  // storeAuth: NATS takes only the users `pushctl up` configures from the run's secrets file, and every role connects
  // as its kind's user (roles get that file by default: startRole).
  const secrets = o.storeAuth ? testSecrets().secrets : undefined;
  if (o.restartableNats && secrets) throw new Error('startCluster: restartableNats does not support storeAuth');
  const nats = o.restartableNats ? await startRestartableNats() : await startNats(secrets ? { configText: (port, storeDir) => natsServerConfig({ host: '127.0.0.1', port, storeDir, secrets }) } : {});
  const auth = secrets ? { natsAuth: true } : {};
  const all: RoleProc[] = [];
  const cluster: TestCluster = {
    nats,
    ...(secrets ? { secrets } : {}),
    routers: [],
    servers: [],
    gateways: [],
    feed: undefined,
    routerUrl: '',
    routerAdminUrl: '',
    startServer: async (i) => {
      const p = await startRole('server', {
        id: `server-${i}`, nats: nats.url, routers: [cluster.routerAdminUrl], grpcPort: 0, adminPort: 0, heartbeatMs: 300, ...auth, ...tlsFor('other'), ...o.server,
      });
      all.push(p);
      cluster.servers.push(p);
      return p;
    },
    startGateway: async (i, extra = {}) => {
      const p = await startRole('gateway', {
        id: `gateway-${i}`, nats: nats.url, routers: [cluster.routerAdminUrl], clientRouters: [cluster.routerUrl], port: 0, heartbeatMs: 300, ...auth, ...tlsFor('gateway'), ...o.gateway, ...extra,
      });
      all.push(p);
      cluster.gateways.push(p);
      return p;
    },
    stop: async () => {
      await Promise.all(all.map((p) => p.kill()));
      await nats.stop();
    },
  };
  try {
    const routerPort = await freePort();
    const router = await startRole('router', { id: 'router-1', nats: nats.url, port: routerPort, expiryMs: 2_000, ...auth, ...tlsFor('router') });
    all.push(router);
    cluster.routers.push(router);
    cluster.routerUrl = `${o.tls ? 'https' : 'http'}://127.0.0.1:${routerPort}`;
    cluster.routerAdminUrl = router.urls.admin!;
    for (let i = 1; i <= (o.servers ?? 1); i++) await cluster.startServer(i);
    if (o.feed !== false) {
      cluster.feed = await startRole('feed', {
        id: 'feed-1', nats: nats.url, routers: [cluster.routerAdminUrl], adminPort: 0, heartbeatMs: 300,
        symbols: o.symbols ?? 3, rate: o.rate ?? 20, tickerMs: 200, klineMs: 200, depthSnapshotMs: 250, ...auth, ...tlsFor('other'), ...(o.feed ?? {}),
      });
      all.push(cluster.feed);
    }
    // Gateways validate topics against the feed's symbols: let the feed's first heartbeat land.
    if (cluster.feed) await waitFor(async () => (await getJson<{ symbols: string[] }>(`${cluster.routerUrl}/v1/symbols`, o.tls?.certFile)).symbols.length > 0, 10_000);
    for (let i = 1; i <= (o.gateways ?? 1); i++) await cluster.startGateway(i);
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
