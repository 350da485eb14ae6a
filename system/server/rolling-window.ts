// One symbol's rolling-window statistics (Binance's `@ticker_<w>` streams and
// GET /api/v3/ticker), computed from the trades themselves: each trade is
// folded into a one-minute bucket, and a window is the buckets from
// floor((now − window) / 1 min) on, so its open time starts on a minute and it
// is up to 59 999 ms wider than asked, as Binance documents. Sums are exact:
// prices and quantities are integers in units of the symbol's smallest
// decimal, volumes BigInt, and every bucket carries the running totals since
// the first one, so a window's volume, quote volume and count are one
// subtraction; only high and low scan the window's buckets. Memory: one small
// object (~170 bytes) a symbol a minute with trades, kept for 7 days.
import { formatUnits } from '../common/symbols.ts';

export const MINUTE_MS = 60_000;
/** Binance's longest windowSize (7d) and one minute more: what a window keeps. */
export const MAX_WINDOW_MS = 7 * 24 * 3_600_000;

export interface TradeIn {
  id: number;
  price: string;
  qty: string;
  /** Trade time, ms. */
  time: number;
}

/** Binance's rolling-window fields, decimals as strings; firstId/lastId are -1 when the window holds no trade. */
export interface WindowStats {
  openTime: number;
  closeTime: number;
  open: string;
  high: string;
  low: string;
  close: string;
  priceChange: string;
  priceChangePercent: string;
  weightedAvgPrice: string;
  volume: string;
  quoteVolume: string;
  firstId: number;
  lastId: number;
  count: number;
}

interface Bucket {
  /** Minute open time, ms. */
  t: number;
  // Prices in units of 10^-pd.
  o: number;
  h: number;
  l: number;
  c: number;
  first: number;
  last: number;
  // Running totals up to and including this minute: qty (10^-qd), quote (10^-(pd+qd)), trades.
  cv: bigint;
  cq: bigint;
  cn: number;
}

const fraction = (s: string) => {
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : s.length - dot - 1;
};

/** A decimal string as an integer count of 10^-decimals (decimals ≥ the string's own). */
function units(s: string, decimals: number): bigint {
  const dot = s.indexOf('.');
  const int = dot < 0 ? s : s.slice(0, dot);
  const frac = dot < 0 ? '' : s.slice(dot + 1);
  return BigInt(int + frac.padEnd(decimals, '0'));
}

const MAX_PRICE_UNITS = BigInt(Number.MAX_SAFE_INTEGER);
const DECIMAL_RE = /^\d{1,20}(\.\d{1,18})?$/;

export class RollingWindow {
  /** Trades are complete from this instant on (ms): the store's start, or the feed's (re)start. */
  readonly since: number;
  readonly keepMs: number;
  #b: Bucket[] = [];
  #head = 0;
  #pd = 0;
  #qd = 0;

  constructor(since: number, keepMs = MAX_WINDOW_MS) {
    this.since = since;
    this.keepMs = keepMs;
  }

  get lastId(): number {
    return this.#b.at(-1)?.last ?? 0;
  }

  /** Buckets kept (for tests and stats). */
  get buckets(): number {
    return this.#b.length - this.#head;
  }

