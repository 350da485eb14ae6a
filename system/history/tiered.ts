// Answers a Binance kline range over the three tiers. Each tier owns a
// disjoint slice of time, so the union has no duplicates and no holes:
//   cold (Cassandra / embedded)  [.., redisFrom)
//   redis                        [redisFrom, memoryFrom)
//   memory                       [memoryFrom, ..]   (in-progress candles too)
// With a startTime the oldest slice is read first (the first `limit` candles
// from startTime, as Binance does); without one the newest slice first (the
// last `limit` candles up to endTime). Redis down: its slice goes to the
// cold tier. Cold tier down: ranges that need it fail with a clear error.
import type { Kline, KlineStore, RangeQuery } from './kline.ts';
import { rowBytes } from './rows.ts';
import type { MemoryKlineStore } from './memory-store.ts';

export interface TieredQuery {
  symbol: string;
  interval: string;
  startTime?: number;
  endTime?: number;
  limit: number;
}

export interface TieredResult {
  klines: Kline[];
  /** Tiers that were read, in the order they were read. */
  tiers: string[];
  /** Tiers that failed and were routed around. */
  degraded: string[];
}

export interface TieredRows {
  /** Each row's JSON bytes, oldest first. */
  rows: Buffer[];
  tiers: string[];
  degraded: string[];
}

export class HistoryUnavailableError extends Error {
  readonly tier: string;
  constructor(tier: string, message: string) {
    super(message);
    this.tier = tier;
  }
}

export interface TieredReaderOptions {
  memory: MemoryKlineStore;
  redis?: KlineStore;
  cold?: KlineStore;
  redisHorizonMs: number;
  /** First open time from which the memory tier is complete for a series. */
  memoryFrom(symbol: string, interval: string): number;
  now?: () => number;
}

interface Slice {
  store: KlineStore;
  from: number;
  to: number;
}

const MIN = Number.MIN_SAFE_INTEGER;
const MAX = Number.MAX_SAFE_INTEGER;

export class TieredReader {
  #o: TieredReaderOptions;
  #now: () => number;
  /** Last time each tier failed (for health). */
  readonly lastFailure = new Map<string, number>();
  /** Reads each tier failed since start (routed around or refused), for GET /metrics. */
  readonly failures = new Map<string, number>();

  constructor(o: TieredReaderOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** Whether any tier holds candles older than memory's. */
  get hasOlderTiers(): boolean {
    return this.#o.redis !== undefined || this.#o.cold !== undefined;
  }

  #slices(q: TieredQuery, withRedis: boolean): Slice[] {
    const memFrom = this.#o.memoryFrom(q.symbol, q.interval);
    const redisFrom = Math.min(memFrom, this.#now() - this.#o.redisHorizonMs);
    const lo = q.startTime ?? MIN;
    const hi = q.endTime ?? MAX;
    const out: Slice[] = [];
    const add = (store: KlineStore | undefined, from: number, to: number) => {
      const f = Math.max(from, lo);
      const t = Math.min(to, hi);
      if (store && f <= t) out.push({ store, from: f, to: t });
    };
    const redis = withRedis ? this.#o.redis : undefined;
    add(this.#o.cold, MIN, (redis ? redisFrom : memFrom) - 1);
    add(redis, redisFrom, memFrom - 1);
    add(this.#o.memory, memFrom, MAX);
    return out;
  }

  async read(q: TieredQuery): Promise<TieredResult> {
    const r = await this.#withFallback(q, (s, rq) => s.query(rq));
    return { klines: r.items, tiers: r.tiers, degraded: r.degraded };
  }

  /** The same answer as rows already serialised as JSON: Redis members and Cassandra rows go straight into the body. */
  async readRows(q: TieredQuery): Promise<TieredRows> {
    const r = await this.#withFallback(q, (s, rq) => (s.queryRows ? s.queryRows(rq) : s.query(rq).then((ks) => ks.map(rowBytes))));
    return { rows: r.items, tiers: r.tiers, degraded: r.degraded };
  }

  async #withFallback<T>(q: TieredQuery, get: (s: KlineStore, rq: RangeQuery) => Promise<T[]>): Promise<{ items: T[]; tiers: string[]; degraded: string[] }> {
    const degraded: string[] = [];
    try {
      return { ...(await this.#read(q, true, get)), degraded };
    } catch (err) {
      if (err instanceof HistoryUnavailableError || !this.#o.redis) throw err;
      // Redis failed: read its slice from the cold tier instead.
      this.lastFailure.set('redis', this.#now());
      this.failures.set('redis', (this.failures.get('redis') ?? 0) + 1);
      degraded.push('redis');
      return { ...(await this.#read(q, false, get)), degraded };
    }
  }

  async #read<T>(q: TieredQuery, withRedis: boolean, get: (s: KlineStore, rq: RangeQuery) => Promise<T[]>): Promise<{ items: T[]; tiers: string[] }> {
    const asc = q.startTime !== undefined;
    const slices = this.#slices(q, withRedis);
    if (!asc) slices.reverse();
    const items: T[] = [];
    const tiers: string[] = [];
    for (const s of slices) {
      const left = q.limit - items.length;
      if (left <= 0) break;
      let got: T[];
      try {
        got = await get(s.store, { symbol: q.symbol, interval: q.interval, from: s.from, to: s.to, limit: left, order: asc ? 'asc' : 'desc' });
      } catch (err) {
        if (s.store === this.#o.cold) {
          this.lastFailure.set(s.store.name, this.#now());
          this.failures.set(s.store.name, (this.failures.get(s.store.name) ?? 0) + 1);
          throw new HistoryUnavailableError(
            s.store.name,
            `History before ${new Date(s.to + 1).toISOString()} is unavailable: the ${s.store.name} tier is down (${err instanceof Error ? err.message : String(err)})`,
          );
        }
        throw err;
      }
      tiers.push(s.store.name);
      for (const k of got) items.push(k);
    }
    if (!asc) items.reverse();
    return { items, tiers };
  }
}
