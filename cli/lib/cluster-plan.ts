// Pure planning for `pushctl up`: which backends to use, which ports every
// process gets, the config each role is started with, the order they start
// in, and where they log. No I/O here, so the whole layout is unit-tested.
import { join } from 'node:path';
import type { RoleName } from '../../system/common/config.ts';

export interface RoleCounts {
  routers: number;
  gateways: number;
  servers: number;
}

/** Every port the cluster may listen on. */
export interface PortMap {
  routers: number[];
  control: number;
  gateways: number[];
  serverGrpc: number[];
  serverAdmin: number[];
  feedAdmin: number;
  nats: number;
  redis: number;
}

export type BusChoice = { kind: 'external'; url: string } | { kind: 'spawn'; bin: string } | { kind: 'embedded' };
export type CacheChoice = { kind: 'external'; url: string } | { kind: 'spawn'; bin: string } | { kind: 'none' };
/** Kline history's cold tier: the embedded node:sqlite file, an existing Cassandra/Scylla, or a node started from Maven Central's jars. */
export type HistoryChoice = { kind: 'embedded' } | { kind: 'external'; contactPoints: string } | { kind: 'spawn'; port: number };

export interface BackendFlags {
  nats?: string;
  redis?: string;
  embedded?: boolean;
}

/** Binaries found on PATH (absolute paths), or undefined. */
export interface FoundBinaries {
  natsServer?: string;
  redisServer?: string;
}

/**
 * NATS: --nats URL, else a nats-server on PATH, else the embedded in-memory bus.
 * Redis: --redis URL, else a redis-server on PATH, else none (servers keep their
 * kline cache in memory). --embedded forces the in-memory bus and spawns no
 * binaries; an explicit --redis URL is still passed on.
 */
export function chooseBackends(flags: BackendFlags, found: FoundBinaries): { bus: BusChoice; cache: CacheChoice } {
  if (flags.embedded && flags.nats) throw new Error('--embedded runs an in-memory bus; it cannot be combined with --nats');
  let bus: BusChoice;
  if (flags.embedded) bus = { kind: 'embedded' };
  else if (flags.nats) bus = { kind: 'external', url: flags.nats };
  else if (found.natsServer) bus = { kind: 'spawn', bin: found.natsServer };
  else bus = { kind: 'embedded' };

  let cache: CacheChoice;
  if (flags.redis) cache = { kind: 'external', url: flags.redis };
  else if (!flags.embedded && found.redisServer) cache = { kind: 'spawn', bin: found.redisServer };
  else cache = { kind: 'none' };
  return { bus, cache };
}

export const MAX_ROUTERS = 90; // router ports B+0…B+89, control at B+90
export const MAX_PER_ROLE = 100; // gateways, servers: 100 ports each

export function validateCounts(c: RoleCounts): void {
  if (!Number.isInteger(c.routers) || c.routers < 1 || c.routers > MAX_ROUTERS)
    throw new Error(`--routers must be between 1 and ${MAX_ROUTERS}`);
  if (!Number.isInteger(c.gateways) || c.gateways < 1 || c.gateways > MAX_PER_ROLE)
    throw new Error(`--gateways must be between 1 and ${MAX_PER_ROLE}`);
  if (!Number.isInteger(c.servers) || c.servers < 1 || c.servers > MAX_PER_ROLE)
    throw new Error(`--servers must be between 1 and ${MAX_PER_ROLE}`);
}

const range = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

/** The fixed layout from a base port B (see `pushctl up --help`). */
export function portsFromBase(base: number, c: RoleCounts): PortMap {
  validateCounts(c);
  if (!Number.isInteger(base) || base < 1 || base + 600 > 65535)
    throw new Error(`--port-base must be between 1 and ${65535 - 600} (or 0 for free ports)`);
  return {
    routers: range(c.routers, (i) => base + i),
    control: base + 90,
    gateways: range(c.gateways, (i) => base + 100 + i),
    serverGrpc: range(c.servers, (i) => base + 200 + i),
    serverAdmin: range(c.servers, (i) => base + 300 + i),
    feedAdmin: base + 400,
    nats: base + 500,
    redis: base + 600,
  };
}

