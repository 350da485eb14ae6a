// key → Set<V>, split over a fixed number of shards. Node has no locks to
// contend on, so the point here is different from the Go original: a single
// V8 Map with millions of keys rehashes in one long pause as it grows; shards
// keep each rehash small. Shard count is configurable (1024 by default).
import { fnv1a } from './hashing.ts';

export class ShardedSetMap<K extends string, V> {
  #shards: Map<K, Set<V>>[];
  #size = 0;

  constructor(shards = 1024) {
    if (!Number.isInteger(shards) || shards < 1) throw new Error(`shard count must be a positive integer, got ${shards}`);
    this.#shards = Array.from({ length: shards }, () => new Map());
  }

  #shard(key: K): Map<K, Set<V>> {
    return this.#shards.length === 1 ? this.#shards[0]! : this.#shards[fnv1a(key) % this.#shards.length]!;
  }

  get(key: K): Set<V> | undefined {
    return this.#shard(key).get(key);
  }

  /** Adds value under key; true when the key's set was empty before (first subscriber). */
  add(key: K, value: V): boolean {
    const shard = this.#shard(key);
    let set = shard.get(key);
    if (!set) {
      set = new Set();
      shard.set(key, set);
      this.#size++;
    }
    const before = set.size;
    set.add(value);
    return before === 0 && set.size === 1;
  }

  /** Removes value from key; true when the key's set became empty (last subscriber left). */
  delete(key: K, value: V): boolean {
    const shard = this.#shard(key);
    const set = shard.get(key);
    if (!set || !set.delete(value)) return false;
    if (set.size === 0) {
      shard.delete(key);
      this.#size--;
      return true;
    }
    return false;
  }

  /** Number of keys with at least one value. */
  get size(): number {
    return this.#size;
  }

  *keys(): IterableIterator<K> {
    for (const shard of this.#shards) yield* shard.keys();
  }
}
