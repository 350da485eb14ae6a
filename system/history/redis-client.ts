// The kline tier's Redis connection: one redis-server, or a Redis Cluster
// through ioredis' Cluster client. A URL naming several hosts
// (redis://h1:p1,h2:p2,…) or the scheme redis+cluster:// means a cluster; its
// hosts are only seeds, the client learns the slot map from them.
import { Cluster, Redis } from 'ioredis';

export type RedisClient = Redis | Cluster;

export interface RedisClientConfig {
  url: string;
  /** ACL user and password (the cluster's secrets.redis); absent: the URL's, if any. */
  auth?: { user: string; password: string };
  commandTimeoutMs?: number;
}

export interface ParsedRedisUrl {
  cluster: boolean;
  nodes: Array<{ host: string; port: number }>;
}

/** Splits a Redis URL into its hosts; refuses what is not one, saying why. */
export function parseRedisUrl(url: string): ParsedRedisUrl {
  const m = /^(redis|rediss|redis\+cluster):\/\/(?:[^@/]*@)?([^/?#]+)(?:[/?#].*)?$/.exec(url);
  if (!m) throw new Error(`redis URL "${url}": expected redis://host:port[,host:port…] or redis+cluster://host:port`);
  const nodes = m[2]!.split(',').map((hp) => {
    const i = hp.lastIndexOf(':');
    const host = i > 0 ? hp.slice(0, i) : hp;
    const port = i > 0 ? Number(hp.slice(i + 1)) : 6379;
    if (!host || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`redis URL "${url}": "${hp}" is not host:port`);
    return { host: host.replace(/^\[|\]$/g, ''), port };
  });
  return { cluster: m[1] === 'redis+cluster' || nodes.length > 1, nodes };
}

/**
 * A lazily connecting client (call connect()). No offline queue: while Redis (or
 * the slot's master) is down a command fails at once, so readers fall through to
 * the next tier instead of hanging, and the archiver keeps its retry list.
 */
export function createRedisClient(config: RedisClientConfig): RedisClient {
  const parsed = parseRedisUrl(config.url);
  const commandTimeout = config.commandTimeoutMs ?? 2_000;
  // Credentials come from the secrets file, never inside a URL that a config on argv would show.
  const auth = config.auth ? { username: config.auth.user, password: config.auth.password } : {};
  if (!parsed.cluster) {
    const r = new Redis(config.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout,
      retryStrategy: (n) => Math.min(2_000, 100 * n),
      lazyConnect: true,
      ...auth,
    });
    r.on('error', () => {}); // surfaced through failed commands and `up`
    return r;
  }
  const c = new Cluster(parsed.nodes, {
    enableOfflineQueue: false,
    lazyConnect: true,
    // A master down: refresh the slot map soon, so its promoted replica takes over quickly.
    slotsRefreshTimeout: 1_000,
    slotsRefreshInterval: 2_000,
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    maxRedirections: 4,
    clusterRetryStrategy: (n) => Math.min(2_000, 100 * n),
    redisOptions: { maxRetriesPerRequest: 1, commandTimeout, ...auth },
  });
  c.on('error', () => {}); // surfaced through failed commands and `up`
  return c;
}

export const isCluster = (c: RedisClient): c is Cluster => c instanceof Cluster;

/**
 * Closes a client for good. ioredis' Cluster re-arms its slot-refresh timer
 * (slotsRefreshInterval) whenever a refresh ends, even one that was in flight
 * when disconnect() cleared that timer: the closed client would then refresh
 * an empty node list every 2 s forever and keep its process alive (a test
 * file that never exited). Made a no-op first, the refresh loop ends with
 * the timer already set.
 */
export function closeRedisClient(c: RedisClient): void {
  if (isCluster(c)) (c as unknown as { refreshSlotsCache: (cb?: () => void) => void }).refreshSlotsCache = () => {};
  c.disconnect();
}
