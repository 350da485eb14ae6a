// A deterministic market simulator: random-walk prices, trades, a depth book
// moved by every trade, tickers and klines. Pure: no timers, no I/O, no clock.
// The caller advances it to a time and gets every event whose intended
// publish time has come, in intended-time order; publish_time_us is that
// intended time, so a publisher that falls behind shows up as latency.
import { create } from '@bufbuild/protobuf';
import { EventSchema, type Event } from '../../proto/gen/market_pb.js';
import type { FeedConfig } from '../common/config.ts';
import { INTERVAL_MS, KLINE_INTERVALS, depthSnapshotSubject, parseTopic, topicSubject, type KlineInterval } from '../common/topics.ts';

/** The feed's own settings (rate: trades/s per symbol, fractions allowed, 0 pauses), with the symbols spelled out. */
export type SimulatorOptions = Pick<FeedConfig, 'rate' | 'tickerMs' | 'klineMs' | 'depthSnapshotMs' | 'depthLevels' | 'seed'> & {
  symbols: string[];
  epoch: number;
  startTimeMs: number;
};

export type Emit = (subject: string, event: Event) => void;

/** What exchangeInfo says about a symbol. */
export interface SymbolInfo {
  symbol: string; // upper case, e.g. BTCUSDT
  baseAsset: string;
  quoteAsset: string;
  status: 'TRADING';
  tickSize: string;
  stepSize: string;
  pricePrecision: number;
  quantityPrecision: number;
}

/** Fixed facts of a symbol: reference price and decimal places of price and quantity. */
export interface SymbolSpec {
  symbol: string; // lower case
  baseAsset: string;
  quoteAsset: string;
  refPrice: number;
  priceDecimals: number;
  qtyDecimals: number;
}

// [reference price, price decimals (tick size), quantity decimals (step size)], close to the real pairs.
const REAL_SPECS: Record<string, [number, number, number]> = {
  btcusdt: [60000, 2, 5],
  ethusdt: [3000, 2, 4],
  bnbusdt: [600, 2, 3],
  solusdt: [150, 2, 3],
  xrpusdt: [0.6, 4, 1],
  dogeusdt: [0.15, 5, 0],
  adausdt: [0.45, 4, 1],
  trxusdt: [0.12, 5, 1],
  avaxusdt: [35, 2, 2],
  linkusdt: [15, 3, 2],
  dotusdt: [7, 3, 2],
  tonusdt: [5.5, 3, 2],
  ltcusdt: [80, 2, 3],
  bchusdt: [450, 1, 3],
  nearusdt: [5, 3, 1],
  uniusdt: [9, 3, 2],
  aptusdt: [9, 3, 2],
  icpusdt: [10, 3, 2],
  etcusdt: [25, 2, 2],
  filusdt: [5, 3, 2],
  atomusdt: [8, 3, 2],
  arbusdt: [0.8, 4, 1],
  opusdt: [1.8, 3, 2],
  suiusdt: [1.5, 4, 1],
  xlmusdt: [0.11, 5, 0],
  hbarusdt: [0.08, 5, 0],
  injusdt: [25, 2, 2],
  aaveusdt: [150, 2, 3],
  pepeusdt: [0.00001, 8, 0],
  shibusdt: [0.00002, 8, 0],
};

const QUOTE_ASSETS = ['usdt', 'usdc', 'fdusd', 'busd', 'btc', 'eth', 'bnb', 'eur', 'try'];

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The spec of any symbol. Synthetic symbols get a price drawn from a hash of
 * their name (not the seed), so every role computes the same tick sizes.
 */
