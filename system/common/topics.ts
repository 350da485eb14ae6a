// Topic names follow Binance stream names (`btcusdt@ticker`, `btcusdt@kline_1m`,
// `btcusdt@depth`, `btcusdt@trade`); on the bus they travel on subjects
// `md.<stream>.<symbol>`. Depth snapshots ride a subject of their own
// (`md.depthsnap.<symbol>`) that no client can subscribe to.

export const KLINE_INTERVALS = ['1m', '5m', '15m', '1h', '4h', '1d'] as const;
export type KlineInterval = (typeof KLINE_INTERVALS)[number];

export const INTERVAL_MS: Record<KlineInterval, number> = {
  '1m': 60_000,
  '5m': 300_000,
  '15m': 900_000,
  '1h': 3_600_000,
  '4h': 14_400_000,
  '1d': 86_400_000,
};

export type StreamKind = 'ticker' | 'kline' | 'depth' | 'trade';

export interface ParsedTopic {
  topic: string; // normalised, lower case
  symbol: string; // lower case
  stream: string; // e.g. "ticker", "kline_1m"
  kind: StreamKind;
  interval?: KlineInterval;
}

const SYMBOL_RE = /^[a-z0-9]{2,20}$/;

/** Parses a client topic; returns an error string for anything malformed. */
export function parseTopic(raw: unknown): ParsedTopic | string {
  if (typeof raw !== 'string') return 'topic must be a string';
  const topic = raw.toLowerCase();
  const at = topic.indexOf('@');
  if (at <= 0 || at !== topic.lastIndexOf('@')) return `invalid topic "${raw}": expected <symbol>@<stream>`;
  const symbol = topic.slice(0, at);
  const stream = topic.slice(at + 1);
  if (!SYMBOL_RE.test(symbol)) return `invalid symbol in topic "${raw}"`;
  if (stream === 'ticker' || stream === 'depth' || stream === 'trade') {
    return { topic, symbol, stream, kind: stream };
  }
  if (stream.startsWith('kline_')) {
    const interval = stream.slice(6) as KlineInterval;
    if (!(KLINE_INTERVALS as readonly string[]).includes(interval)) return `invalid kline interval in topic "${raw}"`;
    return { topic, symbol, stream, kind: 'kline', interval };
  }
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

/** Topics whose latest value is a complete state, so a newer one may replace an older one unsent. */
export function isConflatable(topic: string): boolean {
  return topic.endsWith('@ticker') || topic.includes('@kline_');
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

/** Every client topic the feed publishes for one symbol. */
export function symbolTopics(symbol: string): string[] {
  return [
    `${symbol}@ticker`,
    `${symbol}@trade`,
    `${symbol}@depth`,
    ...KLINE_INTERVALS.map((i) => `${symbol}@kline_${i}`),
  ];
}
