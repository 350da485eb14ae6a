// Production shape of the Cassandra tier: the keyspace's replication
// (strategy and factor) and the consistency levels of reads and writes, from
// config (HistoryConfig) or `pushctl up --cassandra-*` flags. Parsed and
// checked here, so a typo is a clear error at start, not a CQL failure later.
import cassandra from 'cassandra-driver';

const { consistencies } = cassandra.types;

/** SimpleStrategy:RF, or NetworkTopologyStrategy:DC=RF[,DC=RF…]. */
export type ReplicationSpec = { class: 'SimpleStrategy'; factor: number } | { class: 'NetworkTopologyStrategy'; dataCenters: Record<string, number> };

export const DEFAULT_REPLICATION = 'SimpleStrategy:1';
export const DEFAULT_CONSISTENCY = 'LOCAL_ONE';
export const CONSISTENCY_NAMES = ['ANY', 'ONE', 'TWO', 'THREE', 'QUORUM', 'ALL', 'LOCAL_QUORUM', 'EACH_QUORUM', 'LOCAL_ONE'] as const;
export type ConsistencyName = (typeof CONSISTENCY_NAMES)[number];

const factor = (v: string, what: string): number => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 10) throw new Error(`cassandra replication ${what}: the factor must be a whole number from 1 to 10, got "${v}"`);
  return n;
};

export function parseReplication(spec: string): ReplicationSpec {
  const m = /^(SimpleStrategy|NetworkTopologyStrategy):(.+)$/.exec(spec.trim());
  if (!m) throw new Error(`cassandra replication "${spec}": expected SimpleStrategy:RF or NetworkTopologyStrategy:DC=RF[,DC=RF…]`);
  if (m[1] === 'SimpleStrategy') return { class: 'SimpleStrategy', factor: factor(m[2]!, spec) };
  const dataCenters: Record<string, number> = {};
  for (const part of m[2]!.split(',')) {
    const [dc, rf] = part.split('=');
    if (!dc || !/^[A-Za-z0-9_-]+$/.test(dc) || rf === undefined) throw new Error(`cassandra replication "${spec}": "${part}" is not DC=RF`);
    dataCenters[dc] = factor(rf, spec);
  }
  return { class: 'NetworkTopologyStrategy', dataCenters };
}

/** The replication map of CREATE KEYSPACE (values checked above: no CQL injection). */
export function replicationCql(r: ReplicationSpec): string {
  if (r.class === 'SimpleStrategy') return `{'class': 'SimpleStrategy', 'replication_factor': ${r.factor}}`;
  return `{'class': 'NetworkTopologyStrategy', ${Object.entries(r.dataCenters).map(([dc, n]) => `'${dc}': ${n}`).join(', ')}}`;
}

export function parseConsistency(name: string, what: string): number {
  const up = name.trim().toUpperCase();
  if (!(CONSISTENCY_NAMES as readonly string[]).includes(up)) throw new Error(`cassandra ${what} consistency "${name}": one of ${CONSISTENCY_NAMES.join(', ')}`);
  if (what === 'read' && (up === 'ANY' || up === 'EACH_QUORUM')) throw new Error(`cassandra read consistency ${up} is for writes only`);
  return consistencies[up === 'LOCAL_ONE' ? 'localOne' : up === 'LOCAL_QUORUM' ? 'localQuorum' : up === 'EACH_QUORUM' ? 'eachQuorum' : (up.toLowerCase() as 'one')];
}
