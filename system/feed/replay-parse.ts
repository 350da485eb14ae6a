// Parsers for replayed market data: Binance's public data files
// (data.binance.vision: trades, aggTrades and klines CSV, with or without a
// header row, timestamps in ms or, for spot files from 2025 on, µs) and
// captures of stream frames (.jsonl: a combined-stream frame
// {"stream":…,"data":{…}} or a bare event a line). Each row becomes the
// payload the simulator would publish on the same subject; pure, no I/O.
// A malformed row is an error naming its line; a well-formed row of a kind
// the cluster cannot replay is a skip with a reason, which callers count.
import { basename } from 'node:path';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { EventSchema } from '../../proto/gen/market_pb.js';
import { BINANCE_KLINE_INTERVALS, parseTopic, type KlineInterval } from '../common/topics.ts';

export type CsvKind = 'trades' | 'aggTrades' | 'klines';

/** One event to replay: its original time, and where and what the feed publishes. */
export interface ReplayEvent {
  /** Original event time in ms; undefined when the row carries none (a bookTicker frame): it goes with the previous one. */
  timeMs: number | undefined;
  symbol: string; // lower case
  /** Bus stream name, as in md.<stream>.<symbol>: trade, kline_1m, ticker, miniticker, bookticker. */
  stream: string;
  payload: MessageInitShape<typeof EventSchema>['payload'];
  /** A trade's origin: trades and aggregates of one symbol both land on md.trade, so a capture may replay only one. */
  tradeKind?: 'trade' | 'aggTrade';
}

/** A row that is well formed but not replayed (the reason is counted, never silently dropped). */
export interface ReplaySkip {
  skip: string;
}

export type RowResult = ReplayEvent | ReplaySkip | undefined; // undefined: a header or blank line

/** What the file name says: Binance names its files SYMBOL-trades-…, SYMBOL-aggTrades-…, SYMBOL-1m-…. */
export interface CsvNameInfo {
  symbol?: string; // lower case
  kind?: CsvKind;
  interval?: KlineInterval;
}

const NAME_RE = /^([A-Za-z0-9]{2,20})-(trades|aggTrades|[0-9]+[smhdwM])-/;

export function csvNameInfo(path: string): CsvNameInfo {
  const m = NAME_RE.exec(basename(path));
  if (!m) return {};
  const symbol = m[1]!.toLowerCase();
  if (m[2] === 'trades' || m[2] === 'aggTrades') return { symbol, kind: m[2] };
  if ((BINANCE_KLINE_INTERVALS as readonly string[]).includes(m[2]!)) return { symbol, kind: 'klines', interval: m[2] as KlineInterval };
  return { symbol };
}

/** ms from a timestamp in ms or µs, told apart by magnitude (1e14 ms is the year 5138). */
export function toMs(n: number): number {
  return n >= 1e14 ? Math.floor(n / 1000) : n;
}

const DECIMAL_RE = /^[0-9]+(\.[0-9]+)?$/;
const INT_RE = /^[0-9]+$/;

class RowError extends Error {}

function decimal(v: unknown, what: string): string {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return String(v);
  if (typeof v !== 'string' || !DECIMAL_RE.test(v)) throw new RowError(`${what} is not a decimal number: ${JSON.stringify(v)}`);
  return v;
}

function int(v: unknown, what: string): number {
  const n = typeof v === 'string' && INT_RE.test(v) ? Number(v) : typeof v === 'number' ? v : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw new RowError(`${what} is not a non-negative integer: ${JSON.stringify(v)}`);
  return n;
}

function time(v: unknown, what: string): number {
  return toMs(int(v, what));
}

function bool(v: unknown, what: string): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const l = v.toLowerCase();
    if (l === 'true') return true;
    if (l === 'false') return false;
  }
  throw new RowError(`${what} is not true or false: ${JSON.stringify(v)}`);
}