/** How many ports `portsFromList` consumes. */
export function portCount(c: RoleCounts): number {
  return c.routers + 1 + c.gateways + 2 * c.servers + 1 + 2;
}

/** The same layout from a list of (free) ports, in `portCount` order. */
export function portsFromList(ports: number[], c: RoleCounts): PortMap {
  validateCounts(c);
  if (ports.length < portCount(c)) throw new Error(`need ${portCount(c)} ports, got ${ports.length}`);
  let next = 0;
  const take = (n: number) => ports.slice(next, (next += n));
  return {
    routers: take(c.routers),
    control: take(1)[0]!,
    gateways: take(c.gateways),
    serverGrpc: take(c.servers),
    serverAdmin: take(c.servers),
    feedAdmin: take(1)[0]!,
    nats: take(1)[0]!,
    redis: take(1)[0]!,
  };
}

export interface PlanInput extends RoleCounts {
  symbols: number;
  rate: number;
  /** Gateway flushIntervalMs and feed publishIntervalMs; unset: the roles' defaults. */
  flushMs?: number;
  publishMs?: number;
  host: string;
  dataDir: string;
  bus: BusChoice;
  cache: CacheChoice;
  ports: PortMap;
  /** Default: embedded. */
  history?: HistoryChoice;
  /** `up --isolate`: per process id, the network namespace it runs in and the address it binds and advertises. */
  isolate?: Record<string, { netns: string; addr: string }>;
}

export interface PlannedRole {
  id: string;
  role: RoleName;
  /** Start tier: routers 1, control and servers 2, gateways 3, feed 4. */
  tier: number;
  config: Record<string, unknown>;
  /** GET here answers 200 once the role is healthy. */
  healthUrl: string;
  /** Where the role is expected to be reachable (its readiness line may refine these). */
  urls: Record<string, string>;
  ports: number[];
}

export type ProcessKind = 'binary' | 'role' | 'embedded';

/** One OS process `up` starts. */
export interface PlannedProcess {
  id: string;
  kind: ProcessKind;
  tier: number;
  /** Binary path for kind 'binary'; a script path relative to the repo root for 'role' and 'embedded'. */
  command: string;
  args: string[];
  logFile: string;
  /** Ports the process will listen on (checked free before anything starts). */
  ports: number[];
  /** Ids whose readiness line must appear on stdout ('binary': none; wait for the port instead). */
  readyIds: string[];
  healthUrls: string[];
  /** For 'binary': directories to create first. */
  dirs: string[];
  /** `up --isolate`: started with `ip netns exec NETNS`, listening on `host` (its address there). */
  netns?: string;
  host?: string;
}

export interface ClusterPlan {
  mode: 'processes' | 'embedded';
  host: string;
  dataDir: string;
  logDir: string;
  stateFile: string;
  natsUrl?: string;
  redisUrl?: string;
  bus: BusChoice;
  cache: CacheChoice;
  history: HistoryChoice;
  /** Cassandra contact points when the history's cold tier is Cassandra. */
  cassandra?: string;
  roles: PlannedRole[];
  processes: PlannedProcess[];
  /** Gateways and servers that must be listed by the router's /v1/nodes before the cluster counts as up. */
  registeredIds: string[];
  /** Parts running in memory instead of on a real engine. */
  embeddedParts: string[];
  /** Every process in its own network namespace (`up --isolate`). */
  isolated: boolean;
}

export const roleScript = (role: RoleName) => `system/${role}/main.ts`;
export const EMBEDDED_SCRIPT = 'system/embedded.ts';

/** What `system/embedded.ts --config` receives. */
export interface EmbeddedConfig {
  id: string;
  logFile: string;
  roles: Array<{ role: RoleName; config: Record<string, unknown> }>;
}

