// Topic names follow Binance stream names (`btcusdt@ticker`, `btcusdt@kline_1m`,
// `btcusdt@depth`, `btcusdt@depth@100ms`, `btcusdt@trade`); on the bus they
// travel on subjects `md.<stream>.<symbol>` (`md.depth@100ms.btcusdt`). Depth
// snapshots ride a subject of their own (`md.depthsnap.<symbol>`) that no
// client can subscribe to. Some topics are never on the bus: a push-server
// derives them from another topic only while a gateway is bound to them
// (`derivedSource`), so nobody pays for them unless someone subscribes.

/** Every kline interval Binance has, in its spelling (`1M` is a month, `1m` a minute). */
export const BINANCE_KLINE_INTERVALS = ['1s', '1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w', '1M'] as const;
export type KlineInterval = (typeof BINANCE_KLINE_INTERVALS)[number];
/** The intervals the history tier archives and serves (system/history subscribes to these). */
export const KLINE_INTERVALS = ['1m', '5m', '15m', '1h', '4h', '1d'] as const satisfies readonly KlineInterval[];

const H = 3_600_000;
const D = 24 * H;
/** Fixed lengths; 1M is a calendar month (see klineOpenTime). */
export const INTERVAL_MS: Record<KlineInterval, number> = {
  '1s': 1000, '1m': 60_000, '3m': 180_000, '5m': 300_000, '15m': 900_000, '30m': 1_800_000,
  '1h': H, '2h': 2 * H, '4h': 4 * H, '6h': 6 * H, '8h': 8 * H, '12h': 12 * H,
  '1d': D, '3d': 3 * D, '1w': 7 * D, '1M': 31 * D,
};

/** Binance's one time-zone variant of the kline streams (`<sym>@kline_<i>@+08:00`). */
export const KLINE_TZ_SUFFIX = '@+08:00';
export const KLINE_TZ_OFFSET_MS = 8 * H;
// 1970-01-05 was a Monday: Binance's weeks open on Monday 00:00.
const MONDAY_MS = 4 * D;

/** Open time (ms, UTC) of the candle of `interval` holding instant t, in a zone offsetMs east of UTC. */
export function klineOpenTime(interval: KlineInterval, t: number, offsetMs = 0): number {
  const local = t + offsetMs;
  if (interval === '1M') {
    const d = new Date(local);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) - offsetMs;
  }
  const ms = INTERVAL_MS[interval];
  const anchor = interval === '1w' ? MONDAY_MS : 0;
  return Math.floor((local - anchor) / ms) * ms + anchor - offsetMs;
}

/** Open time of the candle after the one opening at openTime. */
export function klineNextOpen(interval: KlineInterval, openTime: number, offsetMs = 0): number {
  if (interval === '1M') {
    const d = new Date(openTime + offsetMs);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) - offsetMs;
  }
  return openTime + INTERVAL_MS[interval];
}

/** Intervals whose +08:00 candles are the UTC ones (8 h is a whole number of them): those are derived, not published. */
export function tzKlineSameAsUtc(interval: KlineInterval): boolean {
  return interval !== '1M' && interval !== '1w' && KLINE_TZ_OFFSET_MS % INTERVAL_MS[interval] === 0;
}

/** The +08:00 intervals the feed publishes itself: the ones whose candles differ from UTC (6h 12h 1d 3d 1w 1M). */
export const TZ_KLINE_INTERVALS = BINANCE_KLINE_INTERVALS.filter((i) => !tzKlineSameAsUtc(i));

export type StreamKind = 'ticker' | 'kline' | 'depth' | 'trade';

