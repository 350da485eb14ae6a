// Configuration of each role. A role process gets its config as JSON
// (`node system/<role>/main.ts --config '<json>'`); defaults fill the rest.

export interface CommonConfig {
  id: string;
  host: string; // address to bind and advertise
  /** NATS URL(s), comma-separated; absent = in-memory bus (embedded mode only). */
  nats?: string;
  redis?: string;
  /** Router base URLs to heartbeat to and query, e.g. http://127.0.0.1:7100 */
  routers: string[];
  heartbeatMs: number;
  logFile?: string;
}

export interface RouterConfig extends CommonConfig {
  port: number;
  expiryMs: number;
}

export interface ControlConfig extends CommonConfig {
  port: number;
}

export interface ServerConfig extends CommonConfig {
  grpcPort: number;
  adminPort: number;
  shards: number;
  /** Events kept per topic for resume-by-position after a failover. */
  historySize: number;
  /** Max time a fan-out may hold the event loop before yielding. */
  fanoutSliceMs: number;
  /** Bytes queued towards one gateway stream before it is dropped to a resync. */
  streamQueueBytes: number;
  /** Kline history tiers (system/history/service.ts); Redis defaults to `redis` above. */
  history?: HistoryConfig;
}

export interface HistoryConfig {
  memoryHorizonMs?: number;
  redisHorizonMs?: number;
  /** Redis URL; absent = no Redis tier. */
  redis?: string;
  /** Cassandra/Scylla contact points host:port[,…]; absent = the embedded store if embeddedPath is set. */
  cassandra?: string;
  keyspace?: string;
  /** node:sqlite file (or ':memory:') for the embedded cold tier. */
  embeddedPath?: string;
  /** Run the archiver in this process (default true). */
  archive?: boolean;
}

export interface GatewayConfig extends CommonConfig {
  port: number; // WebSocket + REST + admin on one HTTP server
  /** Protobuf over raw TCP (length-prefixed frames); 0 picks a free port, -1 disables. */
  tcpPort: number;
  /** gRPC PushService; 0 picks a free port, -1 disables. */
  grpcPort: number;
  streamsPerServer: number;
  maxConnections: number;
  /** New connections admitted per second (reconnect storms). */
  acceptRate: number;
  maxPayloadBytes: number;
  maxStreamsPerConnection: number;
  /** Bytes one client may have queued before conflation and then resync. */
  sendQueueBytes: number;
  /** A client that stays over its queue cap this long is disconnected. */
  slowClientGraceMs: number;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  /**
   * A heartbeat answered later than this means the client is this far behind:
   * the answer queues behind everything still in kernel buffers, which the
   * byte cap cannot see (loopback autotunes to tens of MB). Disconnected, 4001.
   */
  maxClientLagMs: number;
  inboundRatePerSec: number;
  inboundBurst: number;
  /** Rate-limit violations before the connection is closed. */
  inboundViolationsToClose: number;
  fanoutSliceMs: number;
  /**
   * Least time between two flush rounds (0: every event-loop turn). Frames
   * that arrive meanwhile leave each client in the same write: fewer write
   * syscalls (the gateway's main cost) for at most this much added latency.
   */
  flushIntervalMs: number;
  /** Drain: close existing clients over this many ms so they do not all reconnect at once. */
  drainSpreadMs: number;
  /** Require a token for every subscription (public data needs none by default). */
  requireAuth: boolean;
  /** JWT keys: HS256 secret and/or a JWKS (URL or file) for RS256 and friends; issuer/audience checked when set. */
  auth: { hs256Secret?: string; jwksUrl?: string; jwksFile?: string; issuer?: string; audience?: string };
}

export interface FeedConfig extends CommonConfig {
  adminPort: number;
  symbols: number;
  /** Trades per second per symbol; each trade also moves the book (one depth diff). */
  rate: number;
  tickerMs: number;
  klineMs: number;
  depthSnapshotMs: number;
  depthLevels: number;
  /**
   * Least time between two publish turns: events due meanwhile go to the bus
   * together (they keep their own intended times, so the wait counts as latency).
   */
  publishIntervalMs: number;
  /** Deterministic runs for tests. */
  seed: number;
}

const common = (id: string): CommonConfig => ({ id, host: '127.0.0.1', routers: [], heartbeatMs: 1000 });

export const defaults = {
  router: (): RouterConfig => ({ ...common('router-1'), port: 7100, expiryMs: 5000 }),
  control: (): ControlConfig => ({ ...common('control-1'), port: 7190 }),
  server: (): ServerConfig => ({
    ...common('server-1'),
    grpcPort: 7300,
    adminPort: 7400,
    shards: 1024,
    historySize: 512,
    fanoutSliceMs: 5,
    streamQueueBytes: 64 * 1024 * 1024,
  }),
  gateway: (): GatewayConfig => ({
    ...common('gateway-1'),
    port: 7200,
    tcpPort: 0,
    grpcPort: 0,
    streamsPerServer: 2,
    maxConnections: 100_000,
    acceptRate: 2_000,
    maxPayloadBytes: 64 * 1024,
    maxStreamsPerConnection: 1024,
    sendQueueBytes: 4 * 1024 * 1024,
    slowClientGraceMs: 10_000,
    pingIntervalMs: 20_000,
    pongTimeoutMs: 60_000,
    maxClientLagMs: 10_000,
    inboundRatePerSec: 10,
    inboundBurst: 20,
    inboundViolationsToClose: 50,
    fanoutSliceMs: 5,
    flushIntervalMs: 0,
    drainSpreadMs: 5_000,
    requireAuth: false,
    auth: {},
  }),
  feed: (): FeedConfig => ({
    ...common('feed-1'),
    adminPort: 7500,
    symbols: 20,
    rate: 10,
    tickerMs: 1000,
    klineMs: 1000,
    depthSnapshotMs: 1000,
    depthLevels: 20,
    publishIntervalMs: 1,
    seed: 0,
  }),
};

export type RoleName = keyof typeof defaults;

/** Reads `--config <json>` from argv and fills in defaults. */
export function configFromArgv<R extends RoleName>(role: R, argv = process.argv.slice(2)): ReturnType<(typeof defaults)[R]> {
  const i = argv.indexOf('--config');
  const given = i >= 0 ? (JSON.parse(argv[i + 1] ?? '{}') as object) : {};
  return { ...defaults[role](), ...given } as ReturnType<(typeof defaults)[R]>;
}
