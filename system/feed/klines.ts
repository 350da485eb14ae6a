// One symbol's candles, one per kline interval (Binance's 16, in UTC, and
// the +08:00 ones whose boundaries differ from UTC): each trade updates every
// candle; the in-progress candles are published at Binance's cadences (1s
// every klineMs, the others every second klineMs: 1000 / 2000 ms by default);
// at a boundary each candle that ends there is published closed and replaced
// by its successor (opening at the last close). OHLCV equal the trades inside.
import { create } from '@bufbuild/protobuf';
import { EventSchema, type Event } from '../../proto/gen/market_pb.js';
import { formatUnits } from '../common/symbols.ts';
import { BINANCE_KLINE_INTERVALS, KLINE_TZ_OFFSET_MS, KLINE_TZ_SUFFIX, TZ_KLINE_INTERVALS, klineNextOpen, klineOpenTime, type KlineInterval } from '../common/topics.ts';

/** A candle's figures. */
interface Stats {
  open: number; // ticks
  high: number;
  low: number;
  close: number;
  volume: number; // steps
  quote: bigint; // ticks × steps
  takerBase: number;
  takerQuote: bigint;
  count: number;
  firstId: number;
  lastId: number;
}

interface Candle extends Stats {
  interval: KlineInterval;
  offsetMs: number; // the time zone's offset east of UTC
  every: number; // published on every `every`-th emitAll
  next: number; // open time of the next candle
  topic: string;
  subject: string;
  seq: number;
  openTime: number;
}

/** What publishing a candle needs from the simulator. */
export interface KlineEmitContext {
  symbol: string; // upper case
  priceDecimals: number;
  qtyDecimals: number;
  at: number;
  emit: (subject: string, event: Event) => void;
  header: (topic: string, seq: number) => { topic: string; seq: bigint; epoch: bigint; publishTimeUs: bigint };
}

export class SymbolKlines {
  readonly #candles: Candle[];
  /** The 1s candle: the only one a trade touches. */
  readonly #sec: Candle;
  #ticks = 0;

  constructor(topicOf: (stream: string) => { topic: string; subject: string; seq: number }, startTimeMs: number, open: number) {
    const specs = [
      ...BINANCE_KLINE_INTERVALS.map((interval) => ({ interval, offsetMs: 0, stream: `kline_${interval}` })),
      ...TZ_KLINE_INTERVALS.map((interval) => ({ interval, offsetMs: KLINE_TZ_OFFSET_MS, stream: `kline_${interval}${KLINE_TZ_SUFFIX}` })),
    ];
    this.#candles = specs.map(({ interval, offsetMs, stream }) => {
      const openTime = klineOpenTime(interval, startTimeMs, offsetMs);
      return {
        interval,
        offsetMs,
        every: interval === '1s' ? 1 : 2,
        next: klineNextOpen(interval, openTime, offsetMs),
        ...topicOf(stream),
        openTime,
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
    this.#sec = this.#candles[0]!; // BINANCE_KLINE_INTERVALS starts with 1s, in UTC
  }

  /**
   * A trade updates only the current second (the 1s candle); every other
   * candle takes that second in whole at its end (closeDue), and shows it
   * folded in when published in progress. Per trade that is one candle, not
   * 22, which keeps 16 intervals as cheap as the feed's old 6.
   */
  onTrade(id: number, price: number, qty: number, quote: bigint, takerBuys: boolean): void {
    const k = this.#sec;
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

  /** How many candles one symbol keeps (the most one emitAll or closeDue publishes). */
  get size(): number {
    return this.#candles.length;
  }

  /** Publishes the candles in progress that are due at this tick; returns how many. */
  emitAll(ctx: KlineEmitContext): number {
    const tick = this.#ticks++;
    let n = 0;
    for (const k of this.#candles) {
      if (tick % k.every !== 0) continue;
      this.#emit(k, false, ctx, k === this.#sec ? k : fold({ ...k }, this.#sec));
      n++;
    }
    return n;
  }

  /** At a second boundary: the second ends in every candle; each candle that ends here is published closed and its successor started. */
  closeDue(ctx: KlineEmitContext): number {
    const sec = this.#sec;
    // Called on every whole second (the 1s candle's end), never twice for one.
    if (sec.next > ctx.at) return 0;
    for (const k of this.#candles) if (k !== sec) fold(k, sec);
    let n = 0;
    for (const k of this.#candles) {
      if (k.next > ctx.at) continue;
      this.#emit(k, true, ctx, k);
      n++;
      k.openTime = klineOpenTime(k.interval, ctx.at, k.offsetMs);
      k.next = klineNextOpen(k.interval, k.openTime, k.offsetMs);
      k.open = k.high = k.low = k.close;
      k.volume = k.takerBase = k.count = k.firstId = k.lastId = 0;
      k.quote = k.takerQuote = 0n;
    }
    return n;
  }

  /** k: the candle's stream; v: the figures to publish (k itself, or k with the current second folded in). */
  #emit(k: Candle, closed: boolean, ctx: KlineEmitContext, v: Stats): void {
    const pd = ctx.priceDecimals;
    const qd = ctx.qtyDecimals;
    ctx.emit(
      k.subject,
      create(EventSchema, {
        ...ctx.header(k.topic, ++k.seq),
        payload: {
          case: 'kline',
          value: {
            symbol: ctx.symbol,
            interval: k.interval,
            openTime: BigInt(k.openTime),
            closeTime: BigInt(k.next - 1),
            firstTradeId: BigInt(v.firstId),
            lastTradeId: BigInt(v.lastId),
            open: formatUnits(v.open, pd),
            close: formatUnits(v.close, pd),
            high: formatUnits(v.high, pd),
            low: formatUnits(v.low, pd),
            volume: formatUnits(v.volume, qd),
            tradeCount: BigInt(v.count),
            closed,
            quoteVolume: formatUnits(v.quote, pd + qd),
            takerBuyBaseVolume: formatUnits(v.takerBase, qd),
            takerBuyQuoteVolume: formatUnits(v.takerQuote, pd + qd),
          },
        },
      }),
    );
  }
}

/** Adds one candle's trades (a later span) to another; returns the target. */
function fold<T extends Stats>(into: T, k: Stats): T {
  if (k.count === 0) return into;
  if (into.count === 0) {
    into.open = k.open;
    into.high = k.high;
    into.low = k.low;
    into.firstId = k.firstId;
  } else {
    if (k.high > into.high) into.high = k.high;
    if (k.low < into.low) into.low = k.low;
  }
  into.close = k.close;
  into.lastId = k.lastId;
  into.count += k.count;
  into.volume += k.volume;
  into.quote += k.quote;
  into.takerBase += k.takerBase;
  into.takerQuote += k.takerQuote;
  return into;
}
