// The market-push pipeline as the benchmarks start it: nats-server, router,
// push-server, feed and gateway as real processes (test/helpers/cluster.ts),
// the load fleet's clients connected to the gateway. Shared by bench:fanout
// and bench:peers so both measure the same cluster.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { adminHeaders, startCluster, startRole, waitFor, type RoleProc, type TestCluster } from '../../test/helpers/cluster.ts';
import { LoadFleet } from './load-fleet.ts';
import { streamUrl, type SubscriptionPlan } from './subscriptions.ts';

export interface PipelineOptions {
  clients: number;
  symbols: number;
  format: 'json' | 'protobuf';
  /** Roles started under node --cpu-prof (gateway, server, feed). */
  profile: Set<string>;
  /** CPU affinity per process name prefix (see pinProcs). */
  pin: Record<string, string>;
  flushMs?: number;
  publishMs?: number;
  /** Start the bus tap (feed → NATS latency); default true. */
  busTap?: boolean;
  /** Connect the plan's clients to the gateway; default true (bench:peers' idle-memory phase connects its own). */
  connectClients?: boolean;
}

/** Registers a stop function with the caller's cleanup list (run in reverse order at exit). */
export type OnCleanup = (what: string, fn: () => Promise<void>) => void;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
// Let the gateway's upstream subscriptions settle after the clients connect.
const SETTLE_MS = 1_000;

/** A JSON call; admin listeners want the operator's token, which client ports simply ignore. */
export async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, { ...init, headers: { ...adminHeaders(), ...(init?.headers as Record<string, string> | undefined) }, signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

export function parsePins(spec: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of spec.split(',').filter(Boolean)) {
    const m = /^([a-z-]+)=([0-9][0-9,-]*)$/.exec(part.trim());
    if (!m) throw new Error(`--pin: "${part}" is not ROLE=CPUS (e.g. gateway=1 or load-clients=0-1)`);
    out[m[1]!] = m[2]!.replace(/,/g, ' ').trim().replace(/ /g, ',');
  }
  return out;
}