export interface ParsedTopic {
  topic: string; // normalised: lower case, except a month interval's `1M`
  symbol: string; // lower case
  stream: string; // e.g. "ticker", "kline_1m", "kline_1d@+08:00", "depth10@100ms"
  /** How a new subscriber starts: partial depth is a whole state, like a ticker ('ticker'). */
  kind: StreamKind;
  interval?: KlineInterval;
  /** The +08:00 kline variant. */
  tz?: boolean;
  /** Diff-depth cadence: 1000 (`@depth`) or 100 (`@depth@100ms`). */
  depthMs?: DepthCadenceMs;
  /** Partial book depth (`@depth5|10|20[@100ms]`): the levels per side. */
  levels?: PartialDepthLevels;
  /** The topic a push-server derives this one from, when it is not on the bus (`*@ticker`: every symbol's). */
  source?: string;
  /** An all-market stream (`!ticker@arr`): no symbol to check. */
  allMarket?: boolean;
  /** Rolling-window tickers (`@ticker_1h`, `!ticker_4h@arr`): the window. */
  window?: RollingWindowSize;
}

/** Binance's rolling-window ticker streams: `<sym>@ticker_<w>` and `!ticker_<w>@arr`. */
export const ROLLING_WINDOW_SIZES = ['1h', '4h', '1d'] as const;
export type RollingWindowSize = (typeof ROLLING_WINDOW_SIZES)[number];
const ROLLING_RE = /^ticker_(1h|4h|1d)$/;
const ROLLING_ARR_RE = /^!ticker_(1h|4h|1d)@arr$/;

/** The source of the all-market ticker arrays: every symbol's `@ticker` events. */
export const ALL_TICKERS_SOURCE = '*@ticker';

/** Binance's diff-depth cadences: `<sym>@depth` every second, `<sym>@depth@100ms`. */
export const DEPTH_STREAMS = { depth: 1000, 'depth@100ms': 100 } as const;
export type DepthCadenceMs = (typeof DEPTH_STREAMS)[keyof typeof DEPTH_STREAMS];
export const PARTIAL_DEPTH_LEVELS = [5, 10, 20] as const;
export type PartialDepthLevels = (typeof PARTIAL_DEPTH_LEVELS)[number];
/** The depth topic REST /api/v3/depth reads its book from (the freshest cadence). */
export const depthBookTopic = (symbol: string) => `${symbol}@depth@100ms`;

const SYMBOL_RE = /^[a-z0-9]{2,20}$/;
const PARTIAL_DEPTH_RE = /^depth(5|10|20)(@100ms|@1000ms)?$/;

// Binance streams this cluster does not carry: refused with a clear reason, never accepted silently.
const NOT_PROVIDED: Record<string, string> = {
  '!bookticker': 'the all-market book ticker is not provided (Binance retired it too): subscribe to <symbol>@bookTicker',
};
const NOT_PROVIDED_STREAMS: Record<string, string> = {
  referenceprice: 'the @referencePrice stream is not provided',
  blocktrade: 'the @blockTrade stream is not provided',
};

