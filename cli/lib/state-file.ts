// <datadir>/cluster.json: what `up` started, so `down` and `status` can find
// it later, and a second `up` refuses to start over a live cluster.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ProcessKind } from './cluster-plan.ts';
import type { ClusterAuth } from './auth-plan.ts';
import { isAlive } from './processes.ts';

export interface RecordedProcess {
  id: string;
  kind: ProcessKind;
  tier: number;
  pid: number;
  pgid: number;
  startTime?: number;
  command: string;
  /** The exact argv and working directory it was started with, so `chaos restart` can start it again even once it is gone. */
  argv?: string[];
  cwd?: string;
  logFile: string;
}

/**
 * Where everything listens. Client ports: routers, gateways' ws/http/tcp/grpc.
 * Admin listeners (a bearer token, see docs/operations.md): routerAdmins,
 * control, gateways' admin, servers' admin, feed.
 */
export interface ClusterEndpoints {
  routers: string[];
  routerAdmins?: string[];
  control: string;
  gateways: Array<{ id: string; ws: string; http: string; admin?: string; tcp?: string; grpc?: string }>;
  servers: Array<{ id: string; grpc: string; admin: string }>;
  feed: string;
  /** History processes: the cluster's REST host for clients (Binance REST base URL), off the stream path. */
  rest?: Array<{ id: string; http: string }>;
  nats?: string;
  redis?: string;
  /** Engines' other listeners: node-to-node ports (NATS routes, Redis cluster bus, Cassandra gossip: 'peers') and Cassandra's CQL ('bus'). */
  engineLinks?: Array<{ id: string; protocol: string; address: string; audience: 'bus' | 'peers' }>;
  /** The cluster's secrets file (admin token for pushctl commands). */
  secretsFile?: string;
}

/** One listener of the cluster: who it is for, what it speaks, and the credential it wants. */
export interface Listener {
  id: string;
  protocol: string;
  address: string;
  audience: 'client' | 'admin' | 'bus' | 'peers';
}

/** Every listener the endpoints name, client ports first. */
export function listenersOf(e: ClusterEndpoints): Listener[] {
  const out: Listener[] = [];
  const add = (id: string, protocol: string, address: string | undefined, audience: Listener['audience']) => {
    if (address) out.push({ id, protocol, address, audience });
  };
  e.routers.forEach((u, i) => add(`router-${i + 1}`, 'http', u, 'client'));
  for (const g of e.gateways) {
    add(g.id, 'ws', g.ws, 'client');
    add(g.id, 'http', g.http, 'client');
    add(g.id, 'tcp', g.tcp, 'client');
    add(g.id, 'grpc', g.grpc, 'client');
  }
  for (const r of e.rest ?? []) add(r.id, 'http', r.http, 'client');
  (e.routerAdmins ?? []).forEach((u, i) => add(`router-${i + 1}`, 'http', u, 'admin'));
  add('control-1', 'http', e.control, 'admin');
  for (const g of e.gateways) add(g.id, 'http', g.admin, 'admin');
  for (const s of e.servers) {
    add(s.id, 'grpc', s.grpc, 'admin');
    add(s.id, 'http', s.admin, 'admin');
  }
  add('feed-1', 'http', e.feed, 'admin');
  add('nats', 'nats', e.nats, 'bus');
  add('redis', 'redis', e.redis, 'bus');
  for (const l of e.engineLinks ?? []) add(l.id, l.protocol, l.address, l.audience);
  return out;
}

export interface ClusterState {
  version: 1;
  mode: 'processes' | 'embedded';
  status: 'starting' | 'running';
  dataDir: string;
  startedAt: string;
  /** The `up` process; in foreground mode it owns the cluster and stops it on SIGTERM. */
  supervisorPid: number;
  supervisorStartTime?: number;
  detached: boolean;
  endpoints: ClusterEndpoints;
  /** Roles and where their /healthz is, for `status` when control does not list one. */
  roles: Array<{ id: string; role: string; healthUrl: string; urls: Record<string, string> }>;
  embeddedParts: string[];
  /** Binaries `up` started (nats-server, redis-server), by path. */
  binaries: Record<string, string>;
  processes: RecordedProcess[];
  /** How gateways check client tokens (`up --auth`), for `pushctl token` and `status`. */
  auth?: ClusterAuth;
}

export const stateFilePath = (dataDir: string) => join(dataDir, 'cluster.json');

export function readState(dataDir: string): ClusterState | undefined {
  let raw: string;
  try {
    raw = readFileSync(stateFilePath(dataDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(raw) as ClusterState;
  } catch {
    throw new Error(`${stateFilePath(dataDir)} is not valid JSON; remove it if no cluster runs from ${dataDir}`);
  }
}

/** Written to a temp file and renamed, so a reader never sees half a file. */
export function writeState(state: ClusterState): void {
  const file = stateFilePath(state.dataDir);
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, file);
}

export function removeState(dataDir: string): void {
  rmSync(stateFilePath(dataDir), { force: true });
}

export function liveProcesses(state: ClusterState): RecordedProcess[] {
  return state.processes.filter((p) => isAlive(p.pid, p.startTime));
}