/** Applies --pin to every thread of the named processes (taskset -a). */
export function pinProcs(procs: Record<string, number>, pins: Record<string, string>): void {
  for (const [name, pid] of Object.entries(procs)) {
    const key = Object.keys(pins).find((k) => name === k || name.startsWith(`${k}-`) || (name === 'raw-server' && k === 'gateway'));
    if (!key || !pid) continue;
    const r = spawnSync('taskset', ['-a', '-pc', pins[key]!, String(pid)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`--pin ${key}=${pins[key]}: taskset failed for ${name} (pid ${pid}): ${(r.stderr || r.error?.message || '').trim()}`);
  }
}

export interface Pipeline {
  cluster: TestCluster;
  feed: RoleProc;
  /** The bus tap (feed → NATS latency), when asked for. */
  tap: LoadFleet | undefined;
  gatewayUrl: string;
  /** The gateway's admin listener: egress latency and /stats. */
  gatewayAdminUrl: string;
  procs: Record<string, number>;
  setRate(rate: number): Promise<unknown>;
  feedLagMs(): Promise<number | null>;
  roleStats(): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** A fresh cluster (nats, router, server, feed at startRate, gateway) with the fleet's clients connected to it. */
export async function startPipeline(o: PipelineOptions, plan: SubscriptionPlan, fleet: LoadFleet, startRate: number, profileDir: string, capMs: number, onCleanup: OnCleanup): Promise<Pipeline> {
  const withProfile = async <T>(role: string, fn: () => Promise<T>): Promise<T> => {
    if (!o.profile.has(role)) return fn();
    const before = process.env.NODE_OPTIONS;
    const dir = join(profileDir, role);
    mkdirSync(dir, { recursive: true });
    process.env.NODE_OPTIONS = `${before ?? ''} --cpu-prof --cpu-prof-dir=${dir}`.trim();
    try {
      return await fn();
    } finally {
      if (before === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = before;
    }
  };
  // The roles start one by one (not through startCluster's feed) so a profile covers exactly one role.
  const cluster: TestCluster = await startCluster({ servers: 0, gateways: 0, feed: false });
  let feed: RoleProc | undefined;
  let tap: LoadFleet | undefined;
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      await fleet.closeConnections();
      await tap?.stop();
      await feed?.kill();
      await cluster.stop();
    })());
  onCleanup('pipeline cluster (nats, router, server, feed, gateway, bus tap)', stop);
  // A tenth of the symbols is plenty for the feed → NATS figure, at a tenth of the tap's cost (a process only (b) has).
  if (o.busTap !== false) tap = await LoadFleet.tap(cluster.nats.url, capMs, plan.symbols.filter((_, i) => i % 10 === 0).map((s) => `md.trade.${s}`));
  await withProfile('server', () => cluster.startServer(1));
  feed = await withProfile('feed', () =>
    startRole('feed', {
      id: 'feed-1', nats: cluster.nats.url, routers: [cluster.routerAdminUrl], adminPort: 0, heartbeatMs: 300,
      symbols: o.symbols, rate: startRate, tickerMs: 1000, klineMs: 1000, depthSnapshotMs: 1000,
      ...(o.publishMs !== undefined ? { publishIntervalMs: o.publishMs } : {}),
    }),
  );
  await waitFor(async () => (await getJson<{ symbols: string[] }>(`${cluster.routerUrl}/v1/symbols`)).symbols.length >= o.symbols, 15_000, 'the feed symbols at the router');
  // Admission control would only slow the benchmark's own connect burst.
  await withProfile('gateway', () => cluster.startGateway(1, { acceptRate: 100_000, ...(o.flushMs !== undefined ? { flushIntervalMs: o.flushMs } : {}) }));
  const gateways = await getJson<{ gateways: { id: string; url: string }[] }>(`${cluster.routerUrl}/v1/gateways?protocol=ws`);
  const gatewayUrl = gateways.gateways[0]?.url;
  if (!gatewayUrl) throw new Error('the router lists no ws gateway');
  if (o.connectClients !== false) {
    const conn = await fleet.connect(plan.clients.map((s) => streamUrl(gatewayUrl, s, o.format)), 60_000);
    console.log(`  gateway ${gatewayUrl}: connected ${conn.open}/${o.clients} in ${conn.ms} ms${conn.failed ? ` (${conn.failed} failed: ${conn.errors.join('; ')})` : ''}`);
    if (conn.open === 0) throw new Error('pipeline phase: no client could connect');
  }
  // Let the gateway's upstream subscriptions settle.
  await sleep(SETTLE_MS);

  const gw = cluster.gateways[0]!;
  const server = cluster.servers[0]!;
  const f = feed;
  const statsOf = async (url: string) => {
    try {
      return await getJson<Record<string, unknown>>(`${url}/stats`);
    } catch {
      return null;
    }
  };
  const procs = {
    nats: cluster.nats.proc.pid ?? 0,
    feed: f.proc.pid ?? 0,
    server: server.proc.pid ?? 0,
    gateway: gw.proc.pid ?? 0,
    router: cluster.routers[0]!.proc.pid ?? 0,
    ...(tap ? { 'bus-tap': tap.pids[0]! } : {}),
    ...Object.fromEntries(fleet.pids.map((p, i) => [`load-clients-${i + 1}`, p])),
  };
  pinProcs(procs, o.pin);
  return {
    cluster,
    feed: f,
    tap,
    gatewayUrl,
    gatewayAdminUrl: gw.urls.admin!,
    procs,
    setRate: (rate) => getJson(`${f.urls.admin}/admin/config`, { method: 'POST', body: JSON.stringify({ rate }), headers: { 'content-type': 'application/json' } }),
    feedLagMs: async () => ((await statsOf(f.urls.admin!)) as { maxLagMs?: number } | null)?.maxLagMs ?? null,
    roleStats: async () => ({ gateway: await statsOf(gw.urls.admin!), server: await statsOf(server.urls.admin!), feed: await statsOf(f.urls.admin!) }),
    stop,
  };
}
