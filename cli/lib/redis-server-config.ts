// The redis-server configuration `pushctl up` writes into its data dir (mode
// 0600: it holds the ACL user's password) and passes as redis-server's only
// argument, so no password appears on a command line. The default user is
// switched off; one ACL user may run only the commands the kline tier uses
// (system/history/redis-store.ts) on its own keys.
import { REDIS_KEY_PREFIX } from '../../system/history/redis-store.ts';
import type { Credential } from '../../system/common/secrets.ts';

/**
 * The kline tier's commands: sorted-set reads and writes, TTL refresh, SCAN to
 * warm up, and what ioredis sends on its own (AUTH is always allowed; INFO is
 * its ready check; PING its keep-alive).
 */
export const KLINE_TIER_COMMANDS = ['zadd', 'zremrangebyscore', 'zrangebyscore', 'zrevrangebyscore', 'pexpire', 'scan', 'info', 'ping', 'quit'] as const;

/** What ioredis' Cluster client adds: the slot map and the cluster's state, read-only. */
export const CLUSTER_CLIENT_COMMANDS = ['cluster|slots', 'cluster|info'] as const;

export interface RedisServerConfigInput {
  host: string;
  port: number;
  /** Working directory (nothing is persisted: no RDB, no AOF). */
  dir: string;
  user: Credential;
  /**
   * A node of `--redis-cluster` (cli/lib/redis-cluster.ts): its cluster bus port,
   * and the admin user that creates the cluster and that replicas sync with.
   */
  cluster?: { busPort: number; admin: Credential };
}

const quote = (v: string) => {
  if (/["\\\s]/.test(v)) throw new Error(`redis config value ${JSON.stringify(v)} has quotes, backslashes or spaces`);
  return `"${v}"`;
};

/** The config file's text. */
export function redisServerConfig(o: RedisServerConfigInput): string {
  const { user, password } = o.user;
  if (!/^[A-Za-z0-9_.-]+$/.test(user)) throw new Error(`redis user "${user}": letters, digits, . _ - only`);
  if (!/^[^\s"'\\]+$/.test(password)) throw new Error('the redis password must not contain spaces, quotes or backslashes');
  const c = o.cluster;
  if (c && !/^[A-Za-z0-9_.-]+$/.test(c.admin.user)) throw new Error(`redis user "${c.admin.user}": letters, digits, . _ - only`);
  if (c && !/^[^\s"'\\]+$/.test(c.admin.password)) throw new Error('the redis admin password must not contain spaces, quotes or backslashes');
  const commands = [...KLINE_TIER_COMMANDS, ...(c ? CLUSTER_CLIENT_COMMANDS : [])];
  return [
    `port ${o.port}`,
    `bind ${o.host}`,
    // Protected mode stays on: it only refuses clients while the default user has no password, and it is off.
    'protected-mode yes',
    'save ""',
    'appendonly no',
    `dir ${quote(o.dir)}`,
    'user default off resetpass resetkeys resetchannels -@all',
    `user ${user} on resetpass >${password} resetkeys ~${REDIS_KEY_PREFIX}* resetchannels -@all ${commands.map((x) => `+${x}`).join(' ')}`,
    ...(c
      ? [
          'cluster-enabled yes',
          `cluster-config-file ${quote(`${o.dir}/nodes.conf`)}`,
          `cluster-port ${c.busPort}`,
          // A failed master is noticed within 2 s and its replica promoted; the other slots keep answering meanwhile.
          'cluster-node-timeout 2000',
          'cluster-require-full-coverage no',
          `masteruser ${c.admin.user}`,
          `masterauth ${c.admin.password}`,
          `user ${c.admin.user} on resetpass >${c.admin.password} ~* &* +@all`,
        ]
      : []),
    '',
  ].join('\n');
}
