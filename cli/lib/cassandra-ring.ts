// `pushctl up --history cassandra [--cassandra-nodes N]`: the Cassandra nodes
// it starts from Maven Central's jars (scripts/cassandra/start.ts). One node:
// id `cassandra`, as before. N ≥ 2: ids cassandra-1…N, a ring with one evenly
// spaced token each, every node a seed (they start at once), each with its
// own CQL and storage (gossip) port. Planning, and the wait for the ring to
// form before any role uses it.
import { join } from 'node:path';
import cassandra from 'cassandra-driver';
import { ringTokens } from '../../system/history/cassandra-node.ts';

export interface CassandraNodePlan {
  id: string;
  cqlPort: number;
  dir: string;
  args: string[];
  /** Listening ports: CQL (clients: the servers), storage (the other nodes). */
  ports: number[];
}

export const MAX_CASSANDRA_NODES = 5;

export function planCassandraNodes(dataDir: string, h: { port: number; ring?: { cqlPorts: number[]; storagePorts: number[] }; heapMb?: number }): CassandraNodePlan[] {
  const heap = h.heapMb !== undefined ? ['--heap-mb', String(h.heapMb)] : [];
  if (!h.ring) {
    const dir = join(dataDir, 'cassandra');
    return [{ id: 'cassandra', cqlPort: h.port, dir, args: ['--port', String(h.port), '--data', dir, ...heap], ports: [h.port] }];
  }
  const { cqlPorts, storagePorts } = h.ring;
  const n = cqlPorts.length;
  if (n < 2 || n > MAX_CASSANDRA_NODES) throw new Error(`--cassandra-nodes must be between 1 and ${MAX_CASSANDRA_NODES}`);
  if (storagePorts.length !== n) throw new Error(`--cassandra-nodes ${n}: ${storagePorts.length} storage ports planned`);
  const tokens = ringTokens(n);
  const seeds = storagePorts.map((p) => `127.0.0.1:${p}`).join(',');
  return cqlPorts.map((cql, i) => {
    const id = `cassandra-${i + 1}`;
    const dir = join(dataDir, id);
    return {
      id,
      cqlPort: cql,
      dir,
      args: ['--port', String(cql), '--data', dir, '--storage-port', String(storagePorts[i]), '--seeds', seeds, '--token', tokens[i]!, ...heap],
      ports: [cql, storagePorts[i]!],
    };
  });
}

/**
 * Waits until every node of a ring started together knows all the others
 * (the driver, with that node as its only contact point, discovers N hosts):
 * seeds that start at once can take a while to gossip into one ring, and a
 * server that creates its keyspace before then gets a replication factor the
 * ring cannot meet. Throws after `timeoutMs` saying which node is still alone.
 */
export async function waitForRing(contactPoints: string[], timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  const seesAll = async (point: string): Promise<number> => {
    const client = new cassandra.Client({ contactPoints: [point], localDataCenter: 'datacenter1', socketOptions: { connectTimeout: 5_000 } });
    try {
      await client.connect();
      return client.hosts.length;
    } catch {
      return 0;
    } finally {
      await client.shutdown().catch(() => {});
    }
  };
  for (const point of contactPoints) {
    for (;;) {
      const seen = await seesAll(point);
      if (seen >= contactPoints.length) break;
      if (Date.now() > end) throw new Error(`Cassandra node ${point} sees ${seen} of the ${contactPoints.length} nodes of its ring after ${Math.round(timeoutMs / 1000)} s`);
      await new Promise((r) => setTimeout(r, 2_000));
    }
  }
}
