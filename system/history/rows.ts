// Kline rows as the bytes a response is made of. Every candle is serialised
// once (a WeakMap keyed by the Kline object, which the tiers never mutate),
// so an answer is `[` + rows joined by `,` + `]`, byte for byte what
// JSON.stringify(klines.map(toRow)) gives. Also: the HTTP caching rules of a
// kline answer (ETag, Cache-Control) and exact decimal arithmetic for folding
// trades into the open candle.
import { createHash, hash, type Hash } from 'node:crypto';
import { toRow, type Kline } from './kline.ts';

const bytes = new WeakMap<Kline, Buffer>();

/** The candle's Binance row as JSON. */
export function rowJson(k: Kline): string {
  return JSON.stringify(toRow(k));
}

/** The candle's row as JSON bytes, serialised once per Kline object. */
export function rowBytes(k: Kline): Buffer {
  let b = bytes.get(k);
  if (b === undefined) {
    b = Buffer.from(rowJson(k));
    bytes.set(k, b);
  }
  return b;
}

const COMMA = 0x2c;

/** A JSON array body from rows that are already JSON bytes: one allocation, one copy per row. */
export function rowsBody(rows: readonly Buffer[], open = '[', close = ']'): Buffer {
  let n = open.length + close.length + Math.max(0, rows.length - 1);
  for (const r of rows) n += r.length;
  const out = Buffer.allocUnsafe(n);
  let at = out.write(open, 0, 'latin1');
  for (let i = 0; i < rows.length; i++) {
    if (i > 0) out[at++] = COMMA;
    at += rows[i]!.copy(out, at);
  }
  out.write(close, at, 'latin1');
  return out;
}

/** A strong ETag from the body's bytes: equal bodies give equal tags on every server. */
export function etagOf(body: Buffer): string {
  return `"${hash('sha1', body, 'base64url')}"`;
}

/** The ETag's hash state after `head`, to finish for different tails without hashing the head again. */
export function etagState(head: Buffer): Hash {
  return createHash('sha1').update(head);
}

/** The ETag of head + tail, from the head's state (left untouched). */
export function etagWith(state: Hash, tail: Buffer): string {
  return `"${state.copy().update(tail).digest('base64url')}"`;
}

/** Seconds an answer with the still-open candle may be cached: it changes with the next trade. */
export const OPEN_MAX_AGE_SEC = 1;
/** A closed range never changes: a year, and `immutable` so browsers do not revalidate it. */
export const CLOSED_CACHE_CONTROL = 'public, max-age=31536000, immutable';
export const OPEN_CACHE_CONTROL = `public, max-age=${OPEN_MAX_AGE_SEC}`;
/** A closed candle is final this long after its close time (a late closing message, the archiver's lag). */
export const SETTLE_MS = 5_000;

/**
 * Whether an answer can never change: every candle in it is closed (and settled) and the query's
 * window cannot gain candles — it ends at an endTime whose candle has closed, or it starts at a
 * startTime and is already full. A degraded answer is never final (the missing tier may hold more).
 */
export function isFinal(q: { startTime?: number; endTime?: number; limit: number }, intervalMs: number, rows: number, lastCloseTime: number | undefined, degraded: boolean, now: number): boolean {
  if (degraded) return false;
  const settled = (closeTime: number) => closeTime + SETTLE_MS < now;
  if (lastCloseTime !== undefined && !settled(lastCloseTime)) return false;
  if (q.endTime !== undefined && settled(q.endTime + intervalMs - 1)) return true;
  return q.startTime !== undefined && rows === q.limit && lastCloseTime !== undefined;
}

/** closeTime (index 6) of a row that is JSON, without parsing the whole answer. */
export function rowCloseTime(row: Buffer): number {
  return Number((JSON.parse(row.toString('latin1')) as unknown[])[6]);
}

// ---- exact decimals: "123.4500" as (digits, scale) ----

function parse(s: string): [bigint, number] {
  const neg = s.startsWith('-');
  const t = neg ? s.slice(1) : s;
  const dot = t.indexOf('.');
  const scale = dot < 0 ? 0 : t.length - dot - 1;
  const v = BigInt(dot < 0 ? t : t.slice(0, dot) + t.slice(dot + 1));
  return [neg ? -v : v, scale];
}

function format(v: bigint, scale: number): string {
  const neg = v < 0n;
  let d = (neg ? -v : v).toString();
  if (scale > 0) {
    d = d.padStart(scale + 1, '0');
    d = `${d.slice(0, -scale)}.${d.slice(-scale)}`;
  }
  return neg ? `-${d}` : d;
}

const widen = (v: bigint, from: number, to: number) => v * 10n ** BigInt(to - from);

/** a + b, exact, at the wider of the two scales. */
export function decAdd(a: string, b: string): string {
  const [x, sx] = parse(a);
  const [y, sy] = parse(b);
  const s = Math.max(sx, sy);
  return format(widen(x, sx, s) + widen(y, sy, s), s);
}

/** a × b, exact, at the sum of the scales. */
export function decMul(a: string, b: string): string {
  const [x, sx] = parse(a);
  const [y, sy] = parse(b);
  return format(x * y, sx + sy);
}

/** Sign of a − b. */
export function decCmp(a: string, b: string): number {
  const [x, sx] = parse(a);
  const [y, sy] = parse(b);
  const s = Math.max(sx, sy);
  const d = widen(x, sx, s) - widen(y, sy, s);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}
