// Binance's rolling-window tickers on a push-server: every trade off the bus is
// folded into its symbol's RollingWindow (rolling-window.ts: one-minute
// buckets, seven days), whoever subscribes, so GET /api/v3/ticker answers at
// once; the streams are derived (derived-topics.ts) only while bound:
// `<sym>@ticker_<1h|4h|1d>` follows its symbol's `@ticker` (the feed's ticker
// cadence, 1 s), `!ticker_<w>@arr` follows every `@ticker` like `!ticker@arr`
// (at most one array a second, only the symbols whose window changed). A
// window starts when this server first saw its symbol's trades (or when the
// feed restarted, a new epoch, whose trade ids start again): before that it
// holds nothing, and its openTime says so rather than claim the whole window.
import type { Event, Ticker } from '../../proto/gen/market_pb.js';
import type { EventHeader } from '../common/event-header.ts';
import type { TopicHistory } from '../common/topic-history.ts';
import type { ParsedTopic, RollingWindowSize } from '../common/topics.ts';
import { RollingWindow, type TradeIn, type WindowStats } from './rolling-window.ts';
import { readTrade } from './trade-reader.ts';

const H = 3_600_000;
/** The stream window sizes (Binance's 1h, 4h, 1d) in ms. */
export const STREAM_WINDOW_MS: Record<RollingWindowSize, number> = { '1h': H, '4h': 4 * H, '1d': 24 * H };

export class RollingTickers {
  readonly startedAt: number;
  #bySymbol = new Map<string, { epoch: number; w: RollingWindow }>();

  constructor(startedAt = Date.now()) {
    this.startedAt = startedAt;
  }

  get symbols(): string[] {
    return [...this.#bySymbol.keys()].sort();
  }

  has(symbol: string): boolean {
    return this.#bySymbol.has(symbol);
  }

  /** Every bus event goes by; only a trade's four fields are read (no full decode), its symbol from the subject. */
  onBus(subject: string, h: EventHeader, bytes: Uint8Array): void {
    if (!subject.startsWith('md.trade.')) return;
    const t = readTrade(bytes);
    if (t) this.add(subject.slice(9), h.epoch, t);
  }

  /** One trade of a feed epoch: a newer epoch (a restarted feed) starts the symbol's window again. */
  add(symbol: string, epoch: number, trade: TradeIn): void {
    let s = this.#bySymbol.get(symbol);
    if (s && epoch < s.epoch) return;
    if (!s || epoch > s.epoch) {
      // Complete from the later of our start and the feed's (its epoch is its start time in ms, when it is one).
      const feedStart = epoch <= trade.time ? epoch : 0;
      // After a restart the new epoch is complete from the feed's start (or, without a start time, its first trade).
      s = { epoch, w: new RollingWindow(s ? feedStart || trade.time : Math.max(this.startedAt, feedStart)) };
      this.#bySymbol.set(symbol, s);
    }
    s.w.add(trade);
  }

  stats(symbol: string, windowMs: number, now: number): WindowStats | undefined {
    return this.#bySymbol.get(symbol)?.w.stats(windowMs, now);
  }

  /** A symbol's window as the Ticker message the streams carry (no trade in it: no trade ids, count 0). */
  ticker(symbol: string, windowMs: number, now: number): Ticker | undefined {
    const s = this.stats(symbol, windowMs, now);
    if (!s) return undefined;
    return {
      symbol: symbol.toUpperCase(), priceChange: s.priceChange, priceChangePercent: s.priceChangePercent, weightedAvgPrice: s.weightedAvgPrice,
      lastPrice: s.close, openPrice: s.open, highPrice: s.high, lowPrice: s.low, volume: s.volume, quoteVolume: s.quoteVolume,
      openTime: BigInt(s.openTime), closeTime: BigInt(s.closeTime),
      firstTradeId: BigInt(Math.max(0, s.firstId)), lastTradeId: BigInt(Math.max(0, s.lastId)), tradeCount: BigInt(s.count),
    } as Ticker;
  }
}

/** What DerivedTopics needs of a rolling deriver, beyond deriving: the state to publish at once on subscribe. */
export interface RollingDeriver {
  readonly topic: string;
  readonly source: string;
  derive(ev: Event, isSnapshot: boolean): Event['payload'] | undefined;
  reset(): void;
  /** The current state and the source epoch it belongs to; undefined while nothing is known. */
  initial(topics: ReadonlyMap<string, TopicHistory>, nowMs: number): { epoch: number; payload: Event['payload'] } | undefined;
}

export function rollingDeriver(parsed: ParsedTopic, store: RollingTickers): RollingDeriver {
  const ms = STREAM_WINDOW_MS[parsed.window!];
  return parsed.allMarket ? new RollingArray(parsed.topic, parsed.source!, ms, store) : new RollingTicker(parsed.topic, parsed.source!, parsed.symbol, ms, store);
}

/** `<sym>@ticker_<w>`: the window at each of the symbol's `@ticker` events (their publish time is the close time). */
class RollingTicker implements RollingDeriver {
  readonly topic: string;
  readonly source: string;
  #symbol: string;
  #ms: number;
  #store: RollingTickers;

