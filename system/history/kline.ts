// One candle as the history tiers keep it, Binance's intervals, and the
// Binance REST row shape ([openTime, open, high, low, close, volume,
// closeTime, quoteVolume, trades, takerBuyBase, takerBuyQuote, "0"]).
import type { Kline as KlineMsg } from '../../proto/gen/market_pb.js';

export interface Kline {
  /** Upper case, as Binance's REST API spells it. */
  symbol: string;
  interval: string;
  openTime: number;
  closeTime: number;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  quoteVolume: string;
  trades: number;
  takerBuyBase: string;
  takerBuyQuote: string;
}

/** A kline as the SQL-ish stores keep it (SQLite, Cassandra): snake_case columns, integers in the store's own type. */
export interface StoredKlineRow {
  open_time: unknown;
  close_time: unknown;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  quote_volume: string;
  trades: unknown;
  taker_buy_base: string;
  taker_buy_quote: string;
}

/** A stored row → Kline; `toNumber` reads the store's integer type (Cassandra's Long, SQLite's number). */
export function klineFromRow(r: StoredKlineRow, symbol: string, interval: string, toNumber: (v: unknown) => number = Number): Kline {
  return {
    symbol,
    interval,
    openTime: toNumber(r.open_time),
    closeTime: toNumber(r.close_time),
    open: r.open,
    high: r.high,
    low: r.low,
    close: r.close,
    volume: r.volume,
    quoteVolume: r.quote_volume,
    trades: toNumber(r.trades),
    takerBuyBase: r.taker_buy_base,
    takerBuyQuote: r.taker_buy_quote,
  };
}

export type BinanceKlineRow = [number, string, string, string, string, string, number, string, number, string, string, string];

const M = 60_000;
const H = 60 * M;
const D = 24 * H;
/** Binance's kline intervals; 1M is taken as 31 days where a length is needed (bucketing). */
export const BINANCE_INTERVAL_MS: Record<string, number> = {
  '1s': 1000,
  '1m': M,
  '3m': 3 * M,
  '5m': 5 * M,
  '15m': 15 * M,
  '30m': 30 * M,
  '1h': H,
  '2h': 2 * H,
  '4h': 4 * H,
  '6h': 6 * H,
  '8h': 8 * H,
  '12h': 12 * H,
  '1d': D,
  '3d': 3 * D,
  '1w': 7 * D,
  '1M': 31 * D,
};

export function isInterval(s: string): boolean {
  return Object.hasOwn(BINANCE_INTERVAL_MS, s);
}

export function seriesKey(symbol: string, interval: string): string {
  return `${symbol.toUpperCase()}:${interval}`;
}

export function toRow(k: Kline): BinanceKlineRow {
  return [k.openTime, k.open, k.high, k.low, k.close, k.volume, k.closeTime, k.quoteVolume, k.trades, k.takerBuyBase, k.takerBuyQuote, '0'];
}

export function fromRow(symbol: string, interval: string, r: BinanceKlineRow | unknown[]): Kline {
  return {
    symbol: symbol.toUpperCase(),
    interval,
    openTime: Number(r[0]),
    open: String(r[1]),
    high: String(r[2]),
    low: String(r[3]),
    close: String(r[4]),
    volume: String(r[5]),
    closeTime: Number(r[6]),
    quoteVolume: String(r[7]),
    trades: Number(r[8]),
    takerBuyBase: String(r[9]),
    takerBuyQuote: String(r[10]),
  };
}

export function fromMessage(m: KlineMsg): Kline {
  return {
    symbol: m.symbol.toUpperCase(),
    interval: m.interval,
    openTime: Number(m.openTime),
    closeTime: Number(m.closeTime),
    open: m.open,
    high: m.high,
    low: m.low,
    close: m.close,
    volume: m.volume,
    quoteVolume: m.quoteVolume,
    trades: Number(m.tradeCount),
    takerBuyBase: m.takerBuyBaseVolume,
    takerBuyQuote: m.takerBuyQuoteVolume,
  };
}

/** A range query on one series. Bounds are inclusive open times; order picks which end `limit` keeps. */
export interface RangeQuery {
  symbol: string;
  interval: string;
  from: number;
  to: number;
  limit: number;
  order: 'asc' | 'desc';
}

/** One history tier. Results are in the query's order. */
export interface KlineStore {
  readonly name: string;
  put(klines: readonly Kline[]): Promise<void>;
  query(q: RangeQuery): Promise<Kline[]>;
  /** The same answer as Binance rows already serialised as JSON (byte-identical to JSON.stringify(toRow(k))), where the store can skip building Klines. */
  queryRows?(q: RangeQuery): Promise<Buffer[]>;
  /** Symbols the store holds (upper case), where the store can list them cheaply. */
  symbols?(): Promise<string[]>;
  close(): Promise<void>;
}