function symbolOf(v: unknown): string {
  if (typeof v !== 'string') throw new RowError(`symbol is missing or not a string: ${JSON.stringify(v)}`);
  const parsed = parseTopic(`${v.toLowerCase()}@trade`);
  if (typeof parsed === 'string') throw new RowError(`invalid symbol ${JSON.stringify(v)}`);
  return parsed.symbol;
}

/** Prefixes a row's error with where it is: `FILE:LINE: …`. */
export function rowError(path: string, line: number, err: unknown): Error {
  return new Error(`${path}:${line}: ${err instanceof Error ? err.message : String(err)}`);
}

/** The columns of each CSV kind (Binance's spot layout; futures trades lack the last column, futures aggTrades too). */
const CSV_COLUMNS: Record<CsvKind, { min: number; max: number }> = {
  trades: { min: 6, max: 7 }, // id, price, qty, quote_qty, time, is_buyer_maker[, is_best_match]
  aggTrades: { min: 7, max: 8 }, // agg_trade_id, price, quantity, first_trade_id, last_trade_id, transact_time, is_buyer_maker[, is_best_match]
  klines: { min: 11, max: 12 }, // open_time, open, high, low, close, volume, close_time, quote_volume, count, taker_buy_volume, taker_buy_quote_volume[, ignore]
};

/** The kind a header row names, or from a data row's column count (8: aggTrades, 12: klines, 6-7: trades). */
export function csvKindOf(fields: string[], header: boolean): CsvKind | undefined {
  if (header) {
    const first = fields[0]!.trim().toLowerCase().replace(/[^a-z]/g, '');
    if (first.startsWith('agg')) return 'aggTrades';
    if (first.startsWith('open')) return 'klines';
    if (first === 'id' || first.startsWith('trade')) return 'trades';
    return undefined;
  }
  if (fields.length === 8) return 'aggTrades';
  if (fields.length === 11 || fields.length === 12) return 'klines';
  if (fields.length === 6 || fields.length === 7) return 'trades';
  return undefined;
}

export interface CsvContext {
  kind: CsvKind;
  symbol: string; // lower case
  interval?: KlineInterval; // klines only
}

/** A header line: its first field is not a number. */
export function isCsvHeader(line: string): boolean {
  const first = line.split(',', 1)[0]!.trim();
  return first !== '' && !INT_RE.test(first);
}

/** One CSV data row (not a header); throws a message without the location (the caller adds it). */
export function parseCsvRow(line: string, ctx: CsvContext): ReplayEvent {
  const f = line.split(',').map((x) => x.trim());
  const cols = CSV_COLUMNS[ctx.kind];
  if (f.length < cols.min || f.length > cols.max) throw new RowError(`expected ${cols.min === cols.max ? cols.min : `${cols.min}-${cols.max}`} columns (${ctx.kind}), found ${f.length}`);
  const symbol = ctx.symbol;
  const upper = symbol.toUpperCase();
  switch (ctx.kind) {
    case 'trades': {
      const t = time(f[4], 'time');
      decimal(f[3], 'quote_qty');
      if (f[6] !== undefined) bool(f[6], 'is_best_match');
      return {
        timeMs: t, symbol, stream: 'trade',
        payload: { case: 'trade', value: tradeValue(upper, int(f[0], 'id'), decimal(f[1], 'price'), decimal(f[2], 'qty'), t, bool(f[5], 'is_buyer_maker')) },
      };
    }
    case 'aggTrades': {
      // An aggregate is published as one trade with the aggregate's id and its first and last trade ids: the cluster derives @aggTrade from @trade.
      const t = time(f[5], 'transact_time');
      if (f[7] !== undefined) bool(f[7], 'is_best_match');
      const ids = { firstTradeId: BigInt(int(f[3], 'first_trade_id')), lastTradeId: BigInt(int(f[4], 'last_trade_id')) };
      return {
        timeMs: t, symbol, stream: 'trade',
        payload: { case: 'trade', value: { ...tradeValue(upper, int(f[0], 'agg_trade_id'), decimal(f[1], 'price'), decimal(f[2], 'quantity'), t, bool(f[6], 'is_buyer_maker')), ...ids } },
      };
    }
    case 'klines': {
      if (!ctx.interval) throw new RowError('a klines file needs its interval in the file name (SYMBOL-1m-….csv)');
      const closeTime = time(f[6], 'close_time');
      const value = {
        symbol: upper, interval: ctx.interval, openTime: BigInt(time(f[0], 'open_time')), closeTime: BigInt(closeTime),
        firstTradeId: 0n, lastTradeId: 0n,
        open: decimal(f[1], 'open'), high: decimal(f[2], 'high'), low: decimal(f[3], 'low'), close: decimal(f[4], 'close'),
        volume: decimal(f[5], 'volume'), quoteVolume: decimal(f[7], 'quote_volume'), tradeCount: BigInt(int(f[8], 'count')),
        takerBuyBaseVolume: decimal(f[9], 'taker_buy_volume'), takerBuyQuoteVolume: decimal(f[10], 'taker_buy_quote_volume'),
        closed: true,
      };
      // A closed candle is published when it closes.
      return { timeMs: closeTime, symbol, stream: `kline_${ctx.interval}`, payload: { case: 'kline', value } };
    }
  }
}

