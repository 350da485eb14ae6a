// The Redis tier: one sorted set per series (`kl:<SYMBOL>:<interval>`),
// scored by open time, member = the Binance row as JSON. Writes are
// pipelined; each write trims the set to the Redis horizon and refreshes the
// key's TTL, so an idle series disappears after the horizon too.
import { Redis } from 'ioredis';
import { fromRow, toRow, seriesKey, type Kline, type KlineStore, type RangeQuery } from './kline.ts';

export interface RedisStoreOptions {
  url: string;
  horizonMs: number;
  /** Off only to measure what pipelining buys (bench/history.ts). */
  pipeline?: boolean;
  commandTimeoutMs?: number;
  now?: () => number;
}

const PREFIX = 'kl:';

export class RedisKlineStore implements KlineStore {
  readonly name = 'redis';
  readonly redis: Redis;
  readonly horizonMs: number;
  #pipeline: boolean;
  #now: () => number;

  constructor(opts: RedisStoreOptions) {
    // No offline queue: while Redis is down a command fails at once, so readers fall through to
    // the next tier instead of hanging, and the archiver keeps its retry list.
    this.redis = new Redis(opts.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: opts.commandTimeoutMs ?? 2_000,
      retryStrategy: (n) => Math.min(2_000, 100 * n),
      lazyConnect: true,
    });
    this.redis.on('error', () => {}); // surfaced through failed commands and `up`
    this.horizonMs = opts.horizonMs;
    this.#pipeline = opts.pipeline ?? true;
    this.#now = opts.now ?? Date.now;
  }

  async connect(): Promise<this> {
    await this.redis.connect();
    return this;
  }

  get up(): boolean {
    return this.redis.status === 'ready';
  }

  static key(symbol: string, interval: string): string {
    return PREFIX + seriesKey(symbol, interval);
  }

  async put(klines: readonly Kline[]): Promise<void> {
    const floor = this.#now() - this.horizonMs;
    const fresh = klines.filter((k) => k.openTime >= floor);
    if (fresh.length === 0) return;
    const keys = new Set<string>();
    if (!this.#pipeline) {
      for (const k of fresh) {
        const key = RedisKlineStore.key(k.symbol, k.interval);
        keys.add(key);
        // Upsert: replace whatever member this open time had.
        await this.redis.zremrangebyscore(key, k.openTime, k.openTime);
        await this.redis.zadd(key, k.openTime, JSON.stringify(toRow(k)));
      }
      for (const key of keys) {
        await this.redis.zremrangebyscore(key, '-inf', `(${floor}`);
        await this.redis.pexpire(key, this.horizonMs);
      }
      return;
    }
    const p = this.redis.pipeline();
    for (const k of fresh) {
      const key = RedisKlineStore.key(k.symbol, k.interval);
      keys.add(key);
      p.zremrangebyscore(key, k.openTime, k.openTime);
      p.zadd(key, k.openTime, JSON.stringify(toRow(k)));
    }
    for (const key of keys) {
      p.zremrangebyscore(key, '-inf', `(${floor}`);
      p.pexpire(key, this.horizonMs);
    }
    const res = await p.exec();
    const failed = res?.find(([err]) => err);
    if (!res || failed) throw failed?.[0] ?? new Error('redis pipeline failed');
  }

  async query(q: RangeQuery): Promise<Kline[]> {
    if (q.limit <= 0) return [];
    const key = RedisKlineStore.key(q.symbol, q.interval);
    const members =
      q.order === 'asc'
        ? await this.redis.zrangebyscore(key, q.from, q.to, 'LIMIT', 0, q.limit)
        : await this.redis.zrevrangebyscore(key, q.to, q.from, 'LIMIT', 0, q.limit);
    return members.map((m) => fromRow(q.symbol, q.interval, JSON.parse(m) as unknown[]));
  }

  /** Every series key, for warming the memory tier. */
  async seriesKeys(): Promise<Array<{ symbol: string; interval: string }>> {
    const out: Array<{ symbol: string; interval: string }> = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 500);
      cursor = next;
      for (const k of keys) {
        const [, symbol, interval] = k.split(':');
        if (symbol && interval) out.push({ symbol, interval });
      }
    } while (cursor !== '0');
    return out;
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
