// A deterministic market simulator: random-walk prices, trades, a depth book
// moved by every trade (order-book.ts; its diffs go out every 100 ms and every
// second, as Binance's diff-depth streams do), tickers and klines. Pure: no
// timers, no I/O, no clock.
// The caller advances it to a time and gets every event whose intended
// publish time has come, in intended-time order; publish_time_us is that
// intended time, so a publisher that falls behind shows up as latency.
import { create } from '@bufbuild/protobuf';
import { EventSchema, type Event } from '../../proto/gen/market_pb.js';
import type { FeedConfig } from '../common/config.ts';
import { depthSnapshotSubject, parseTopic, topicSubject } from '../common/topics.ts';
import { BookSide, OrderBook, type BookDiff } from './order-book.ts';
import { SymbolKlines, type KlineEmitContext } from './klines.ts';
import { REAL_SPECS, fnv1a, formatUnits, symbolInfo, symbolSpec, type SymbolInfo, type SymbolSpec } from '../common/symbols.ts';

export { formatUnits, symbolInfo, symbolSpec, type SymbolInfo, type SymbolSpec };

/** The feed's own settings (rate: trades/s per symbol, fractions allowed, 0 pauses), with the symbols spelled out. */
export type SimulatorOptions = Pick<FeedConfig, 'rate' | 'tickerMs' | 'klineMs' | 'depthSnapshotMs' | 'depthLevels' | 'seed'> & {
  symbols: string[];
  epoch: number;
  startTimeMs: number;
};

export type Emit = (subject: string, event: Event) => void;

/**
 * mulberry32: small, fast, good enough for a simulation, and reproducible from
 * a seed; `stream` gives a separate sequence from the same seed (the order
 * flow draws its own, so adding users leaves the market's draws unchanged).
 */
