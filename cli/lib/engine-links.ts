// The clustered engines' node-to-node listeners (NATS routes, the Redis
// cluster bus, Cassandra's CQL and gossip ports), for the listener table
// `up` and `status` print with their audience.
import type { ClusterPlan } from './cluster-plan.ts';
import type { ClusterEndpoints } from './state-file.ts';

type EngineLink = NonNullable<ClusterEndpoints['engineLinks']>[number];

/** Node-to-node ports of the clustered engines the plan starts, for the listener table. */
export function engineLinksOf(plan: ClusterPlan): EngineLink[] {
  const out: EngineLink[] = [];
  for (const p of plan.processes) {
    const f = p.configFile;
    const host = p.host ?? plan.host;
    if (f?.natsCluster) out.push({ id: p.id, protocol: 'route', address: `${host}:${p.ports[1]}`, audience: 'peers' });
    else if (f?.redisClusterBusPort) out.push({ id: p.id, protocol: 'cbus', address: `${host}:${f.redisClusterBusPort}`, audience: 'peers' });
    else if (p.id.startsWith('cassandra')) {
      out.push({ id: p.id, protocol: 'cql', address: `${plan.host}:${p.ports[0]}`, audience: 'bus' });
      if (p.ports[1]) out.push({ id: p.id, protocol: 'gossip', address: `${plan.host}:${p.ports[1]}`, audience: 'peers' });
    }
  }
  return out;
}
