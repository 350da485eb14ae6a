// Runs the real roles as OS processes for integration tests (and the fan-out
// benchmark): a nats-server on a free port, routers, servers, gateways and a
// feed, each `node system/<role>/main.ts --config <json>`. Everything it
// starts is stopped by stop(), also after a failed start.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startNats, type RunningServer } from './servers.ts';
import { nodeFlagsFor } from '../../system/common/node-flags.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface RoleProc {
  id: string;
  role: string;
  proc: ChildProcess;
  urls: Record<string, string>;
  output: string[];
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startRole(role: string, config: Record<string, unknown>, timeoutMs = 20_000): Promise<RoleProc> {
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
  nats: RunningServer;
  routers: RoleProc[];
  servers: RoleProc[];
  gateways: RoleProc[];
  feed: RoleProc | undefined;
  routerUrl: string;
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
}

export async function startCluster(o: ClusterOptions = {}): Promise<TestCluster> {
  const nats = await startNats();
  const all: RoleProc[] = [];
  const cluster: TestCluster = {
    nats,
    routers: [],
    servers: [],
    gateways: [],
    feed: undefined,
    routerUrl: '',
    startServer: async (i) => {
      const p = await startRole('server', {
        id: `server-${i}`, nats: nats.url, routers: [cluster.routerUrl], grpcPort: 0, adminPort: 0, heartbeatMs: 300, ...o.server,
      });
      all.push(p);
      cluster.servers.push(p);
      return p;
    },
    startGateway: async (i, extra = {}) => {
      const p = await startRole('gateway', {
        id: `gateway-${i}`, nats: nats.url, routers: [cluster.routerUrl], port: 0, heartbeatMs: 300, ...o.gateway, ...extra,
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
    const router = await startRole('router', { id: 'router-1', nats: nats.url, port: routerPort, expiryMs: 2_000 });
    all.push(router);
    cluster.routers.push(router);
    cluster.routerUrl = `http://127.0.0.1:${routerPort}`;
    for (let i = 1; i <= (o.servers ?? 1); i++) await cluster.startServer(i);
    if (o.feed !== false) {
      cluster.feed = await startRole('feed', {
        id: 'feed-1', nats: nats.url, routers: [cluster.routerUrl], adminPort: 0, heartbeatMs: 300,
        symbols: o.symbols ?? 3, rate: o.rate ?? 20, tickerMs: 200, klineMs: 200, depthSnapshotMs: 250, ...(o.feed ?? {}),
      });
      all.push(cluster.feed);
    }
    // Gateways validate topics against the feed's symbols: let the feed's first heartbeat land.
    if (cluster.feed) await waitFor(async () => ((await (await fetch(`${cluster.routerUrl}/v1/symbols`)).json()) as { symbols: string[] }).symbols.length > 0, 10_000);
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
