// Configuration of each role. A role process gets its config as JSON
// (`node system/<role>/main.ts --config '<json>'`); defaults fill the rest.

export interface CommonConfig {
  id: string;
  host: string; // address to bind and advertise
  /** NATS URL(s), comma-separated; absent = in-memory bus (embedded mode only). */
  nats?: string;
  redis?: string;
  /** Routers' admin listener URLs to heartbeat to and query (with the cluster token), e.g. http://127.0.0.1:8100 */
  routers: string[];
  heartbeatMs: number;
  logFile?: string;
  /**
   * Path of the cluster's secrets file (system/common/secrets.ts, mode 0600):
   * admin and cluster tokens, NATS and Redis credentials. Never the secrets
   * themselves: a config travels on the command line, which others can read.
   */
  secretsFile?: string;
  /**
   * Extra CA (PEM) this role trusts when it calls routers and gateways over
   * https: the cluster's self-signed certificate (system/common/tls.ts).
   */
  tlsCaFile?: string;
  /** Connect to NATS as this role kind's user (secrets.nats.<kind>): set for the nats-server `pushctl up` starts. */
  natsAuth?: boolean;
  /** JetStream replicas of the streams and KV buckets this role creates (`--nats-cluster N`: min(N, 3)); default 1. */
  natsReplicas?: number;
  /**
   * Address the role's admin listener binds and advertises (default: host).
   * The admin plane is for the cluster's own network: loopback under `pushctl up`.
   */
  adminHost?: string;
}

/** Certificate chain and key (PEM files) for a role's client ports; absent = plain text. */
export interface TlsConfig {
  certFile: string;
  keyFile: string;
}

export interface RouterConfig extends CommonConfig {
  /** Client port: GET /v1/gateways, /v1/symbols, /healthz. */
  port: number;
  /** Serve the client port (/v1/gateways, …) over https. */
  tls?: TlsConfig;
  /** Admin listener: the registry (heartbeats, lookups; cluster token) and operator actions (admin token); 0 picks a free port. */
  adminPort: number;
  expiryMs: number;
  /** The cluster's REST hosts (history processes), listed to clients at GET /v1/rest. */
  restUrls?: string[];
}

export interface ControlConfig extends CommonConfig {
  /** Control's only listener is an admin one: every action needs the admin token. */
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
  /** Connect to Redis as the ACL user secrets.redis: set for the redis-server `pushctl up` starts. */
  redisAuth?: boolean;
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
  /** Keyspace replication: SimpleStrategy:RF or NetworkTopologyStrategy:DC=RF,… (default SimpleStrategy:1). */
  cassandraReplication?: string;
  /** Consistency of Cassandra reads and writes: ONE, LOCAL_ONE, QUORUM, … (default LOCAL_ONE). */
  cassandraReadConsistency?: string;
  cassandraWriteConsistency?: string;
  /** node:sqlite file (or ':memory:') for the embedded cold tier. */
  embeddedPath?: string;
  /** Run the archiver in this process (default true). */
  archive?: boolean;
}

/** How a gateway checks client JWTs (system/gateway/auth.ts). */
export interface AuthConfig {
  hs256Secret?: string;
  /** HS256 with the cluster secrets file's `jwtHs256` (`pushctl up --auth hs256`): the key never travels on a command line. */
  hs256FromSecrets?: boolean;
  jwksUrl?: string;
  jwksFile?: string;
  issuer?: string;
  audience?: string;
  /** Accept tokens without `exp` (they never expire). Off by default. */
  allowNoExp?: boolean;
  /** JWKS URL: fetch timeout (default 5 s), least time between refetches for an unknown kid (10 s), most age of the cached set (60 s). */
  jwksTimeoutMs?: number;
  jwksCooldownMs?: number;
  jwksCacheMaxAgeMs?: number;
  /** JWKS file: how often its modification is checked (default 1 s; 0: on every token). */
  jwksFileCheckMs?: number;
}

