// The memory tier: per series, candles sorted by open time, bounded to the
// memory horizon. Holds in-progress candles too (replaced in place).
import { seriesKey, type Kline, type KlineStore, type RangeQuery } from './kline.ts';

function lowerBound(a: readonly Kline[], t: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]!.openTime < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class MemoryKlineStore implements KlineStore {
  readonly name = 'memory';
  readonly horizonMs: number;
  #series = new Map<string, Kline[]>();
  #now: () => number;

  constructor(horizonMs: number, now: () => number = Date.now) {
    this.horizonMs = horizonMs;
    this.#now = now;
  }

  /** Synchronous insert or replace (the bus handler's path). */
  upsert(k: Kline): void {
    const key = seriesKey(k.symbol, k.interval);
    let a = this.#series.get(key);
    if (!a) {
      a = [];
      this.#series.set(key, a);
    }
    const last = a[a.length - 1];
    if (!last || last.openTime < k.openTime) a.push(k);
    else {
      const i = lowerBound(a, k.openTime);
      if (a[i]?.openTime === k.openTime) a[i] = k;
      else a.splice(i, 0, k);
    }
    const floor = this.#now() - this.horizonMs;
    if (a[0]!.openTime < floor) a.splice(0, lowerBound(a, floor));
  }

  async put(klines: readonly Kline[]): Promise<void> {
    for (const k of klines) this.upsert(k);
  }

  querySync(q: RangeQuery): Kline[] {
    const a = this.#series.get(seriesKey(q.symbol, q.interval));
    if (!a || q.limit <= 0) return [];
    const i = lowerBound(a, q.from);
    const j = lowerBound(a, q.to + 1);
    if (j <= i) return [];
    if (q.order === 'asc') return a.slice(i, Math.min(j, i + q.limit));
    return a.slice(Math.max(i, j - q.limit), j).reverse();
  }

  async query(q: RangeQuery): Promise<Kline[]> {
    return this.querySync(q);
  }

  has(symbol: string): boolean {
    const s = symbol.toUpperCase() + ':';
    for (const k of this.#series.keys()) if (k.startsWith(s)) return true;
    return false;
  }

  get size(): number {
    let n = 0;
    for (const a of this.#series.values()) n += a.length;
    return n;
  }

  async close(): Promise<void> {
    this.#series.clear();
  }
}
