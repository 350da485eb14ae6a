// Keeps each series' newest candle in the memory tier current to the last
// trade. The feed publishes candles in progress every klineMs, each with the
// id of the last trade it contains; trades arrive in between. Every trade
// whose id is above what a series' candles already contain is folded into
// the open candle (OHLC, volumes, count, taker volumes, exact decimals), as
// the feed itself does; after a closed candle, the first trade opens its
// successor at the previous close, as the feed does. When the feed's next
// candle arrives it replaces ours and the trades it does not yet contain are
// folded again, so the answer never lags the trade stream.
import type { Kline } from './kline.ts';
import { seriesKey } from './kline.ts';
import type { MemoryKlineStore } from './memory-store.ts';
import { decAdd, decCmp, decMul } from './rows.ts';

export interface TradeFact {
  id: number;
  price: string;
  qty: string;
  takerBuys: boolean;
}

interface SeriesState {
  /** Highest trade id any candle of the series is known to contain (the feed's or ours). */
  folded: number;
  /** Open time of the newest candle the feed published closed, and the last trade it contains. */
  closedOpenTime: number;
  closedLastId: number;
}

const RING = 1024;

const zeroLike = (s: string) => {
  const dot = s.indexOf('.');
  return dot < 0 ? '0' : `0.${'0'.repeat(s.length - dot - 1)}`;
};

/** The candle after one trade more (a new object: rows are cached per Kline object). */
export function foldTrade(k: Kline, t: TradeFact): Kline {
  const quote = decMul(t.price, t.qty);
  const first = k.trades === 0;
  return {
    ...k,
    open: first ? t.price : k.open,
    high: first || decCmp(t.price, k.high) > 0 ? t.price : k.high,
    low: first || decCmp(t.price, k.low) < 0 ? t.price : k.low,
    close: t.price,
    volume: decAdd(k.volume, t.qty),
    quoteVolume: decAdd(k.quoteVolume, quote),
    trades: k.trades + 1,
    takerBuyBase: t.takerBuys ? decAdd(k.takerBuyBase, t.qty) : k.takerBuyBase,
    takerBuyQuote: t.takerBuys ? decAdd(k.takerBuyQuote, quote) : k.takerBuyQuote,
  };
}

export class OpenCandles {
  #memory: MemoryKlineStore;
  #intervals: Readonly<Record<string, number>>;
  #state = new Map<string, SeriesState>();
  #recent = new Map<string, TradeFact[]>(); // symbol → the last RING trades, oldest first
  /** Trades folded into open candles since start. */
  folded = 0;

  /** `intervals`: the live feed's kline intervals and their lengths (a successor opens one length later). */
  constructor(memory: MemoryKlineStore, intervals: Readonly<Record<string, number>>) {
    this.#memory = memory;
    this.#intervals = intervals;
  }

  #st(key: string): SeriesState {
    let s = this.#state.get(key);
    if (!s) {
      s = { folded: 0, closedOpenTime: -Infinity, closedLastId: 0 };
      this.#state.set(key, s);
    }
    return s;
  }

  /** A candle from the feed: stored, then topped up with the trades it does not contain yet. */
  onKline(k: Kline, closed: boolean, lastTradeId: number): void {
    const key = seriesKey(k.symbol, k.interval);
    const st = this.#st(key);
    if (lastTradeId > st.folded) st.folded = lastTradeId;
    if (closed && k.openTime > st.closedOpenTime) {
      st.closedOpenTime = k.openTime;
      st.closedLastId = Math.max(st.closedLastId, lastTradeId);
    }
    const newest = this.#memory.last(k.symbol, k.interval);
    // The feed's copy of the open candle lags the trades folded into ours: replay them on it.
    const replay = !closed && (!newest || newest.openTime <= k.openTime) ? (this.#recent.get(k.symbol) ?? []).filter((t) => t.id > Math.max(lastTradeId, st.closedLastId)) : [];
    let cur = k;
    for (const t of replay) cur = foldTrade(cur, t);
    if (replay.length > 0) st.folded = Math.max(st.folded, replay[replay.length - 1]!.id);
    this.#memory.upsert(cur);
  }

  /** A trade: folded into every series of its symbol whose candles do not contain it yet. */
  onTrade(symbol: string, t: TradeFact): void {
    let ring = this.#recent.get(symbol);
    if (!ring) this.#recent.set(symbol, (ring = []));
    ring.push(t);
    if (ring.length > RING) ring.splice(0, ring.length - RING);
    for (const [interval, ms] of Object.entries(this.#intervals)) {
      const last = this.#memory.last(symbol, interval);
      if (!last) continue;
      const st = this.#st(seriesKey(symbol, interval));
      if (t.id <= st.folded) continue;
      let base = last;
      if (st.closedOpenTime >= last.openTime) {
        // The newest candle is closed: this trade opens the next one, at the previous close.
        const z = (s: string) => zeroLike(s);
        base = {
          ...last,
          openTime: last.openTime + ms,
          closeTime: last.openTime + 2 * ms - 1,
          open: last.close,
          high: last.close,
          low: last.close,
          volume: z(last.volume),
          quoteVolume: z(last.quoteVolume),
          trades: 0,
          takerBuyBase: z(last.takerBuyBase),
          takerBuyQuote: z(last.takerBuyQuote),
        };
      }
      this.#memory.upsert(foldTrade(base, t));
      st.folded = t.id;
      this.folded++;
    }
  }
}