  constructor(topic: string, source: string, symbol: string, ms: number, store: RollingTickers) {
    this.topic = topic;
    this.source = source;
    this.#symbol = symbol;
    this.#ms = ms;
    this.#store = store;
  }

  reset(): void {}

  derive(ev: Event, isSnapshot: boolean): Event['payload'] | undefined {
    if (isSnapshot || ev.payload.case !== 'ticker') return undefined;
    return this.#payload(Math.floor(Number(ev.publishTimeUs) / 1000));
  }

  initial(topics: ReadonlyMap<string, TopicHistory>, nowMs: number) {
    const epoch = topics.get(this.source)?.epoch ?? 0;
    const payload = this.#payload(nowMs);
    return epoch > 0 && payload ? { epoch, payload } : undefined;
  }

  #payload(now: number): Event['payload'] | undefined {
    const t = this.#store.ticker(this.#symbol, this.#ms, now);
    return t ? ({ case: 'ticker', value: t } as Event['payload']) : undefined;
  }
}

const ARRAY_EVERY_US = 1_000_000;

/** `!ticker_<w>@arr`: at most one array a second, of the symbols whose window changed since they were last sent. */
class RollingArray implements RollingDeriver {
  readonly topic: string;
  readonly source: string;
  #ms: number;
  #store: RollingTickers;
  #pending = new Set<string>();
  /** Per symbol, what its last sent window held (first id, last id, count): unchanged ones stay out. */
  #sent = new Map<string, string>();
  #lastEmitUs = -Infinity;

  constructor(topic: string, source: string, ms: number, store: RollingTickers) {
    this.topic = topic;
    this.source = source;
    this.#ms = ms;
    this.#store = store;
  }

  reset(): void {}

  derive(ev: Event, isSnapshot: boolean): Event['payload'] | undefined {
    const p = ev.payload;
    if (isSnapshot || p.case !== 'ticker') return undefined;
    this.#pending.add(p.value.symbol.toLowerCase());
    const at = Number(ev.publishTimeUs);
    if (at - this.#lastEmitUs < ARRAY_EVERY_US) return undefined;
    this.#lastEmitUs = at;
    return this.#flush(this.#pending, Math.floor(at / 1000));
  }

  initial(topics: ReadonlyMap<string, TopicHistory>, nowMs: number) {
    let epoch = 0;
    for (const [topic, h] of topics) if (topic.endsWith('@ticker')) epoch = Math.max(epoch, h.epoch);
    const payload = this.#flush(new Set(this.#store.symbols), nowMs);
    if (payload) this.#lastEmitUs = nowMs * 1000;
    return epoch > 0 && payload ? { epoch, payload } : undefined;
  }

  #flush(symbols: Set<string>, now: number): Event['payload'] | undefined {
    const tickers: Ticker[] = [];
    for (const sym of [...symbols].sort()) {
      const t = this.#store.ticker(sym, this.#ms, now);
      if (!t) continue;
      const key = `${t.firstTradeId}/${t.lastTradeId}/${t.tradeCount}`;
      if (this.#sent.get(sym) === key) continue;
      this.#sent.set(sym, key);
      tickers.push(t);
    }
    symbols.clear();
    return tickers.length > 0 ? ({ case: 'tickerArray', value: { tickers } } as Event['payload']) : undefined;
  }
}