/** Parses a client topic; returns an error string for anything malformed or not provided. */
export function parseTopic(raw: unknown): ParsedTopic | string {
  if (typeof raw !== 'string') return 'topic must be a string';
  const lower = raw.toLowerCase();
  // All-market tickers: every symbol's changed ticker, an array a second (no symbol of their own).
  if (lower === '!ticker@arr' || lower === '!miniticker@arr') return { topic: lower, symbol: '', stream: lower.slice(1), kind: 'ticker', allMarket: true, source: ALL_TICKERS_SOURCE };
  // All-market rolling windows: every symbol's changed window, an array a second, paced by every `@ticker`.
  const arr = ROLLING_ARR_RE.exec(lower);
  if (arr) return { topic: lower, symbol: '', stream: lower.slice(1), kind: 'ticker', allMarket: true, source: ALL_TICKERS_SOURCE, window: arr[1] as RollingWindowSize };
  if (lower.startsWith('!')) return `stream "${raw}" is not available: ${NOT_PROVIDED[lower] ?? 'unknown all-market stream'}`;
  const at = lower.indexOf('@');
  if (at <= 0) return `invalid topic "${raw}": expected <symbol>@<stream>`;
  const symbol = lower.slice(0, at);
  const stream = lower.slice(at + 1);
  if (!SYMBOL_RE.test(symbol)) return `invalid symbol in topic "${raw}"`;
  const topic = lower;
  if (stream === 'ticker' || stream === 'trade') return { topic, symbol, stream, kind: stream };
  // Binance's `@miniTicker`: the same 24 h statistics without the book fields.
  if (stream === 'miniticker') return { topic, symbol, stream, kind: 'ticker' };
  // `@ticker_<w>`: the symbol's rolling window, derived from its trades at its `@ticker`'s cadence.
  const rolling = ROLLING_RE.exec(stream);
  if (rolling) return { topic, symbol, stream, kind: 'ticker', source: `${symbol}@ticker`, window: rolling[1] as RollingWindowSize };
  // `@bookTicker`: a state (the book's top), kept and replayed like a ticker.
  if (stream === 'bookticker') return { topic, symbol, stream, kind: 'ticker' };
  // `@aggTrade`: each simulated trade is one taker order filling one level, so each aggregate is one trade.
  if (stream === 'aggtrade') return { topic, symbol, stream, kind: 'trade', source: `${symbol}@trade` };
  // `@avgPrice`: the 5-minute volume-weighted price, derived from the trades.
  if (stream === 'avgprice') return { topic, symbol, stream, kind: 'ticker', source: `${symbol}@trade` };
  if (stream === 'depth' || stream === 'depth@100ms') return { topic, symbol, stream, kind: 'depth', depthMs: DEPTH_STREAMS[stream] };
  // `@depth@1000ms` is the 1 s stream spelled out (as @binance/connector does): it is `@depth`.
  if (stream === 'depth@1000ms') return { topic: `${symbol}@depth`, symbol, stream: 'depth', kind: 'depth', depthMs: 1000 };
  const partial = PARTIAL_DEPTH_RE.exec(stream);
  if (partial) {
    const levels = Number(partial[1]) as PartialDepthLevels;
    const fast = partial[2] === '@100ms';
    const name = `depth${levels}${fast ? '@100ms' : ''}`;
    return { topic: `${symbol}@${name}`, symbol, stream: name, kind: 'ticker', levels, depthMs: fast ? 100 : 1000, source: fast ? `${symbol}@depth@100ms` : `${symbol}@depth` };
  }
  if (stream.startsWith('kline_')) {
    // The interval keeps its case: `1M` (month) and `1m` (minute) are different streams.
    const rawStream = raw.slice(at + 1);
    const tz = rawStream.endsWith(KLINE_TZ_SUFFIX);
    const interval = rawStream.slice(6, tz ? -KLINE_TZ_SUFFIX.length : undefined) as KlineInterval;
    if (!(BINANCE_KLINE_INTERVALS as readonly string[]).includes(interval)) {
      if (rawStream.includes('@') && !tz) return `invalid time zone in topic "${raw}": Binance's only kline time zone is ${KLINE_TZ_SUFFIX}`;
      return `invalid kline interval in topic "${raw}": one of ${BINANCE_KLINE_INTERVALS.join(' ')}`;
    }
    const name = `kline_${interval}${tz ? KLINE_TZ_SUFFIX : ''}`;
    const t: ParsedTopic = { topic: `${symbol}@${name}`, symbol, stream: name, kind: 'kline', interval };
    if (tz) {
      t.tz = true;
      if (tzKlineSameAsUtc(interval)) t.source = `${symbol}@kline_${interval}`;
    }
    return t;
  }
  const why = NOT_PROVIDED_STREAMS[stream];
  if (why) return `stream "${raw}" is not available: ${why}`;
  return `unknown stream "${stream}" in topic "${raw}"`;
}

export function topicSubject(t: ParsedTopic): string {
  return `md.${t.stream}.${t.symbol}`;
}

export function depthSnapshotSubject(symbol: string): string {
  return `md.depthsnap.${symbol}`;
}