export function symbolSpec(symbol: string): SymbolSpec {
  const lower = symbol.toLowerCase();
  const quote = QUOTE_ASSETS.find((q) => lower.endsWith(q) && lower.length > q.length) ?? 'usdt';
  const base = lower.endsWith(quote) ? lower.slice(0, -quote.length) : lower;
  const real = REAL_SPECS[lower];
  if (real) {
    return { symbol: lower, baseAsset: base.toUpperCase(), quoteAsset: quote.toUpperCase(), refPrice: real[0], priceDecimals: real[1], qtyDecimals: real[2] };
  }
  // Log-uniform between 0.1 and 1000; ~10^4..10^5 ticks per price; a step worth ~0.01-0.1 quote units.
  const refPrice = Number((10 ** (-1 + 4 * (fnv1a(lower) / 2 ** 32))).toPrecision(4));
  const mag = Math.floor(Math.log10(refPrice));
  return {
    symbol: lower,
    baseAsset: base.toUpperCase(),
    quoteAsset: quote.toUpperCase(),
    refPrice,
    priceDecimals: Math.max(0, 4 - mag),
    qtyDecimals: Math.min(8, Math.max(0, mag + 2)),
  };
}

export function symbolInfo(symbol: string): SymbolInfo {
  const spec = symbolSpec(symbol);
  return {
    symbol: spec.symbol.toUpperCase(),
    baseAsset: spec.baseAsset,
    quoteAsset: spec.quoteAsset,
    status: 'TRADING',
    tickSize: formatUnits(1, spec.priceDecimals),
    stepSize: formatUnits(1, spec.qtyDecimals),
    pricePrecision: spec.priceDecimals,
    quantityPrecision: spec.qtyDecimals,
  };
}