export function planCluster(input: PlanInput): ClusterPlan {
  validateCounts(input);
  const { dataDir, ports } = input;
  const logDir = join(dataDir, 'logs');
  const logFile = (id: string) => join(logDir, `${id}.log`);
  const embedded = input.bus.kind === 'embedded';
  const history: HistoryChoice = input.history ?? { kind: 'embedded' };
  const iso = input.isolate;
  if (iso && (input.bus.kind !== 'spawn' || input.cache.kind === 'external' || history.kind !== 'embedded'))
    throw new Error('--isolate needs the nats-server (and redis-server, if any) pushctl starts, and the embedded history store');
  // Isolated, each process binds and advertises its own namespace address; else all share `host`.
  const hostOf = (id: string) => {
    if (!iso) return input.host;
    const a = iso[id]?.addr;
    if (!a) throw new Error(`--isolate: no namespace planned for ${id}`);
    return a;
  };
  const nsOf = (id: string) => (iso ? { netns: iso[id]!.netns, host: iso[id]!.addr } : {});
  const httpOf = (id: string, port: number) => `http://${hostOf(id)}:${port}`;
  const host = input.host;

  const natsUrl =
    input.bus.kind === 'external' ? input.bus.url : input.bus.kind === 'spawn' ? `nats://${hostOf('nats')}:${ports.nats}` : undefined;
  const redisUrl =
    input.cache.kind === 'external' ? input.cache.url : input.cache.kind === 'spawn' ? `redis://${hostOf('redis')}:${ports.redis}` : undefined;

  const cassandra = history.kind === 'external' ? history.contactPoints : history.kind === 'spawn' ? `${host}:${history.port}` : undefined;
  const serverHistory = cassandra ? { cassandra } : { embeddedPath: join(dataDir, 'history.sqlite') };
  const routerUrls = ports.routers.map((port, i) => httpOf(`router-${i + 1}`, port));
  // Only the fields each role reads; the role fills in its own defaults.
  const common = (id: string) => ({
    id,
    host: hostOf(id),
    routers: routerUrls,
    logFile: logFile(id),
    ...(natsUrl ? { nats: natsUrl } : {}),
  });

  const roles: PlannedRole[] = [];
  ports.routers.forEach((port, i) => {
    const id = `router-${i + 1}`;
    roles.push({
      id,
      role: 'router',
      tier: 1,
      config: { ...common(id), port },
      healthUrl: `${httpOf(id, port)}/healthz`,
      urls: { http: httpOf(id, port) },
      ports: [port],
    });
  });
  roles.push({
    id: 'control-1',
    role: 'control',
    tier: 2,
    config: { ...common('control-1'), port: ports.control },
    healthUrl: `${httpOf('control-1', ports.control)}/healthz`,
    urls: { http: httpOf('control-1', ports.control) },
    ports: [ports.control],
  });
  ports.serverGrpc.forEach((grpcPort, i) => {
    const id = `server-${i + 1}`;
    const adminPort = ports.serverAdmin[i]!;
    roles.push({
      id,
      role: 'server',
      tier: 2,
      config: { ...common(id), grpcPort, adminPort, ...(redisUrl ? { redis: redisUrl } : {}), history: serverHistory },
      healthUrl: `${httpOf(id, adminPort)}/healthz`,
      urls: { grpc: `${hostOf(id)}:${grpcPort}`, admin: httpOf(id, adminPort) },
      ports: [grpcPort, adminPort],
    });
  });
  ports.gateways.forEach((port, i) => {
    const id = `gateway-${i + 1}`;
    roles.push({
      id,
      role: 'gateway',
      tier: 3,
      config: { ...common(id), port, ...(input.flushMs !== undefined ? { flushIntervalMs: input.flushMs } : {}) },
      healthUrl: `${httpOf(id, port)}/healthz`,
      urls: { ws: `ws://${hostOf(id)}:${port}`, http: httpOf(id, port) },
      ports: [port],
    });
  });
  roles.push({
    id: 'feed-1',
    role: 'feed',
    tier: 4,
    config: {
      ...common('feed-1'), adminPort: ports.feedAdmin, symbols: input.symbols, rate: input.rate,
      ...(input.publishMs !== undefined ? { publishIntervalMs: input.publishMs } : {}),
    },
    healthUrl: `${httpOf('feed-1', ports.feedAdmin)}/healthz`,
    urls: { admin: httpOf('feed-1', ports.feedAdmin) },
    ports: [ports.feedAdmin],
  });

  const processes: PlannedProcess[] = [];
  if (input.bus.kind === 'spawn') {
    const dir = join(dataDir, 'nats');
    processes.push({
      id: 'nats',
      kind: 'binary',
      tier: 0,
      command: input.bus.bin,
      args: ['-a', hostOf('nats'), '-p', String(ports.nats), '-js', '-sd', dir],
      logFile: logFile('nats'),
      ports: [ports.nats],
      readyIds: [],
      healthUrls: [],
      dirs: [dir],
      ...nsOf('nats'),
    });
  }
  if (input.cache.kind === 'spawn') {
    const dir = join(dataDir, 'redis');
    processes.push({
      id: 'redis',
      kind: 'binary',
      tier: 0,
      command: input.cache.bin,
      // Isolated, its clients come from other namespaces: protected mode would refuse them (no password is set).
      args: ['--port', String(ports.redis), '--bind', hostOf('redis'), ...(iso ? ['--protected-mode', 'no'] : []), '--save', '', '--appendonly', 'no', '--dir', dir],
      logFile: logFile('redis'),
      ports: [ports.redis],
      readyIds: [],
      healthUrls: [],
      dirs: [dir],
      ...nsOf('redis'),
    });
  }
  if (history.kind === 'spawn') {
    const dir = join(dataDir, 'cassandra');
    processes.push({
      id: 'cassandra',
      kind: 'binary',
      tier: 0,
      command: process.execPath,
      args: ['scripts/cassandra/start.ts', '--port', String(history.port), '--data', dir],
      logFile: logFile('cassandra'),
      ports: [history.port],
      readyIds: [],
      healthUrls: [],
      dirs: [dir],
    });
  }
  if (embedded) {
    const config: EmbeddedConfig = {
      id: 'embedded',
      logFile: logFile('embedded'),
      roles: roles.map((r) => ({ role: r.role, config: r.config })),
    };
    processes.push({
      id: 'embedded',
      kind: 'embedded',
      tier: 1,
      command: EMBEDDED_SCRIPT,
      args: ['--config', JSON.stringify(config)],
      logFile: logFile('embedded'),
      ports: roles.flatMap((r) => r.ports),
      readyIds: ['embedded'],
      healthUrls: roles.map((r) => r.healthUrl),
      dirs: [],
    });
  } else {
    for (const r of roles) {
      processes.push({
        id: r.id,
        kind: 'role',
        tier: r.tier,
        command: roleScript(r.role),
        args: ['--config', JSON.stringify(r.config)],
        logFile: logFile(r.id),
        ports: r.ports,
        readyIds: [r.id],
        healthUrls: [r.healthUrl],
        dirs: [],
        ...nsOf(r.id),
      });
    }
  }

  const embeddedParts: string[] = [];
  if (embedded) embeddedParts.push('bus (in-memory)', 'registry (in-memory)');
  if (!redisUrl) embeddedParts.push('cache (in-memory)');

  return {
    mode: embedded ? 'embedded' : 'processes',
    host,
    dataDir,
    logDir,
    stateFile: join(dataDir, 'cluster.json'),
    ...(natsUrl ? { natsUrl } : {}),
    ...(redisUrl ? { redisUrl } : {}),
    bus: input.bus,
    cache: input.cache,
    history,
    ...(cassandra ? { cassandra } : {}),
    roles,
    processes,
    registeredIds: roles.filter((r) => r.role === 'gateway' || r.role === 'server').map((r) => r.id),
    embeddedParts,
    isolated: iso !== undefined,
  };
}

/** Every port the plan will listen on, with who wants it (for a clear refusal). */
export function plannedPorts(plan: ClusterPlan): Array<{ port: number; owner: string }> {
  const out: Array<{ port: number; owner: string }> = [];
  for (const p of plan.processes) {
    if (p.kind === 'embedded') for (const r of plan.roles) for (const port of r.ports) out.push({ port, owner: r.id });
    else for (const port of p.ports) out.push({ port, owner: p.id });
  }
  return out;
}