function tradeValue(symbol: string, id: number, price: string, qty: string, t: number, buyerIsMaker: boolean) {
  return { symbol, tradeId: BigInt(id), price, qty, tradeTime: BigInt(t), buyerIsMaker };
}

const obj = (v: unknown): Record<string, unknown> | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);

/** One line of a .jsonl capture; undefined for a blank line. Throws (without the location) on a malformed one. */
export function parseJsonlLine(line: string): RowResult {
  const text = line.trim();
  if (text === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new RowError(`not JSON: ${(err as Error).message}`);
  }
  const frame = obj(parsed);
  if (!frame) throw new RowError('expected a JSON object (a stream frame or an event)');
  // A combined-stream frame carries its event in `data`.
  const data = 'data' in frame && typeof frame.stream === 'string' ? obj(frame.data) : frame;
  if (!data) throw new RowError('the frame\'s "data" is not an object');
  return jsonEvent(data);
}

function jsonEvent(d: Record<string, unknown>): ReplayEvent | ReplaySkip {
  const e = d.e;
  if (e === undefined) {
    // Binance's bookTicker has no event type: it is told by u, b and a.
    if ('u' in d && 'b' in d && 'a' in d && 's' in d) {
      const symbol = symbolOf(d.s);
      const value = {
        symbol: symbol.toUpperCase(), updateId: BigInt(int(d.u, 'u')),
        bidPrice: decimal(d.b, 'b'), bidQty: decimal(d.B, 'B'), askPrice: decimal(d.a, 'a'), askQty: decimal(d.A, 'A'),
      };
      return { timeMs: undefined, symbol, stream: 'bookticker', payload: { case: 'bookTicker', value } };
    }
    if ('lastUpdateId' in d) return { skip: 'partial depth (a book without its diff stream cannot be replayed)' };
    if ('result' in d || 'id' in d) return { skip: 'a request\'s response, not a market event' };
    throw new RowError('an event without "e" (event type) that is not a bookTicker');
  }
  if (typeof e !== 'string') throw new RowError(`"e" is not a string: ${JSON.stringify(e)}`);
  switch (e) {
    case 'trade':
    case 'aggTrade': {
      const symbol = symbolOf(d.s);
      const t = time(d.T, 'T');
      const id = int(e === 'trade' ? d.t : d.a, e === 'trade' ? 't' : 'a');
      const ids = e === 'aggTrade' ? { firstTradeId: BigInt(int(d.f, 'f')), lastTradeId: BigInt(int(d.l, 'l')) } : {};
      const value = { ...tradeValue(symbol.toUpperCase(), id, decimal(d.p, 'p'), decimal(d.q, 'q'), t, bool(d.m, 'm')), ...ids };
      return { timeMs: t, symbol, stream: 'trade', tradeKind: e, payload: { case: 'trade', value } };
    }
    case 'kline': {
      const symbol = symbolOf(d.s);
      const k = obj(d.k);
      if (!k) throw new RowError('a kline event without its "k" object');
      const interval = k.i;
      if (typeof interval !== 'string' || !(BINANCE_KLINE_INTERVALS as readonly string[]).includes(interval)) throw new RowError(`unknown kline interval ${JSON.stringify(interval)}`);
      const value = {
        symbol: symbol.toUpperCase(), interval, openTime: BigInt(time(k.t, 'k.t')), closeTime: BigInt(time(k.T, 'k.T')),
        firstTradeId: BigInt(signedId(k.f)), lastTradeId: BigInt(signedId(k.L)),
        open: decimal(k.o, 'k.o'), close: decimal(k.c, 'k.c'), high: decimal(k.h, 'k.h'), low: decimal(k.l, 'k.l'),
        volume: decimal(k.v, 'k.v'), tradeCount: BigInt(int(k.n, 'k.n')), closed: bool(k.x, 'k.x'),
        quoteVolume: decimal(k.q, 'k.q'), takerBuyBaseVolume: decimal(k.V, 'k.V'), takerBuyQuoteVolume: decimal(k.Q, 'k.Q'),
      };
      return { timeMs: time(d.E, 'E'), symbol, stream: `kline_${interval}`, payload: { case: 'kline', value } };
    }
    case '24hrTicker':
    case '24hrMiniTicker': {
      const symbol = symbolOf(d.s);
      const full = e === '24hrTicker';
      const opt = (k: string) => (full ? decimal(d[k], k) : '0');
      const value = {
        symbol: symbol.toUpperCase(),
        priceChange: full ? signedDecimal(d.p, 'p') : '0',
        priceChangePercent: full ? signedDecimal(d.P, 'P') : '0',
        weightedAvgPrice: opt('w'), lastPrice: decimal(d.c, 'c'), lastQty: opt('Q'),
        bestBid: opt('b'), bestBidQty: opt('B'), bestAsk: opt('a'), bestAskQty: opt('A'),
        openPrice: decimal(d.o, 'o'), highPrice: decimal(d.h, 'h'), lowPrice: decimal(d.l, 'l'),
        volume: decimal(d.v, 'v'), quoteVolume: decimal(d.q, 'q'),
        openTime: BigInt(full ? time(d.O, 'O') : 0), closeTime: BigInt(full ? time(d.C, 'C') : 0),
        firstTradeId: BigInt(full ? Math.max(0, signedId(d.F)) : 0), lastTradeId: BigInt(full ? Math.max(0, signedId(d.L)) : 0),
        tradeCount: BigInt(full ? int(d.n, 'n') : 0),
      };
      return { timeMs: time(d.E, 'E'), symbol, stream: full ? 'ticker' : 'miniticker', payload: { case: 'ticker', value } };
    }
    case 'depthUpdate':
      return { skip: 'diff depth (needs the book snapshot the capture does not have)' };
    default:
      return { skip: `event type "${e}" is not replayed` };
  }
}

/** Binance sends -1 for "no trade" in some id fields. */
function signedId(v: unknown): number {
  if (v === -1 || v === '-1') return 0;
  return int(v, 'trade id');
}

function signedDecimal(v: unknown, what: string): string {
  if (typeof v === 'string' && v.startsWith('-')) return `-${decimal(v.slice(1), what)}`;
  return decimal(v, what);
}

export function isSkip(r: RowResult): r is ReplaySkip {
  return r !== undefined && 'skip' in r;
}
