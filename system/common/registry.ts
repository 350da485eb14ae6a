// The node registry: every role heartbeats its NodeRecord to a router, which
// stores it here. Entries expire when a node stops heartbeating. Real clusters
// keep it in a NATS JetStream KV bucket (kv-registry.ts) so every router
// answers the same; the embedded default keeps it in memory.

export type Role = 'router' | 'gateway' | 'server' | 'control' | 'feed';

export interface NodeLoad {
  connections: number;
  subscriptions: number;
  msgsInPerSec: number;
  msgsOutPerSec: number;
  cpu: number; // fraction of one core, over the last interval
  eventLoopP99Ms: number;
  rssMb: number;
}

export interface NodeRecord {
  id: string;
  role: Role;
  /** e.g. { ws: 'ws://127.0.0.1:7200', grpc: '127.0.0.1:7300', admin: 'http://127.0.0.1:7201' } */
  urls: Record<string, string>;
  protocols: string[];
  draining: boolean;
  startedAt: number;
  seenAt: number;
  load: NodeLoad;
  /** Role-specific facts, e.g. a feed's { symbols: string[] }. */
  meta?: Record<string, unknown>;
}

export const EMPTY_LOAD: NodeLoad = {
  connections: 0,
  subscriptions: 0,
  msgsInPerSec: 0,
  msgsOutPerSec: 0,
  cpu: 0,
  eventLoopP99Ms: 0,
  rssMb: 0,
};

/** What every role measures about its own process (see ProcessStats). */
export interface SelfMeasure {
  cpu: number;
  eventLoopP99Ms: number;
  rssMb(): number;
}

/** A role's own registry record: identity, the process figures, and its role-specific load. */
export function selfRecord(o: {
  id: string;
  role: Role;
  urls: Record<string, string>;
  protocols?: string[];
  draining?: boolean;
  startedAt: number;
  stats: SelfMeasure;
  load?: Partial<NodeLoad>;
  meta?: Record<string, unknown>;
}): NodeRecord {
  return {
    id: o.id,
    role: o.role,
    urls: o.urls,
    protocols: o.protocols ?? [],
    draining: o.draining ?? false,
    startedAt: o.startedAt,
    seenAt: Date.now(),
    load: { ...EMPTY_LOAD, cpu: o.stats.cpu, eventLoopP99Ms: o.stats.eventLoopP99Ms, rssMb: o.stats.rssMb(), ...o.load },
    ...(o.meta ? { meta: o.meta } : {}),
  };
}

export interface RegistryStore {
  readonly kind: 'jetstream-kv' | 'memory';
  put(rec: NodeRecord): Promise<void>;
  remove(id: string): Promise<void>;
  /** Live entries only: seen within the expiry. */
  list(): Promise<NodeRecord[]>;
  close(): Promise<void>;
}

export const DEFAULT_EXPIRY_MS = 5_000;

export class MemoryRegistry implements RegistryStore {
  readonly kind = 'memory' as const;
  #nodes = new Map<string, NodeRecord>();
  #expiryMs: number;

  constructor(expiryMs = DEFAULT_EXPIRY_MS) {
    this.#expiryMs = expiryMs;
  }

  async put(rec: NodeRecord): Promise<void> {
    this.#nodes.set(rec.id, { ...rec, seenAt: Date.now() });
  }

  async remove(id: string): Promise<void> {
    this.#nodes.delete(id);
  }

  async list(): Promise<NodeRecord[]> {
    const cutoff = Date.now() - this.#expiryMs;
    for (const [id, rec] of this.#nodes) if (rec.seenAt < cutoff) this.#nodes.delete(id);
    return [...this.#nodes.values()];
  }

  async close(): Promise<void> {
    this.#nodes.clear();
  }
}
