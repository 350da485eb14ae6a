// GET /api/v3/klines (and uiKlines, the same answer) over the tiers as
// bytes: the hot shape from prepared answers, other ranges as rows that are
// already JSON (Redis members, Cassandra rows serialised once), final answers
// (closed, settled ranges that cannot gain candles) from a byte-bounded
// cache. Every 200 carries a content ETag and a Cache-Control saying how long
// it may be kept (a year and immutable for a final range, OPEN_MAX_AGE_SEC
// with the open candle); If-None-Match on a matching tag is answered 304.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BINANCE_INTERVAL_MS } from './kline.ts';
import { isBinanceError, parseKlineQuery } from './binance-api.ts';
import { HistoryUnavailableError, type TieredQuery, type TieredReader } from './tiered.ts';
import type { PreparedKlines } from './prepared.ts';
import { CLOSED_CACHE_CONTROL, OPEN_CACHE_CONTROL, etagOf, isFinal, rowCloseTime, rowsBody } from './rows.ts';

export interface KlineHttpAnswer {
  status: number;
  /** The body, or its chunks in order (prepared answers: never copied into one Buffer). */
  body: Buffer | readonly Buffer[];
  headers: Record<string, string>;
}

export interface KlineHttpOptions {
  reader: TieredReader;
  prepared?: PreparedKlines;
  knownSymbol: (symbol: string) => boolean;
  memoryFrom: (symbol: string, interval: string) => number;
  /** Bytes of final answers kept (0: none). */
  finalCacheBytes?: number;
  now?: () => number;
}

const NO_STORE = 'no-store';

/** Whether an If-None-Match header names this ETag (a list, or `*`). */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  if (ifNoneMatch.trim() === '*') return true;
  return ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

export class KlineHttp {
  #o: KlineHttpOptions;
  #now: () => number;
  #final = new Map<string, { body: Buffer; etag: string; tiers: string }>();
  #finalBytes = 0;
  /** Answers by source, for /stats and the benchmark. */
  readonly served = { prepared: 0, finalCache: 0, tiers: 0, notModified: 0, errors: 0 };

  constructor(o: KlineHttpOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** The whole answer to a query string, given the request's If-None-Match. */
  async answer(params: URLSearchParams, ifNoneMatch?: string): Promise<KlineHttpAnswer> {
    const q = parseKlineQuery(params, this.#o.knownSymbol);
    if (isBinanceError(q)) return this.#error(q.status, q.code, q.msg, {});
    const r = await this.#body(q);
    if ('error' in r) return r.error;
    const headers: Record<string, string> = { etag: r.etag, 'cache-control': r.cacheControl, 'x-mp-tiers': r.tiers, ...r.extra };
    if (etagMatches(ifNoneMatch, r.etag)) {
      this.served.notModified++;
      return { status: 304, body: Buffer.alloc(0), headers };
    }
    return { status: 200, body: r.body, headers };
  }

  async #body(q: TieredQuery): Promise<{ body: Buffer | readonly Buffer[]; etag: string; cacheControl: string; tiers: string; extra: Record<string, string> } | { error: KlineHttpAnswer }> {
    const now = this.#now();
    if (q.startTime === undefined && q.endTime === undefined && this.#o.prepared) {
      const p = this.#o.prepared.get(q.symbol, q.interval, q.limit, this.#o.memoryFrom(q.symbol, q.interval), this.#o.reader.hasOlderTiers);
      if (p) {
        this.served.prepared++;
        return { body: p.body, etag: p.etag, cacheControl: OPEN_CACHE_CONTROL, tiers: 'memory', extra: { 'x-mp-cache': 'prepared' } };
      }
    }
    const key = `${q.symbol}:${q.interval}:${q.startTime ?? ''}:${q.endTime ?? ''}:${q.limit}`;
    const hit = this.#final.get(key);
    if (hit) {
      this.#final.delete(key);
      this.#final.set(key, hit);
      this.served.finalCache++;
      return { body: hit.body, etag: hit.etag, cacheControl: CLOSED_CACHE_CONTROL, tiers: hit.tiers, extra: { 'x-mp-cache': 'final' } };
    }
    let r;
    try {
      r = await this.#o.reader.readRows(q);
    } catch (e) {
      if (e instanceof HistoryUnavailableError) return { error: this.#error(503, -1001, e.message, { 'x-mp-degraded': e.tier }) };
      return { error: this.#error(500, -1000, `An unknown error occurred while processing the request: ${e instanceof Error ? e.message : String(e)}`, {}) };
    }
    this.served.tiers++;
    const body = rowsBody(r.rows);
    const etag = etagOf(body);
    const tiers = r.tiers.join(',');
    const lastClose = r.rows.length > 0 ? rowCloseTime(r.rows[r.rows.length - 1]!) : undefined;
    const final = isFinal(q, BINANCE_INTERVAL_MS[q.interval]!, r.rows.length, lastClose, r.degraded.length > 0, now);
    const extra: Record<string, string> = r.degraded.length > 0 ? { 'x-mp-degraded': r.degraded.join(',') } : {};
    if (final) this.#keep(key, body, etag, tiers);
    return { body, etag, cacheControl: final ? CLOSED_CACHE_CONTROL : OPEN_CACHE_CONTROL, tiers, extra };
  }

  #keep(key: string, body: Buffer, etag: string, tiers: string): void {
    const max = this.#o.finalCacheBytes ?? 0;
    if (body.length > max / 4) return;
    this.#final.set(key, { body, etag, tiers });
    this.#finalBytes += body.length;
    for (const [k, v] of this.#final) {
      if (this.#finalBytes <= max) break;
      this.#final.delete(k);
      this.#finalBytes -= v.body.length;
    }
  }

  #error(status: number, code: number, msg: string, extra: Record<string, string>): KlineHttpAnswer {
    this.served.errors++;
    return { status, body: Buffer.from(JSON.stringify({ code, msg })), headers: { 'cache-control': NO_STORE, ...extra } };
  }

  /** Writes an answer for a request (CORS for browsers; the ETag exposed to scripts). */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const a = await this.answer(url.searchParams, req.headers['if-none-match']);
    writeKlineAnswer(res, a);
  }
}

/** The body in one Buffer (tests, the gRPC front end). */
export function bodyBytes(a: { body: Buffer | readonly Buffer[] }): Buffer {
  return Buffer.isBuffer(a.body) ? a.body : Buffer.concat(a.body as Buffer[]);
}

/** An answer on the wire: JSON with its length, CORS, the ETag readable by scripts; chunks corked into one write. */
export function writeKlineAnswer(res: ServerResponse, a: { status: number; body: Buffer | readonly Buffer[]; headers: Record<string, string> }): void {
  const h: Record<string, string> = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'etag, x-mp-tiers, x-mp-degraded, x-mp-server, x-mp-cache', ...a.headers };
  const chunks = Buffer.isBuffer(a.body) ? [a.body] : a.body;
  if (a.status !== 304) {
    h['content-type'] = 'application/json';
    h['content-length'] = String(chunks.reduce((n, c) => n + c.length, 0));
  }
  res.writeHead(a.status, h);
  if (a.status === 304 || chunks.length === 0) {
    res.end();
    return;
  }
  res.cork();
  for (let i = 0; i < chunks.length - 1; i++) res.write(chunks[i]);
  res.end(chunks[chunks.length - 1]);
  res.uncork();
}
