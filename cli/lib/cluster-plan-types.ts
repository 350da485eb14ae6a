// The shapes `pushctl up` plans with: backend choices, the plan's input, the
// processes and roles it yields (cluster-plan.ts fills them in), and the
// choice of backends from flags and binaries on PATH.
import { join } from 'node:path';
import type { ReplayConfig, RoleName } from '../../system/common/config.ts';
import type { ClusterAuth } from './auth-plan.ts';
import type { EngineNodePorts, PortMap, RoleCounts } from './port-plan.ts';
import type { NatsNodePeers } from './nats-cluster.ts';

export type BusChoice = { kind: 'external'; url: string } | { kind: 'spawn'; bin: string } | { kind: 'embedded' };
export type CacheChoice = { kind: 'external'; url: string } | { kind: 'spawn'; bin: string } | { kind: 'none' };
/** Kline history's cold tier: the embedded node:sqlite file, an existing Cassandra/Scylla, or a node started from Maven Central's jars. */
export type HistoryChoice =
  | { kind: 'embedded' }
  | { kind: 'external'; contactPoints: string }
  /** `ring`: `--cassandra-nodes N` ≥ 2, every node's CQL and storage port (the first CQL port is `port`). */
  | { kind: 'spawn'; port: number; ring?: { cqlPorts: number[]; storagePorts: number[] }; heapMb?: number };

/** The Cassandra tier's production shape (`--cassandra-replication`, `--cassandra-read-cl`, `--cassandra-write-cl`). */
export interface CassandraShape {
  replication?: string;
  readConsistency?: string;
  writeConsistency?: string;
}

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

export interface PlanInput extends RoleCounts {
  symbols: number;
  rate: number;
  /** Simulated users of the feed's order flow, and their actions per second each (feed defaults when unset). */
  users?: number;
  orderRate?: number;
  /** `--feed replay:FILE`: the feed replays these files (symbols from the files, no simulated users). */
  replay?: ReplayConfig;
  /** Gateway flushIntervalMs and feed publishIntervalMs; unset: the roles' defaults. */
  flushMs?: number;
  publishMs?: number;
  /** The feed publishes nothing (FeedConfig.silent): an idle cluster. */
  silentFeed?: boolean;
  host: string;
  dataDir: string;
  bus: BusChoice;
  cache: CacheChoice;
  ports: PortMap;
  /** Default: embedded. */
  history?: HistoryChoice;
  /** `up --isolate`: per process id, the network namespace it runs in and the address it binds and advertises. */
  isolate?: Record<string, { netns: string; addr: string }>;
  /**
   * TLS on the client ports (routers, gateways): the cert/key pair, and the CA
   * file every role trusts when it calls them (the self-signed certificate).
   */
  tls?: { certFile: string; keyFile: string; caFile?: string };
  /** The cluster's secrets file (0600), handed to every role as config.secretsFile. */
  secretsFile?: string;
  /** How gateways check client tokens (`up --auth`); unset: they hold no key. */
  clientAuth?: ClusterAuth;
  /** `--nats-cluster N` (N ≥ 2, with a spawned bus): every node's client and route port. */
  natsCluster?: EngineNodePorts;
  /** `--redis-cluster N` (with a spawned cache): every node's client and bus port, and replicas per master. */
  redisCluster?: { ports: EngineNodePorts; replicas: number };
  cassandraShape?: CassandraShape;
}

/** The roles of config.ts, and the history process (system/history/main.ts: the cluster's REST host, its own config). */
export type PlannedRoleName = RoleName | 'history';

export interface PlannedRole {
  id: string;
  role: PlannedRoleName;
  /** Start tier: routers 1, control, servers and the feed 2, gateways and history processes 3 (a gateway is healthy once it knows the feed's symbols). */
  tier: number;
  config: Record<string, unknown>;
  /** GET here answers 200 once the role is healthy. */
  healthUrl: string;
  /** Where the role is expected to be reachable (its readiness line may refine these). */
  urls: Record<string, string>;
  ports: number[];
}

export type ProcessKind = 'binary' | 'role' | 'embedded';

/** A store's config file: where it goes and what to render into it (cli/lib/store-configs.ts adds the credentials). */
export interface StoreConfigFile {
  kind: 'nats-server' | 'redis-server';
  path: string;
  host: string;
  port: number;
  /** JetStream store dir, or Redis's working dir. */
  dir: string;
  /** A node of `--nats-cluster`: its route peers (the route credential comes with the secrets). */
  natsCluster?: NatsNodePeers;
  /** A node of `--redis-cluster`: its cluster bus port. */
  redisClusterBusPort?: number;
}

export const natsConfigPath = (dataDir: string) => join(dataDir, 'nats-server.conf');
export const redisConfigPath = (dataDir: string) => join(dataDir, 'redis-server.conf');

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
  /** For nats-server and redis-server: the config file to write (with the cluster's secrets) before starting. */
  configFile?: StoreConfigFile;
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
  /** Client ports over TLS with this pair (`up --tls` / `--tls-cert`). */
  tls?: { certFile: string; keyFile: string; caFile?: string };
  secretsFile?: string;
  clientAuth?: ClusterAuth;
  /** `--redis-cluster`: the nodes (host:port) to join into one cluster once they listen, and replicas per master. */
  redisCluster?: { nodes: string[]; replicas: number };
}

export const roleScript = (role: PlannedRoleName) => `system/${role}/main.ts`;
export const EMBEDDED_SCRIPT = 'system/embedded.ts';

/** What `system/embedded.ts --config` receives. */
export interface EmbeddedConfig {
  id: string;
  logFile: string;
  roles: Array<{ role: PlannedRoleName; config: Record<string, unknown> }>;
}
