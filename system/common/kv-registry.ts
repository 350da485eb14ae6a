import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { DEFAULT_EXPIRY_MS, type NodeRecord, type RegistryStore } from './registry.ts';

export const REGISTRY_BUCKET = 'push_registry';

/**
 * Registry in a JetStream KV bucket whose max age is the expiry, so a dead
 * node's entry disappears even when no router is running. Each router keeps a
 * watch-fed cache for fast reads and filters it by seenAt itself, because
 * entries aged out by the server produce no watch notification.
 */
export class KvRegistry implements RegistryStore {
  readonly kind = 'jetstream-kv' as const;
  #kv: KV;
  #expiryMs: number;
  #cache = new Map<string, NodeRecord>();
  #stopWatch: (() => void) | undefined;

  private constructor(kv: KV, expiryMs: number) {
    this.#kv = kv;
    this.#expiryMs = expiryMs;
  }

  /** `replicas`: copies of the bucket in a NATS cluster (3 keeps answering with one node down). */
  static async open(nc: NatsConnection, expiryMs = DEFAULT_EXPIRY_MS, replicas = 1): Promise<KvRegistry> {
    const kv = await new Kvm(nc).create(REGISTRY_BUCKET, { history: 1, ttl: expiryMs, replicas });
    const reg = new KvRegistry(kv, expiryMs);
    await reg.#watch();
    return reg;
  }

  async #watch(): Promise<void> {
    const iter = await this.#kv.watch({ key: '>' });
    this.#stopWatch = () => iter.stop();
    void (async () => {
      for await (const e of iter) {
        const id = keyId(e.key);
        if (e.operation !== 'PUT') this.#cache.delete(id);
        else {
          try {
            this.#cache.set(id, e.json<NodeRecord>());
          } catch {
            this.#cache.delete(id); // a foreign value in our bucket: ignore it
          }
        }
      }
    })().catch(() => {});
  }

  async put(rec: NodeRecord): Promise<void> {
    const stamped = { ...rec, seenAt: Date.now() };
    this.#cache.set(rec.id, stamped);
    await this.#kv.put(idKey(rec.id), JSON.stringify(stamped));
  }

  async remove(id: string): Promise<void> {
    this.#cache.delete(id);
    await this.#kv.delete(idKey(id));
  }

  async list(): Promise<NodeRecord[]> {
    const cutoff = Date.now() - this.#expiryMs;
    return [...this.#cache.values()].filter((r) => r.seenAt >= cutoff);
  }

  async close(): Promise<void> {
    this.#stopWatch?.();
    this.#cache.clear();
  }
}

// KV keys allow [-/_=.a-zA-Z0-9]; node ids are checked to stay within that.
function idKey(id: string): string {
  if (!/^[-_=a-zA-Z0-9]+$/.test(id)) throw new Error(`invalid node id "${id}": use letters, digits, - _ =`);
  return `node.${id}`;
}
function keyId(key: string): string {
  return key.slice(5);
}