  /** Folds one trade; false (ignored) for a trade already folded or a malformed one. */
  add(tr: TradeIn): boolean {
    if (tr.id <= this.lastId || !DECIMAL_RE.test(tr.price) || !DECIMAL_RE.test(tr.qty)) return false;
    const pd = fraction(tr.price);
    const qd = fraction(tr.qty);
    if (pd > this.#pd || qd > this.#qd) this.#rescale(Math.max(pd, this.#pd), Math.max(qd, this.#qd));
    const p = units(tr.price, this.#pd);
    const q = units(tr.qty, this.#qd);
    // Prices are compared and kept as doubles: exact while below 2^53 units (90 million at 8 decimals).
    if (p > MAX_PRICE_UNITS) return false;
    const pn = Number(p);
    const minute = Math.floor(tr.time / MINUTE_MS) * MINUTE_MS;
    const prev = this.#b.at(-1);
    // A trade stamped before the newest minute (clock skew between feeds) still counts, in the newest one.
    if (prev && minute <= prev.t) {
      if (pn > prev.h) prev.h = pn;
      if (pn < prev.l) prev.l = pn;
      prev.c = pn;
      prev.last = tr.id;
      prev.cv += q;
      prev.cq += p * q;
      prev.cn++;
      return true;
    }
    this.#b.push({ t: minute, o: pn, h: pn, l: pn, c: pn, first: tr.id, last: tr.id, cv: (prev?.cv ?? 0n) + q, cq: (prev?.cq ?? 0n) + p * q, cn: (prev?.cn ?? 0) + 1 });
    this.#trim(minute);
    return true;
  }

  /** Drops minutes older than any window needs; compacts once the dropped part is half the array. */
  #trim(newest: number): void {
    const floor = newest - this.keepMs - MINUTE_MS;
    // The newest minute before the floor stays (at #head): its running totals are the base of the oldest window.
    while (this.#head + 1 < this.#b.length && this.#b[this.#head + 1]!.t < floor) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#b.length) {
      // The base minute (#head) is kept: it leads the array from now on.
      this.#b = this.#b.slice(this.#head);
      this.#head = 0;
    }
  }

  /** More decimals than seen so far: every stored integer is scaled up, exactly. */
  #rescale(pd: number, qd: number): void {
    const fp = 10 ** (pd - this.#pd);
    const fq = 10n ** BigInt(qd - this.#qd);
    const fpq = 10n ** BigInt(pd - this.#pd) * fq;
    for (const b of this.#b) {
      b.o *= fp;
      b.h *= fp;
      b.l *= fp;
      b.c *= fp;
      b.cv *= fq;
      b.cq *= fpq;
    }
    this.#pd = pd;
    this.#qd = qd;
  }

  /**
   * The statistics of the window of windowMs ending at now: the minutes from
   * floor((now − windowMs) / 1 min). openTime is that minute, or `since` when
   * the trades before it were never seen (never a time without data);
   * undefined before any trade.
   */
  stats(windowMs: number, now: number): WindowStats | undefined {
    const b = this.#b;
    if (b.length === this.#head) return undefined;
    const from = Math.floor((now - windowMs) / MINUTE_MS) * MINUTE_MS;
    // First bucket at or after `from`, last at or before now.
    let lo = this.#head;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (b[mid]!.t < from) lo = mid + 1;
      else hi = mid;
    }
    let end = b.length - 1;
    while (end >= lo && b[end]!.t > now) end--;
    const openTime = Math.max(from, this.since);
    const pd = this.#pd;
    const qd = this.#qd;
    if (end < lo) {
      // No trade in the window: the price stands where the last trade before it left it.
      const before = lo > this.#head ? b[lo - 1] : undefined;
      if (!before) return undefined;
      const c = formatUnits(before.c, pd);
      const zq = formatUnits(0, qd);
      return { openTime, closeTime: now, open: c, high: c, low: c, close: c, priceChange: formatUnits(0, pd), priceChangePercent: '0.000', weightedAvgPrice: c, volume: zq, quoteVolume: formatUnits(0, pd + qd), firstId: -1, lastId: -1, count: 0 };
    }
    const first = b[lo]!;
    const last = b[end]!;
    // Running totals: the window's sums are the last bucket's minus the one before the first (none: from zero).
    const base = lo > 0 ? b[lo - 1] : undefined;
    const v = last.cv - (base?.cv ?? 0n);
    const q = last.cq - (base?.cq ?? 0n);
    let h = first.h;
    let l = first.l;
    for (let i = lo + 1; i <= end; i++) {
      if (b[i]!.h > h) h = b[i]!.h;
      if (b[i]!.l < l) l = b[i]!.l;
    }
    // quote (10^-(pd+qd)) / qty (10^-qd) = price in 10^-pd, rounded half up.
    const w = v > 0n ? (q * 2n + v) / (2n * v) : BigInt(last.c);
    const change = last.c - first.o;
    return {
      openTime,
      closeTime: now,
      open: formatUnits(first.o, pd),
      high: formatUnits(h, pd),
      low: formatUnits(l, pd),
      close: formatUnits(last.c, pd),
      priceChange: formatUnits(change, pd),
      priceChangePercent: first.o > 0 ? ((change / first.o) * 100).toFixed(3) : '0.000',
      weightedAvgPrice: formatUnits(w, pd),
      volume: formatUnits(v, qd),
      quoteVolume: formatUnits(q, pd + qd),
      firstId: first.first,
      lastId: last.last,
      count: last.cn - (base?.cn ?? 0),
    };
  }
}
