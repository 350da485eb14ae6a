// `pushctl up`'s flags for clustered engines (NATS cluster, Redis Cluster),
// kept in one group: their port plan and the step that joins the nodes once
// they listen (before any role starts).
import { Flags } from '@oclif/core';
import type { ClusterSecrets } from '../../system/common/secrets.ts';
import type { CassandraShape, ClusterPlan, HistoryChoice, PlanInput, PortMap } from './cluster-plan.ts';
import { parseConsistency, parseReplication } from '../../system/history/cassandra-config.ts';
import { natsNodePortsFromBase, redisNodePortsFromBase, engineNodePortsFromList } from './port-plan.ts';
import { freePorts } from './ports.ts';
import { waitForJetStream } from './nats-cluster.ts';
import { createRedisCluster, redisClusterNodeCount } from './redis-cluster.ts';
import { waitForRing } from './cassandra-ring.ts';

export const ENGINE_FLAGS = {
  'nats-cluster': Flags.integer({
    description: 'start this many nats-servers joined by routes (ports B+500+i, routes B+550+i); streams and KV keep min(N, 3) replicas',
    min: 2,
    max: 50,
  }),
  'redis-cluster': Flags.integer({
    description: 'start a Redis Cluster of this many masters (ports B+600+i, cluster bus B+650+i), joined with redis-cli --cluster create',
    min: 3,
    max: 16,
  }),
  'redis-replicas': Flags.integer({ description: 'replicas per master with --redis-cluster (one takes over when its master dies)', default: 1, min: 0, max: 2 }),
  'cassandra-nodes': Flags.integer({ description: 'with --history cassandra: start a ring of this many nodes (they start together in about a minute, ~800 MB RSS each at a 384 MB heap; give --timeout 300)', min: 1, max: 5 }),
  'cassandra-heap-mb': Flags.integer({ description: 'heap of each Cassandra node pushctl starts (default 512)', min: 256, max: 8192 }),
  'cassandra-replication': Flags.string({
    description: 'keyspace replication: SimpleStrategy:RF or NetworkTopologyStrategy:DC=RF[,DC=RF…] (default SimpleStrategy:min(nodes,3))',
  }),
  'cassandra-read-cl': Flags.string({ description: 'consistency of kline reads from Cassandra: ONE, LOCAL_ONE, QUORUM, LOCAL_QUORUM, ALL… (default LOCAL_ONE)' }),
  'cassandra-write-cl': Flags.string({ description: 'consistency of kline writes to Cassandra (default LOCAL_ONE)' }),
  join: Flags.string({
    description: 'add --gateways N gateways on this host to the running cluster recorded in this data dir (its state file and secrets file, or --secrets FILE); stop them with `pushctl down --data-dir DATA_DIR`',
  }),
  'join-name': Flags.string({ description: 'with --join: this host\'s name, the prefix of its gateways\' ids', default: 'host2' }),
  'join-host': Flags.string({ description: 'with --join: the address of this host its gateways bind and advertise', default: '127.0.0.1' }),
};

export interface EngineFlagValues {
  'nats-cluster'?: number | undefined;
  'redis-cluster'?: number | undefined;
  'redis-replicas'?: number | undefined;
  'cassandra-nodes'?: number | undefined;
  'cassandra-heap-mb'?: number | undefined;
  'cassandra-replication'?: string | undefined;
  'cassandra-read-cl'?: string | undefined;
  'cassandra-write-cl'?: string | undefined;
  'port-base': number;
}

/** The Cassandra nodes `up` starts (--history cassandra): one, or a ring on free ports. */
export async function spawnedCassandra(flags: EngineFlagValues, host: string): Promise<Extract<HistoryChoice, { kind: 'spawn' }>> {
  const n = flags['cassandra-nodes'] ?? 1;
  const heap = flags['cassandra-heap-mb'] !== undefined ? { heapMb: flags['cassandra-heap-mb'] } : {};
  if (n === 1) return { kind: 'spawn', port: (await freePorts(1, host))[0]!, ...heap };
  const ports = await freePorts(2 * n, host);
  return { kind: 'spawn', port: ports[0]!, ring: { cqlPorts: ports.slice(0, n), storagePorts: ports.slice(n) }, ...heap };
}