export function prng(seed: number, stream = 'seed'): () => number {
  let a = (fnv1a(`${stream}:${seed}`) ^ (seed >>> 0)) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SymbolState {
  spec: SymbolSpec;
  upper: string;
  fair: number; // the random-walk price the book follows, in ticks (fractional)
  minFair: number;
  gap: number; // ticks between resting levels
  half: number; // half the quoted spread, ticks
  stepValue: number; // quote value of one tick × one step
  book: OrderBook;
  bids: BookSide; // = book.bids
  asks: BookSide; // = book.asks
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
  klines: SymbolKlines;
  trade: { topic: string; subject: string; seq: number };
  depth: { topic: string; subject: string; snapSubject: string; seq: number }; // 1000 ms diffs
  depthFast: { topic: string; subject: string; seq: number }; // 100 ms diffs
  bookTicker: { topic: string; subject: string; seq: number; last: string }; // last: the top it last published
  ticker: { topic: string; subject: string; seq: number };
  miniTicker: { topic: string; subject: string; seq: number }; // same payload, Binance's mini shape
}

// Timer kinds; the number also orders timers due at the same instant, so a
// kline boundary closes candles before a trade at that instant opens the next.
const BOUNDARY = 0;
const TRADE = 1;
const TICKER = 2;
const KLINE = 3;
// A snapshot right after the 100 ms diff of the same instant: its lastUpdateId is that diff's u.
const DEPTH = 4;
const SNAPSHOT = 5;

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

// Candles close on whole seconds (the 1s interval); longer ones only when their boundary comes.
const SECOND_MS = 1000;
// Binance's diff-depth cadences: @depth@100ms every tick, @depth every SLOW_EVERY ticks.
const DEPTH_FAST_MS = 100;
const SLOW_EVERY = 10;
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
      const firstBoundary = (Math.floor(start / SECOND_MS) + 1) * SECOND_MS;
      this.#heap.push(this.#timer(BOUNDARY, i, firstBoundary, SECOND_MS));
      this.#heap.push(this.#timer(TICKER, i, start + phase * opts.tickerMs, opts.tickerMs));
      this.#heap.push(this.#timer(KLINE, i, start + phase * opts.klineMs, opts.klineMs));
      // Snapshots fall on the symbol's 100 ms diff ticks (their period rounded to whole ticks).
      const snapshotMs = Math.max(1, Math.round(opts.depthSnapshotMs / DEPTH_FAST_MS)) * DEPTH_FAST_MS;
      this.#heap.push(this.#timer(DEPTH, i, start + phase * DEPTH_FAST_MS, DEPTH_FAST_MS));
      this.#heap.push(this.#timer(SNAPSHOT, i, start + phase * DEPTH_FAST_MS, snapshotMs));
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
    const klines = new SymbolKlines((stream) => topic(stream), this.#opts.startTimeMs, open);
    const book = new OrderBook();
    const s: SymbolState = {
      spec,
      upper: sym.toUpperCase(),
      fair,
      minFair: Math.max(10, fair / 100),
      gap,
      half: Math.max(1, Math.floor(gap / 2)),
      stepValue: 10 ** -(spec.priceDecimals + spec.qtyDecimals),
      book,
      bids: book.bids,
      asks: book.asks,
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
      depthFast: topic('depth@100ms'),
      bookTicker: { ...topic('bookticker'), last: '' },
      ticker: topic('ticker'),
      miniTicker: topic('miniticker'),
    };
    this.#replenish(s, s.bids, s.asks);
    this.#replenish(s, s.asks, s.bids);
    // The initial book is the state before update id 1, not a diff.
    book.markInitial();
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
        return s.klines.emitAll(this.#klineCtx(s, timer.at, emit));
      case SNAPSHOT:
        return this.#snapshot(s, timer.at, emit);
      case DEPTH:
        return this.#depthDiffs(s, timer.at, timer.k % SLOW_EVERY === SLOW_EVERY - 1, emit);
      case BOUNDARY:
        return s.klines.closeDue(this.#klineCtx(s, timer.at, emit));
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
    s.klines.onTrade(id, price, qty, quote, takerBuys);

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
    return 1;
  }

  /** Publishes the 100 ms diff, and on every SLOW_EVERY-th tick the 1000 ms one; a window without changes sends nothing. */
  #depthDiffs(s: SymbolState, at: number, slow: boolean, emit: Emit): number {
    let n = 0;
    const fast = s.book.takeFastDiff();
    if (fast) {
      this.#emitDiff(s, s.depthFast, fast, at, emit);
      n += 1 + this.#bookTicker(s, fast.last, at, emit);
    }
    const slowDiff = slow ? s.book.takeSlowDiff() : undefined;
    if (slowDiff) {
      this.#emitDiff(s, s.depth, slowDiff, at, emit);
      n++;
    }
    return n;
  }

  /** The book's top after update id u, when it changed since the last one published: Binance's bookTicker at the diff's u. */
  #bookTicker(s: SymbolState, u: number, at: number, emit: Emit): number {
    const bid = s.bids.levels[0]!;
    const ask = s.asks.levels[0]!;
    const top = `${bid.price}/${bid.qty}/${ask.price}/${ask.qty}`;
    if (top === s.bookTicker.last) return 0;
    s.bookTicker.last = top;
    const pd = s.spec.priceDecimals;
    const qd = s.spec.qtyDecimals;
    const value = { symbol: s.upper, updateId: BigInt(u), bidPrice: formatUnits(bid.price, pd), bidQty: formatUnits(bid.qty, qd), askPrice: formatUnits(ask.price, pd), askQty: formatUnits(ask.qty, qd) };
    emit(s.bookTicker.subject, create(EventSchema, { ...this.#header(s.bookTicker.topic, ++s.bookTicker.seq, at), payload: { case: 'bookTicker', value } }));
    return 1;
  }

  #emitDiff(s: SymbolState, t: { topic: string; subject: string; seq: number }, d: BookDiff, at: number, emit: Emit): void {
    const pd = s.spec.priceDecimals;
    const qd = s.spec.qtyDecimals;
    const levels = (changes: Array<[number, number]>) => changes.map(([p, q]) => ({ price: formatUnits(p, pd), qty: formatUnits(q, qd) }));
    emit(
      t.subject,
      create(EventSchema, {
        ...this.#header(t.topic, ++t.seq, at),
        payload: {
          case: 'depthUpdate',
          value: { symbol: s.upper, firstUpdateId: BigInt(d.first), finalUpdateId: BigInt(d.last), bids: levels(d.bids), asks: levels(d.asks) },
        },
      }),
    );
  }

  #ticker(s: SymbolState, at: number, emit: Emit): number {
    const pd = s.spec.priceDecimals;
    const qd = s.spec.qtyDecimals;
    const change = s.last - s.open;
    const avg = s.volume > 0 ? Number((s.quote * 2n + BigInt(s.volume)) / (2n * BigInt(s.volume))) : s.last;
    const bid = s.bids.levels[0];
    const ask = s.asks.levels[0];
    const value = {
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
    };
    for (const t of [s.ticker, s.miniTicker]) {
      emit(t.subject, create(EventSchema, { ...this.#header(t.topic, ++t.seq, at), payload: { case: 'ticker', value } }));
    }
    return 2;
  }

  #klineCtx(s: SymbolState, at: number, emit: Emit): KlineEmitContext {
    return { symbol: s.upper, priceDecimals: s.spec.priceDecimals, qtyDecimals: s.spec.qtyDecimals, at, emit, header: (topic, seq) => this.#header(topic, seq, at) };
  }

  #snapshot(s: SymbolState, at: number, emit: Emit): number {
    const pd = s.spec.priceDecimals;
    const qd = s.spec.qtyDecimals;
    const levels = (side: BookSide): Array<{ price: string; qty: string }> =>
      side.levels.map((l) => ({ price: formatUnits(l.price, pd), qty: formatUnits(l.qty, qd) }));
    // Snapshots take no sequence number: a snapshot's seq is the last diff of its topic it contains.
    const value = { symbol: s.upper, lastUpdateId: BigInt(s.book.updateId), bids: levels(s.bids), asks: levels(s.asks) };
    for (const t of [s.depth, s.depthFast]) {
      emit(s.depth.snapSubject, create(EventSchema, { ...this.#header(t.topic, t.seq, at), payload: { case: 'depthSnapshot', value } }));
    }
    return 2;
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

