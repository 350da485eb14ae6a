// The memory tier: per series, candles sorted by open time, bounded to the
// memory horizon. Holds in-progress candles too (replaced in place). Each
// series counts its changes so prepared answers know when to rebuild:
// `closed` moves when anything but the newest candle changes (a candle
// closes, a new one opens, the horizon trims), `last` on every change.
import { seriesKey, type Kline, type KlineStore, type RangeQuery } from './kline.ts';
import { rowBytes } from './rows.ts';

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

/** One series: its candles (oldest first) and change counters. */
export interface MemorySeries {
  readonly candles: readonly Kline[];
  readonly closedVersion: number;
  readonly lastVersion: number;
}

interface Series {
  candles: Kline[];
  closedVersion: number;
  lastVersion: number;
}

export class MemoryKlineStore implements KlineStore {
  readonly name = 'memory';
  readonly horizonMs: number;
  #series = new Map<string, Series>();
  #now: () => number;

  constructor(horizonMs: number, now: () => number = Date.now) {
    this.horizonMs = horizonMs;
    this.#now = now;
  }

  /** Synchronous insert or replace (the bus handler's path). */
  upsert(k: Kline): void {
    const key = seriesKey(k.symbol, k.interval);
    let s = this.#series.get(key);
    if (!s) {
      s = { candles: [], closedVersion: 0, lastVersion: 0 };
      this.#series.set(key, s);
    }
    const a = s.candles;
    const last = a[a.length - 1];
    s.lastVersion++;
    if (!last || last.openTime < k.openTime) {
      a.push(k);
      s.closedVersion++;
    } else if (last.openTime === k.openTime) a[a.length - 1] = k;
    else {
      const i = lowerBound(a, k.openTime);
      if (a[i]?.openTime === k.openTime) a[i] = k;
      else a.splice(i, 0, k);
      s.closedVersion++;
    }
    const floor = this.#now() - this.horizonMs;
    if (a[0]!.openTime < floor) {
      a.splice(0, lowerBound(a, floor));
      s.closedVersion++;
    }
  }

  async put(klines: readonly Kline[]): Promise<void> {
    for (const k of klines) this.upsert(k);
  }

  /** A series as it is now (read-only), for prepared answers. */
  series(symbol: string, interval: string): MemorySeries | undefined {
    return this.#series.get(seriesKey(symbol, interval));
  }

  /** The newest candle of a series. */
  last(symbol: string, interval: string): Kline | undefined {
    const a = this.#series.get(seriesKey(symbol, interval))?.candles;
    return a?.[a.length - 1];
  }

  querySync(q: RangeQuery): Kline[] {
    const a = this.#series.get(seriesKey(q.symbol, q.interval))?.candles;
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

  /** The rows as JSON bytes (serialised once per candle). */
  async queryRows(q: RangeQuery): Promise<Buffer[]> {
    return this.querySync(q).map(rowBytes);
  }

  has(symbol: string): boolean {
    const s = symbol.toUpperCase() + ':';
    for (const k of this.#series.keys()) if (k.startsWith(s)) return true;
    return false;
  }

  get size(): number {
    let n = 0;
    for (const s of this.#series.values()) n += s.candles.length;
    return n;
  }

  async close(): Promise<void> {
    this.#series.clear();
  }
}