export interface GatewayConfig extends CommonConfig {
  /** Client port: WebSocket, REST, gRPC-web, /demo, /healthz. */
  port: number;
  /** wss:// + https:// on `port`, gRPC over TLS, TLS on the raw-TCP port: one certificate for all. */
  tls?: TlsConfig;
  /** Admin listener: /stats, /admin/* (admin token); 0 picks a free port. */
  adminPort: number;
  /** Router client URLs the demo page asks for a gateway (config.routers are the routers' admin listeners). */
  clientRouters?: string[];
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
  /** A connection is closed (1001) this long after it opened; 0: never. Binance: 24 h (86_400_000). */
  maxConnectionLifeMs?: number;
  /**
   * A heartbeat answered later than this means the client is this far behind:
   * the answer queues behind everything still in kernel buffers, which the
   * byte cap cannot see (loopback autotunes to tens of MB). Disconnected, 4001.
   */
  maxClientLagMs: number;
  inboundRatePerSec: number;
  inboundBurst: number;
  /** REST request weight one IP may use per minute (Binance's X-MBX-USED-WEIGHT-1M); past it 429. */
  restWeightPerMinute: number;
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
  /**
   * JWT keys: HS256 secret and/or a JWKS (URL or file) for RS256 and friends; issuer/audience checked when set.
   * Tokens without `exp` are refused unless allowNoExp.
   */
  auth: AuthConfig;
  /** API-key file for Binance's user-data streams (X-MBX-APIKEY → user; system/common/api-keys.ts). */
  apiKeysFile?: string;
  /** A listenKey's life without a keepalive (Binance: 60 min). */
  listenKeyTtlMs?: number;
  /** HTTP request headers (also of a WebSocket upgrade) must arrive within this (slowloris); 408 otherwise. */
  httpHeadersTimeoutMs: number;
  /** The whole HTTP request (headers and body) within this; 0 disables. At least httpHeadersTimeoutMs. */
  httpRequestTimeoutMs: number;
  /** How often Node checks the two HTTP deadlines above (their precision). */
  httpCheckIntervalMs: number;
  /** A raw-TCP client's first complete frame must arrive within this; 0 disables. */
  tcpHelloTimeoutMs: number;
  /**
   * A connection to the client gRPC port with no call open for this long is
   * closed (grpc-js `grpc.max_connection_idle_ms`: GOAWAY, then the socket);
   * this also ends a silent connection that never sends the HTTP/2 preface.
   */
  grpcIdleTimeoutMs: number;
  /**
   * The client gRPC port pings every connection this often and destroys one
   * that does not answer within grpcKeepaliveTimeoutMs: a dead peer, or a raw
   * socket that never spoke HTTP/2 (the idle timeout cannot close those).
   */
  grpcKeepaliveMs: number;
  grpcKeepaliveTimeoutMs: number;
  /** REST requests (/api/v3/klines) served at once; past it 429 + Retry-After, so chart traffic cannot starve streams. */
  restMaxInFlight: number;
  /** Seconds a client refused by the REST budget is told to wait (Retry-After). */
  restRetryAfterSec: number;
}

export interface FeedConfig extends CommonConfig {
  adminPort: number;
  symbols: number;
  /** Trades per second per symbol; each trade moves the book, whose changes go out as @depth@100ms and @depth (1 s) diffs. */
  rate: number;
  tickerMs: number;
  klineMs: number;
  /** Depth snapshots fall on the 100 ms diff ticks: rounded to a whole number of ticks. */
  depthSnapshotMs: number;
  depthLevels: number;
  /**
   * Least time between two publish turns: events due meanwhile go to the bus
   * together (they keep their own intended times, so the wait counts as latency).
   */
  publishIntervalMs: number;
  /** Deterministic runs for tests. */
  seed: number;
  /** Simulated users placing orders against the books (system/feed/order-flow.ts); 0: none. Needs NATS JetStream. */
  users: number;
  /** Order actions (place, amend, cancel) per second per simulated user. */
  orderRate: number;
  /** Publish nothing at all (no trades, tickers, klines, depth or orders): an idle cluster, as `up --silent-feed` and bench:idle run it. */
  silent?: boolean;
  /** Replay recorded data instead of simulating a market (system/feed/replay-feed.ts); symbols then come from the files. */
  replay?: ReplayConfig;
}

/** `pushctl up --feed replay:FILE[,FILE…]`: Binance CSV files and .jsonl stream captures, each paced by its own timestamps. */
export interface ReplayConfig {
  files: string[];
  /** 1: the original pace; N: N times faster. */
  speed: number;
  /** Start each file over when it ends (ids and times repeat; seq keeps counting). */
  loop: boolean;
  /** Symbol of CSV files whose name carries none. */
  symbol?: string;
}

const common = (id: string): CommonConfig => ({ id, host: '127.0.0.1', routers: [], heartbeatMs: 1000 });

export const defaults = {
  router: (): RouterConfig => ({ ...common('router-1'), port: 7100, adminPort: 0, expiryMs: 5000 }),
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
    adminPort: 0,
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
    // Binance's limit: 5 incoming messages (requests, pings, pongs) a second per connection.
    inboundRatePerSec: 5,
    inboundBurst: 20,
    restWeightPerMinute: 6000,
    inboundViolationsToClose: 50,
    fanoutSliceMs: 5,
    flushIntervalMs: 0,
    drainSpreadMs: 5_000,
    requireAuth: false,
    auth: {},
    httpHeadersTimeoutMs: 10_000,
    httpRequestTimeoutMs: 30_000,
    httpCheckIntervalMs: 1_000,
    tcpHelloTimeoutMs: 10_000,
    grpcIdleTimeoutMs: 30_000,
    grpcKeepaliveMs: 20_000,
    grpcKeepaliveTimeoutMs: 10_000,
    restMaxInFlight: 64,
    restRetryAfterSec: 1,
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
    users: 0,
    orderRate: 1,
  }),
};

export type RoleName = keyof typeof defaults;

/** Reads `--config <json>` from argv and fills in defaults. */
export function configFromArgv<R extends RoleName>(role: R, argv = process.argv.slice(2)): ReturnType<(typeof defaults)[R]> {
  const i = argv.indexOf('--config');
  const given = i >= 0 ? (JSON.parse(argv[i + 1] ?? '{}') as object) : {};
  return { ...defaults[role](), ...given } as ReturnType<(typeof defaults)[R]>;
}