/** `md.kline_1m.btcusdt` → `btcusdt@kline_1m`; undefined for non-market subjects. */
export function subjectTopic(subject: string): string | undefined {
  const a = subject.indexOf('.');
  const b = subject.lastIndexOf('.');
  if (a < 0 || b <= a || subject.slice(0, a) !== 'md') return undefined;
  return `${subject.slice(b + 1)}@${subject.slice(a + 1, b)}`;
}

const PARTIAL_DEPTH_TOPIC_RE = /@depth(5|10|20)(@|$)/;

/** Topics whose latest value is a complete state, so a newer one may replace an older one unsent. */
export function isConflatable(topic: string): boolean {
  return topic.endsWith('@ticker') || /@ticker_(1h|4h|1d)$/.test(topic) || topic.endsWith('@miniticker') || topic.endsWith('@bookticker') || topic.endsWith('@avgprice') || topic.includes('@kline_') || PARTIAL_DEPTH_TOPIC_RE.test(topic);
}

// Binance spells a few stream types in camel case; our topics are all lower case (but a month's `1M`).
const BINANCE_SPELLING: Record<string, string> = { aggtrade: 'aggTrade', miniticker: 'miniTicker', bookticker: 'bookTicker', avgprice: 'avgPrice' };
const CAMEL_STREAM_RE = /^(!|[^@]+@)(aggtrade|miniticker|bookticker|avgprice)(?=@|$)/;

/**
 * A topic's name as Binance writes it in a combined stream's `stream` field and
 * in LIST_SUBSCRIPTIONS: the symbol lower case, the stream type as its docs spell
 * it (`btcusdt@aggTrade`, `!miniTicker@arr`, `btcusdt@kline_1M`), whatever case
 * the client subscribed in. Any other name (a listenKey, `orders`) is returned as is.
 */
export function binanceStreamName(topic: string): string {
  const m = CAMEL_STREAM_RE.exec(topic);
  if (!m) return topic;
  return `${m[1]}${BINANCE_SPELLING[m[2]!]}${topic.slice(m[0].length)}`;
}

/** The topic a Binance stream name denotes, without validating it: lower case, except a kline interval (`1M`). */
export function topicOfStreamName(name: string): string {
  const k = name.indexOf('@kline_');
  return k < 0 ? name.toLowerCase() : name.slice(0, k).toLowerCase() + name.slice(k);
}

export const REAL_SYMBOLS = [
  'btcusdt', 'ethusdt', 'bnbusdt', 'solusdt', 'xrpusdt', 'dogeusdt', 'adausdt', 'trxusdt',
  'avaxusdt', 'linkusdt', 'dotusdt', 'tonusdt', 'ltcusdt', 'bchusdt', 'nearusdt', 'uniusdt',
  'aptusdt', 'icpusdt', 'etcusdt', 'filusdt', 'atomusdt', 'arbusdt', 'opusdt', 'suiusdt',
  'xlmusdt', 'hbarusdt', 'injusdt', 'aaveusdt', 'pepeusdt', 'shibusdt',
] as const;

/** The default symbol set: real pairs first, then synthetic ones (`sym031usdt`…) up to n. */
export function defaultSymbols(n: number): string[] {
  const out: string[] = REAL_SYMBOLS.slice(0, n);
  for (let i = out.length + 1; out.length < n; i++) out.push(`sym${String(i).padStart(3, '0')}usdt`);
  return out;
}

/** Every client topic the feed publishes for one symbol (derived ones are not on the bus). */
export function symbolTopics(symbol: string): string[] {
  return [
    `${symbol}@ticker`,
    `${symbol}@miniticker`,
    `${symbol}@bookticker`,
    `${symbol}@trade`,
    `${symbol}@depth`,
    `${symbol}@depth@100ms`,
    ...BINANCE_KLINE_INTERVALS.map((i) => `${symbol}@kline_${i}`),
    ...TZ_KLINE_INTERVALS.map((i) => `${symbol}@kline_${i}${KLINE_TZ_SUFFIX}`),
  ];
}
