// `pushctl up --redis-cluster N`: a real Redis Cluster of N masters (and R
// replicas each) from redis-servers started with `cluster-enabled yes`, joined
// with `redis-cli --cluster create`. Each node has its client port and its
// cluster bus port (cli/lib/port-plan.ts). The kline tier connects with
// ioredis' Cluster client (system/history/redis-client.ts).
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import type { ClusterSecrets, Credential } from '../../system/common/secrets.ts';
import { findOnPath } from './binaries.ts';
import type { EngineNodePorts } from './port-plan.ts';

export const redisNodeId = (i: number) => `redis-${i + 1}`;

/**
 * The Redis admin user: creates the cluster, and replicas sync from their
 * masters with it. Derived from the cluster token (HMAC) so the secrets file's
 * format stays as it is; roles never use it (they have secrets.redis).
 */
export function redisAdminCredential(secrets: ClusterSecrets): Credential {
  return { user: 'mp-admin', password: createHmac('sha256', secrets.clusterToken).update('redis-admin').digest('base64url') };
}

export interface RedisNodePlan {
  id: string;
  host: string;
  port: number;
  busPort: number;
  dir: string;
  configPath: string;
}

/** Nodes = masters × (1 + replicas per master). */
export function redisClusterNodeCount(masters: number, replicas: number): number {
  if (!Number.isInteger(masters) || masters < 3) throw new Error('--redis-cluster needs at least 3 masters (Redis Cluster cannot elect with fewer)');
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > 2) throw new Error('--redis-replicas must be 0, 1 or 2');
  return masters * (1 + replicas);
}

export function planRedisNodes(dataDir: string, ports: EngineNodePorts, hostOf: (id: string) => string): RedisNodePlan[] {
  if (ports.cluster.length !== ports.client.length) throw new Error(`redis cluster: ${ports.client.length} nodes, ${ports.cluster.length} bus ports`);
  return ports.client.map((port, i) => {
    const id = redisNodeId(i);
    return { id, host: hostOf(id), port, busPort: ports.cluster[i]!, dir: join(dataDir, id), configPath: join(dataDir, `${id}.conf`) };
  });
}

/** The URL the servers get: every node as a seed (several hosts = a cluster, see redis-client.ts). */
export const redisClusterUrl = (nodes: RedisNodePlan[]) => `redis://${nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (out += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
    p.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

/**
 * Joins the listening nodes into one cluster (slots spread over the masters,
 * replicas assigned) and waits until every node reports cluster_state:ok. The
 * admin password reaches redis-cli through REDISCLI_AUTH, never argv.
 */
export async function createRedisCluster(o: { nodes: string[]; replicas: number; secrets: ClusterSecrets; timeoutMs?: number; netns?: string }): Promise<void> {
  const cli = findOnPath('redis-cli');
  if (!cli) throw new Error('--redis-cluster needs redis-cli (Debian package redis-tools) to join the nodes');
  const admin = redisAdminCredential(o.secrets);
  const env = { ...process.env, REDISCLI_AUTH: admin.password };
  const timeoutMs = o.timeoutMs ?? 60_000;
  const created = await run(cli, ['--user', admin.user, '--cluster', 'create', ...o.nodes, '--cluster-replicas', String(o.replicas), '--cluster-yes'], env, timeoutMs);
  if (created.code !== 0 || !/All 16384 slots covered/.test(created.out))
    throw new Error(`redis-cli --cluster create failed (exit ${created.code}):\n${created.out.trim().split('\n').slice(-15).join('\n')}`);
  const deadline = Date.now() + timeoutMs;
  for (const node of o.nodes) {
    const [host, port] = [node.slice(0, node.lastIndexOf(':')), node.slice(node.lastIndexOf(':') + 1)];
    for (;;) {
      const info = await run(cli, ['--user', admin.user, '-h', host, '-p', port, 'cluster', 'info'], env, 5_000);
      if (/cluster_state:ok/.test(info.out)) break;
      if (Date.now() > deadline) throw new Error(`redis node ${node} did not reach cluster_state:ok:\n${info.out.trim()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