/** --cassandra-replication / -read-cl / -write-cl, checked now (a typo fails `up`, not a server later). */
export function cassandraShape(flags: EngineFlagValues, history: HistoryChoice): CassandraShape | undefined {
  const given = flags['cassandra-replication'] ?? flags['cassandra-read-cl'] ?? flags['cassandra-write-cl'];
  if (history.kind === 'embedded') {
    if (given !== undefined || flags['cassandra-nodes'] !== undefined) throw new Error('the --cassandra-* flags need --history cassandra or --cassandra HOSTS');
    return undefined;
  }
  if (history.kind === 'external' && flags['cassandra-nodes'] !== undefined) throw new Error('--cassandra-nodes starts nodes: it goes with --history cassandra, not --cassandra HOSTS');
  const nodes = history.kind === 'spawn' ? (history.ring?.cqlPorts.length ?? 1) : undefined;
  const replication = flags['cassandra-replication'] ?? (nodes ? `SimpleStrategy:${Math.min(nodes, 3)}` : undefined);
  if (replication) {
    const r = parseReplication(replication);
    if (nodes && r.class === 'SimpleStrategy' && r.factor > nodes) throw new Error(`--cassandra-replication ${replication}: more replicas than the ${nodes} node(s) started`);
  }
  if (flags['cassandra-read-cl']) parseConsistency(flags['cassandra-read-cl'], 'read');
  if (flags['cassandra-write-cl']) parseConsistency(flags['cassandra-write-cl'], 'write');
  return {
    ...(replication ? { replication } : {}),
    ...(flags['cassandra-read-cl'] ? { readConsistency: flags['cassandra-read-cl'] } : {}),
    ...(flags['cassandra-write-cl'] ? { writeConsistency: flags['cassandra-write-cl'] } : {}),
  };
}

/** The plan input's clustered-engine part: each node's ports from the base, or free ones. */
export async function enginePlanInput(flags: EngineFlagValues, ports: PortMap, host: string): Promise<Pick<PlanInput, 'natsCluster' | 'redisCluster'>> {
  const base = flags['port-base'];
  const out: Pick<PlanInput, 'natsCluster' | 'redisCluster'> = {};
  const n = flags['nats-cluster'];
  if (n !== undefined) out.natsCluster = base === 0 ? engineNodePortsFromList(ports.nats, await freePorts(2 * n - 1, host), n) : natsNodePortsFromBase(base, n);
  const masters = flags['redis-cluster'];
  if (masters !== undefined) {
    const replicas = flags['redis-replicas'] ?? 1;
    const nodes = redisClusterNodeCount(masters, replicas);
    out.redisCluster = {
      replicas,
      ports: base === 0 ? engineNodePortsFromList(ports.redis, await freePorts(2 * nodes - 1, host), nodes) : redisNodePortsFromBase(base, nodes),
    };
  } else if (flags['redis-replicas'] !== undefined && flags['redis-replicas'] !== 1) {
    throw new Error('--redis-replicas goes with --redis-cluster');
  }
  return out;
}

/** After the engines' tier listens: join the Redis Cluster, wait for the NATS cluster's JetStream. */
export function engineAfterTier(plan: ClusterPlan, secrets: ClusterSecrets, timeoutMs: number, progress: (msg: string) => void): (tier: number) => Promise<void> {
  return async (tier) => {
    if (tier !== 0) return;
    if (plan.redisCluster) {
      progress(`joining ${plan.redisCluster.nodes.length} redis-servers into a Redis Cluster (${plan.redisCluster.replicas} replica(s) per master)`);
      await createRedisCluster({ nodes: plan.redisCluster.nodes, replicas: plan.redisCluster.replicas, secrets, timeoutMs });
    }
    if (plan.natsUrl && plan.processes.some((p) => p.configFile?.natsCluster)) {
      progress('waiting for the NATS cluster\'s JetStream (meta leader)');
      await waitForJetStream(plan.natsUrl, secrets.nats.operator, timeoutMs);
    }
    const ring = plan.processes.some((p) => /^cassandra-\d+$/.test(p.id)) ? (plan.cassandra ?? '').split(',').filter(Boolean) : [];
    if (ring.length >= 2) {
      progress(`waiting for the ${ring.length} Cassandra nodes to gossip into one ring`);
      await waitForRing(ring, timeoutMs);
    }
  };
}