/** An integer count of 10^-decimals units as an exact decimal string. */
export function formatUnits(units: number | bigint, decimals: number): string {
  const neg = units < 0;
  let digits = (typeof units === 'bigint' ? (neg ? -units : units) : Math.abs(units)).toString();
  if (decimals > 0) {
    digits = digits.padStart(decimals + 1, '0');
    digits = `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
  }
  return neg ? `-${digits}` : digits;
}

/** mulberry32: small, fast, good enough for a simulation, and reproducible from a seed. */
function prng(seed: number): () => number {
  let a = (fnv1a(`seed:${seed}`) ^ (seed >>> 0)) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Level {
  price: number; // ticks
  qty: number; // steps
}

/** One side of a book, best level first, recording every level it changes until taken. */
class BookSide {
  readonly isBid: boolean;
  levels: Level[] = [];
  changes = new Map<number, number>();

  constructor(isBid: boolean) {
    this.isBid = isBid;
  }

  /** a is a better price than b on this side. */
  better(a: number, b: number): boolean {
    return this.isBid ? a > b : a < b;
  }

  #indexOf(price: number): number {
    let lo = 0;
    let hi = this.levels.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.better(this.levels[mid]!.price, price)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Sets a level's quantity; 0 removes it. */
  set(price: number, qty: number): void {
    const i = this.#indexOf(price);
    const at = this.levels[i];
    if (at && at.price === price) {
      if (qty === 0) this.levels.splice(i, 1);
      else at.qty = qty;
    } else if (qty > 0) {
      this.levels.splice(i, 0, { price, qty });
    }
    this.changes.set(price, qty);
  }

  trimTo(n: number): void {
    while (this.levels.length > n) this.changes.set(this.levels.pop()!.price, 0);
  }

  /** The changes since the last call, best price first (bids descending, asks ascending). */
  takeChanges(): Array<[number, number]> {
    const out = [...this.changes];
    this.changes.clear();
    out.sort((a, b) => (this.isBid ? b[0] - a[0] : a[0] - b[0]));
    return out;
  }
}

interface KlineState {
  interval: KlineInterval;
  ms: number;
  topic: string;
  subject: string;
  seq: number;
  openTime: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  quote: bigint;
  takerBase: number;
  takerQuote: bigint;
  count: number;
  firstId: number;
  lastId: number;
}

interface SymbolState {
  spec: SymbolSpec;
  upper: string;
  fair: number; // the random-walk price the book follows, in ticks (fractional)
  minFair: number;
  gap: number; // ticks between resting levels
  half: number; // half the quoted spread, ticks
  stepValue: number; // quote value of one tick × one step
  bids: BookSide;
  asks: BookSide;
  updateId: number;
  tradeId: number;
  // ticker stats since start
  open: number;
  high: number;
  low: number;
  last: number;
  lastQty: number;
  volume: number;
  quote: bigint;
  count: number;
  firstTradeId: number;
  klines: KlineState[];
  trade: { topic: string; subject: string; seq: number };
  depth: { topic: string; subject: string; snapSubject: string; seq: number };
  ticker: { topic: string; subject: string; seq: number };
}

// Timer kinds; the number also orders timers due at the same instant, so a
// kline boundary closes candles before a trade at that instant opens the next.
const BOUNDARY = 0;
const TRADE = 1;
const TICKER = 2;
const KLINE = 3;
const SNAPSHOT = 4;

interface Timer {
  kind: number;
  sym: number;
  anchor: number;
  period: number;
  k: number;
  at: number; // anchor + k × period; Infinity when disabled
}

function timerBefore(a: Timer, b: Timer): boolean {
  return a.at !== b.at ? a.at < b.at : a.kind !== b.kind ? a.kind < b.kind : a.sym < b.sym;
}

const MINUTE_MS = 60_000;
// Random-walk volatility per √second, independent of the trade rate.
const VOL_PER_SQRT_SEC = 1e-4;
const TRADE_NOTIONAL = 300;
const LEVEL_NOTIONAL = 3000;

export class MarketSimulator {
  readonly epoch: number;
  readonly startTimeMs: number;
  #opts: SimulatorOptions;
  #rand: () => number;
  #syms: SymbolState[] = [];
  #heap: Timer[] = [];
  #tradeTimers: Timer[] = [];
  #rate: number;
  #sigma = 0;
  /** Every event with an intended time up to here has been emitted. */
  #doneThrough: number;
  #emitted = 0;

  constructor(opts: SimulatorOptions) {
    if (opts.symbols.length === 0) throw new Error('simulator needs at least one symbol');
    if (!(opts.depthLevels >= 1)) throw new Error('depthLevels must be at least 1');
    if (new Set(opts.symbols.map((x) => x.toLowerCase())).size !== opts.symbols.length) throw new Error('duplicate symbols');
    this.#opts = { ...opts };
    this.epoch = opts.epoch;
    this.startTimeMs = opts.startTimeMs;
    this.#doneThrough = opts.startTimeMs;
    this.#rand = prng(opts.seed);
    this.#rate = 0;
    for (const symbol of opts.symbols) this.#syms.push(this.#initSymbol(symbol));
    const n = opts.symbols.length;
    const start = opts.startTimeMs;
    for (let i = 0; i < n; i++) {
      // Each symbol runs at its own phase within a period, spreading the load.
      const phase = (i + 0.5) / n;
      const firstBoundary = (Math.floor(start / MINUTE_MS) + 1) * MINUTE_MS;
      this.#heap.push(this.#timer(BOUNDARY, i, firstBoundary, MINUTE_MS));
      this.#heap.push(this.#timer(TICKER, i, start + phase * opts.tickerMs, opts.tickerMs));
      this.#heap.push(this.#timer(KLINE, i, start + phase * opts.klineMs, opts.klineMs));
      this.#heap.push(this.#timer(SNAPSHOT, i, start + phase * opts.depthSnapshotMs, opts.depthSnapshotMs));
      const trade = this.#timer(TRADE, i, start, 0);
      this.#tradeTimers.push(trade);
      this.#heap.push(trade);
    }
    this.#applyRate(opts.rate, start);
    this.#heapify();
  }

  get symbols(): string[] {
    return this.#syms.map((s) => s.spec.symbol);
  }

  get rate(): number {
    return this.#rate;
  }

  get eventsEmitted(): number {
    return this.#emitted;
  }

  /** Intended time of the next event due (Infinity when nothing is scheduled). */
  nextEventTimeMs(): number {
    return this.#heap[0]?.at ?? Infinity;
  }

  symbolsInfo(): SymbolInfo[] {
    return this.#syms.map((s) => symbolInfo(s.spec.symbol));
  }

  /**
   * Changes the trade rate from the point the simulator has reached: the
   * next trade of each symbol is at its phase within the new period.
   */
  setRate(rate: number): void {
    if (!(rate >= 0) || !Number.isFinite(rate)) throw new Error(`invalid rate ${rate}: must be a finite number ≥ 0`);
    this.#applyRate(rate, this.#doneThrough);
    this.#heapify();
  }

  /**
   * Emits, in intended-time order, every event due at or before nowMs, or
   * stops after maxEvents (a timer's events go out together, so it may
   * overshoot by a few). Returns how many were emitted.
   */
  advanceTo(nowMs: number, emit: Emit, maxEvents = Infinity): number {
    let n = 0;
    const heap = this.#heap;
    while (n < maxEvents) {
      const top = heap[0];
      if (!top || top.at > nowMs) {
        if (nowMs > this.#doneThrough) this.#doneThrough = nowMs;
        break;
      }
      this.#doneThrough = top.at;
      n += this.#fire(top, emit);
      top.k++;
      top.at = top.anchor + top.k * top.period;
      this.#siftDown(0);
    }
    this.#emitted += n;
    return n;
  }

  #timer(kind: number, sym: number, anchor: number, period: number): Timer {
    return { kind, sym, anchor, period, k: 0, at: period > 0 && Number.isFinite(anchor) ? anchor : Infinity };
  }

  #applyRate(rate: number, from: number): void {
    this.#rate = rate;
    this.#sigma = rate > 0 ? VOL_PER_SQRT_SEC / Math.sqrt(rate) : 0;
    const n = this.#tradeTimers.length;
    for (const t of this.#tradeTimers) {
      t.k = 0;
      if (rate > 0) {
        t.period = 1000 / rate;
        t.anchor = from + ((t.sym + 0.5) / n) * t.period;
        t.at = t.anchor;
      } else {
        t.period = 0;
        t.at = Infinity;
      }
    }
  }

  #initSymbol(symbol: string): SymbolState {
    const parsed = parseTopic(`${symbol}@trade`);
    if (typeof parsed === 'string') throw new Error(`invalid symbol "${symbol}": ${parsed}`);
    const spec = symbolSpec(parsed.symbol);
    const sym = spec.symbol;
    const real = REAL_SPECS[sym] !== undefined;
    // Real pairs start within ±2% of their reference; synthetic ones anywhere within ±30%.
    const jitter = 1 + (this.#rand() * 2 - 1) * (real ? 0.02 : 0.3);
    const fair = Math.max(1000, Math.round(spec.refPrice * jitter * 10 ** spec.priceDecimals));
    const gap = Math.max(1, Math.round(fair * 0.00002));
    const open = Math.round(fair);
    const topic = (stream: string) => {
      const t = parseTopic(`${sym}@${stream}`) as Exclude<ReturnType<typeof parseTopic>, string>;
      return { topic: t.topic, subject: topicSubject(t), seq: 0 };
    };
    const klines: KlineState[] = KLINE_INTERVALS.map((interval) => {
      const ms = INTERVAL_MS[interval];
      return {
        interval,
        ms,
        ...topic(`kline_${interval}`),
        openTime: Math.floor(this.#opts.startTimeMs / ms) * ms,
        open,
        high: open,
        low: open,
        close: open,
        volume: 0,
        quote: 0n,
        takerBase: 0,
        takerQuote: 0n,
        count: 0,
        firstId: 0,
        lastId: 0,
      };
    });
    const s: SymbolState = {
      spec,
      upper: sym.toUpperCase(),
      fair,
      minFair: Math.max(10, fair / 100),
      gap,
      half: Math.max(1, Math.floor(gap / 2)),
      stepValue: 10 ** -(spec.priceDecimals + spec.qtyDecimals),
      bids: new BookSide(true),
      asks: new BookSide(false),
      updateId: 0,
      tradeId: 0,
      open,
      high: open,
      low: open,
      last: open,
      lastQty: 0,
      volume: 0,
      quote: 0n,
      count: 0,
      firstTradeId: 0,
      klines,
      trade: topic('trade'),
      depth: { ...topic('depth'), snapSubject: depthSnapshotSubject(sym) },
      ticker: topic('ticker'),
    };
    this.#replenish(s, s.bids, s.asks);
    this.#replenish(s, s.asks, s.bids);
    // The initial book is the state before update id 1, not a diff.
    s.bids.changes.clear();
    s.asks.changes.clear();
    return s;
  }

  #normal(): number {
    const u = 1 - this.#rand();
    const v = this.#rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** A random quantity in steps worth about `notional` quote units. */
  #lot(s: SymbolState, notional: number): number {
    const worth = -Math.log(1 - this.#rand()) * notional;
    return Math.max(1, Math.round(worth / (s.fair * s.stepValue)));
  }

  /** Refills a side to depthLevels at its far end. */
  #replenish(s: SymbolState, side: BookSide, other: BookSide): void {
    const want = this.#opts.depthLevels;
    while (side.levels.length < want) {
      const deepest = side.levels[side.levels.length - 1];
      let price: number;
      if (deepest) {
        const step = s.gap * (this.#rand() < 0.3 ? 2 : 1);
        price = side.isBid ? deepest.price - step : deepest.price + step;
      } else {
        const otherBest = other.levels[0]?.price;
        price = side.isBid ? Math.round(s.fair - s.half) : Math.round(s.fair + s.half);
        if (otherBest !== undefined) price = side.isBid ? Math.min(price, otherBest - 1) : Math.max(price, otherBest + 1);
      }
      if (price <= 0) break;
      side.set(price, this.#lot(s, LEVEL_NOTIONAL));
    }
  }

  /** Rests a new best level, removing whatever it crosses on the other side. */
  #place(s: SymbolState, side: BookSide, other: BookSide, price: number): void {
    const crosses = (p: number) => (other.isBid ? p >= price : p <= price);
    while (other.levels.length > 0 && crosses(other.levels[0]!.price)) other.set(other.levels[0]!.price, 0);
    side.set(price, this.#lot(s, LEVEL_NOTIONAL));
    side.trimTo(this.#opts.depthLevels);
    this.#replenish(s, other, side);
  }

  /** Market makers follow the fair price: quote inside the spread toward it, or reshuffle a level. */
  #requote(s: SymbolState): void {
    const wantBid = Math.round(s.fair - s.half);
    const wantAsk = Math.round(s.fair + s.half);
    const bestBid = s.bids.levels[0]?.price ?? 0;
    const bestAsk = s.asks.levels[0]?.price ?? Infinity;
    const bidFirst = this.#rand() < 0.5;
    for (const bid of bidFirst ? [true, false] : [false, true]) {
      if (bid && wantBid > bestBid && wantBid > 0) return this.#place(s, s.bids, s.asks, wantBid);
      if (!bid && wantAsk < bestAsk) return this.#place(s, s.asks, s.bids, wantAsk);
    }
    const side = this.#rand() < 0.5 ? s.bids : s.asks;
    const level = side.levels[Math.floor(this.#rand() * side.levels.length)];
    if (level) side.set(level.price, this.#lot(s, LEVEL_NOTIONAL));
  }

  #fire(timer: Timer, emit: Emit): number {
    const s = this.#syms[timer.sym]!;
    switch (timer.kind) {
      case TRADE:
        return this.#trade(s, timer.at, emit);
      case TICKER:
        return this.#ticker(s, timer.at, emit);
      case KLINE:
        for (const k of s.klines) this.#emitKline(s, k, false, timer.at, emit);
        return s.klines.length;
      case SNAPSHOT:
        return this.#snapshot(s, timer.at, emit);
      case BOUNDARY:
        return this.#closeKlines(s, timer.at, emit);
      default:
        throw new Error(`unknown timer kind ${timer.kind}`);
    }
  }

  #header(topic: string, seq: number, at: number) {
    return { topic, seq: BigInt(seq), epoch: BigInt(this.epoch), publishTimeUs: BigInt(Math.round(at * 1000)) };
  }

  #trade(s: SymbolState, at: number, emit: Emit): number {
    s.fair = Math.max(s.minFair, s.fair * Math.exp(this.#sigma * this.#normal()));
    // The book always holds both sides (replenished after every change).
    const mid = (s.bids.levels[0]!.price + s.asks.levels[0]!.price) / 2;
    const takerBuys = this.#rand() < (s.fair > mid ? 0.7 : 0.3);
    const hit = takerBuys ? s.asks : s.bids;
    const other = takerBuys ? s.bids : s.asks;
    const top = hit.levels[0]!;
    const price = top.price;
    let qty = Math.min(top.qty, this.#lot(s, TRADE_NOTIONAL));
    if ((takerBuys ? s.fair > price : s.fair < price) && this.#rand() < 0.5) qty = top.qty; // sweep the level
    hit.set(price, top.qty - qty);
    this.#replenish(s, hit, other);
    this.#requote(s);

    const bids = s.bids.takeChanges();
    const asks = s.asks.takeChanges();
    const first = s.updateId + 1;
    s.updateId += bids.length + asks.length;
    const id = ++s.tradeId;
    const quote = BigInt(price * qty);

    s.last = price;
    s.lastQty = qty;
    if (s.count === 0) {
      s.firstTradeId = id;
      s.high = price;
      s.low = price;
    } else {
      if (price > s.high) s.high = price;
      if (price < s.low) s.low = price;
    }
    s.count++;
    s.volume += qty;
    s.quote += quote;
    for (const k of s.klines) {
      if (k.count === 0) {
        k.open = k.high = k.low = price;
        k.firstId = id;
      } else {
        if (price > k.high) k.high = price;
        if (price < k.low) k.low = price;
      }
      k.close = price;
      k.lastId = id;
      k.count++;
      k.volume += qty;
      k.quote += quote;
      if (takerBuys) {
        k.takerBase += qty;
        k.takerQuote += quote;
      }
    }

    const pd = s.spec.priceDecimals;
    const qd = s.spec.qtyDecimals;
    emit(
      s.trade.subject,
      create(EventSchema, {
        ...this.#header(s.trade.topic, ++s.trade.seq, at),
        payload: {
          case: 'trade',
          value: {
            symbol: s.upper,
            tradeId: BigInt(id),
            price: formatUnits(price, pd),
            qty: formatUnits(qty, qd),
            tradeTime: BigInt(Math.floor(at)),
            buyerIsMaker: !takerBuys,
          },
        },
      }),
    );
    const levels = (changes: Array<[number, number]>) =>
      changes.map(([p, q]) => ({ price: formatUnits(p, pd), qty: formatUnits(q, qd) }));
    emit(
      s.depth.subject,
      create(EventSchema, {
        ...this.#header(s.depth.topic, ++s.depth.seq, at),
        payload: {
          case: 'depthUpdate',
          value: {
            symbol: s.upper,
            firstUpdateId: BigInt(first),
            finalUpdateId: BigInt(s.updateId),
            bids: levels(bids),
            asks: levels(asks),
          },
        },
      }),
    );
    return 2;
  }

  #ticker(s: SymbolState, at: number, emit: Emit): number {
    const pd = s.spec.priceDecimals;
    const qd = s.spec.qtyDecimals;
    const change = s.last - s.open;
    const avg = s.volume > 0 ? Number((s.quote * 2n + BigInt(s.volume)) / (2n * BigInt(s.volume))) : s.last;
    const bid = s.bids.levels[0];
    const ask = s.asks.levels[0];
    emit(
      s.ticker.subject,
      create(EventSchema, {
        ...this.#header(s.ticker.topic, ++s.ticker.seq, at),
        payload: {
          case: 'ticker',
          value: {
            symbol: s.upper,
            priceChange: formatUnits(change, pd),
            priceChangePercent: ((change / s.open) * 100).toFixed(3),
            weightedAvgPrice: formatUnits(avg, pd),
            lastPrice: formatUnits(s.last, pd),
            lastQty: formatUnits(s.lastQty, qd),
            bestBid: formatUnits(bid?.price ?? 0, pd),
            bestBidQty: formatUnits(bid?.qty ?? 0, qd),
            bestAsk: formatUnits(ask?.price ?? 0, pd),
            bestAskQty: formatUnits(ask?.qty ?? 0, qd),
            openPrice: formatUnits(s.open, pd),
            highPrice: formatUnits(s.high, pd),
            lowPrice: formatUnits(s.low, pd),
            volume: formatUnits(s.volume, qd),
            quoteVolume: formatUnits(s.quote, pd + qd),
            openTime: BigInt(this.startTimeMs),
            closeTime: BigInt(Math.floor(at)),
            firstTradeId: BigInt(s.firstTradeId),
            lastTradeId: BigInt(s.count > 0 ? s.tradeId : 0),
            tradeCount: BigInt(s.count),
          },
        },
      }),
    );
    return 1;
  }

  #emitKline(s: SymbolState, k: KlineState, closed: boolean, at: number, emit: Emit): void {
    const pd = s.spec.priceDecimals;
    const qd = s.spec.qtyDecimals;
    emit(
      k.subject,
      create(EventSchema, {
        ...this.#header(k.topic, ++k.seq, at),
        payload: {
          case: 'kline',
          value: {
            symbol: s.upper,
            interval: k.interval,
            openTime: BigInt(k.openTime),
            closeTime: BigInt(k.openTime + k.ms - 1),
            firstTradeId: BigInt(k.firstId),
            lastTradeId: BigInt(k.lastId),
            open: formatUnits(k.open, pd),
            close: formatUnits(k.close, pd),
            high: formatUnits(k.high, pd),
            low: formatUnits(k.low, pd),
            volume: formatUnits(k.volume, qd),
            tradeCount: BigInt(k.count),
            closed,
            quoteVolume: formatUnits(k.quote, pd + qd),
            takerBuyBaseVolume: formatUnits(k.takerBase, qd),
            takerBuyQuoteVolume: formatUnits(k.takerQuote, pd + qd),
          },
        },
      }),
    );
  }

  /** At a minute boundary: emits each candle that ends here, closed, and starts its successor. */
  #closeKlines(s: SymbolState, at: number, emit: Emit): number {
    let n = 0;
    for (const k of s.klines) {
      if (k.openTime + k.ms > at) continue;
      this.#emitKline(s, k, true, at, emit);
      n++;
      k.openTime = Math.floor(at / k.ms) * k.ms;
      k.open = k.high = k.low = k.close;
      k.volume = k.takerBase = k.count = k.firstId = k.lastId = 0;
      k.quote = k.takerQuote = 0n;
    }
    return n;
  }

  #snapshot(s: SymbolState, at: number, emit: Emit): number {
    const pd = s.spec.priceDecimals;
    const qd = s.spec.qtyDecimals;
    const levels = (side: BookSide): Array<{ price: string; qty: string }> =>
      side.levels.map((l) => ({ price: formatUnits(l.price, pd), qty: formatUnits(l.qty, qd) }));
    // Snapshots take no sequence number: a snapshot's seq is the last diff it contains.
    emit(
      s.depth.snapSubject,
      create(EventSchema, {
        ...this.#header(s.depth.topic, s.depth.seq, at),
        payload: {
          case: 'depthSnapshot',
          value: { symbol: s.upper, lastUpdateId: BigInt(s.updateId), bids: levels(s.bids), asks: levels(s.asks) },
        },
      }),
    );
    return 1;
  }

  #heapify(): void {
    for (let i = (this.#heap.length >> 1) - 1; i >= 0; i--) this.#siftDown(i);
  }

  #siftDown(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const item = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && timerBefore(heap[r]!, heap[l]!) ? r : l;
      if (!timerBefore(heap[c]!, item)) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = item;
  }
}

