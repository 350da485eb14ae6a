// Binance REST parameters, limits and error bodies: GET /api/v3/klines and
// GET /api/v3/depth, and the `{"code":…,"msg":…}` error shape every /api/v3
// route answers with.
import type { ServerResponse } from 'node:http';
import { isInterval, toRow, type BinanceKlineRow } from './kline.ts';
import { HistoryUnavailableError, type TieredQuery, type TieredResult } from './tiered.ts';

export const DEFAULT_LIMIT = 500;
export const MAX_LIMIT = 1000;

export interface BinanceError {
  status: number;
  code: number;
  msg: string;
}

const err = (status: number, code: number, msg: string): BinanceError => ({ status, code, msg });
export const binanceError = err;

/** Sends a Binance error body (`{code, msg}`) with its HTTP status. */
export function sendBinanceError(res: ServerResponse, e: BinanceError, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ code: e.code, msg: e.msg });
  res.writeHead(e.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

const SYMBOL_PARAM_RE = /^[A-Za-z0-9]{2,20}$/;
const missing = (name: string) => err(400, -1102, `Mandatory parameter '${name}' was not sent, was empty/null, or malformed.`);
const illegalSymbol = () => err(400, -1100, "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.");

/** `symbol=X` or `symbols=["X","Y"]` (Binance's JSON-array form); undefined = all; an error for a malformed or unknown one. */
export function selectSymbols(params: URLSearchParams, known: { has(symbol: string): boolean }): string[] | undefined | BinanceError {
  const one = params.get('symbol');
  const many = params.get('symbols');
  if (one !== null && many !== null) return err(400, -1101, "Parameter 'symbol' and 'symbols' cannot be sent together.");
  let list: unknown;
  if (one !== null) list = [one];
  else if (many !== null) {
    try {
      list = JSON.parse(many);
    } catch {
      return err(400, -1100, "Illegal characters found in parameter 'symbols'; legal range is '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\"){0,}){0,1}\\]$'.");
    }
    if (!Array.isArray(list) || list.length === 0) return err(400, -1102, "Mandatory parameter 'symbols' was not sent, was empty/null, or malformed.");
  } else return undefined;
  const out: string[] = [];
  for (const s of list as unknown[]) {
    if (typeof s !== 'string' || !/^[A-Za-z0-9]{2,20}$/.test(s)) return err(400, -1100, "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.");
    if (!known.has(s.toLowerCase())) return err(400, -1121, 'Invalid symbol.');
    out.push(s.toLowerCase());
  }
  return out;
}

export const DEPTH_DEFAULT_LIMIT = 100;
export const DEPTH_MAX_LIMIT = 5000;

/** GET /api/v3/depth?symbol=&limit= (limit 1…5000, default 100; more is clamped to 5000 as Binance does). */
export function parseDepthQuery(params: URLSearchParams, knownSymbol: (s: string) => boolean): { symbol: string; limit: number } | BinanceError {
  const symbol = params.get('symbol');
  if (symbol === null || symbol === '') return missing('symbol');
  if (!SYMBOL_PARAM_RE.test(symbol)) return illegalSymbol();
  const raw = params.get('limit');
  let limit = DEPTH_DEFAULT_LIMIT;
  if (raw !== null && raw !== '') {
    if (!/^\d{1,20}$/.test(raw) || Number(raw) < 1) return err(400, -1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.");
    limit = Math.min(DEPTH_MAX_LIMIT, Number(raw));
  }
  const upper = symbol.toUpperCase();
  if (!knownSymbol(upper)) return err(400, -1121, 'Invalid symbol.');
  return { symbol: upper, limit };
}

/** Parses and checks the query string; `knownSymbol` decides -1121. */
export function parseKlineQuery(params: URLSearchParams, knownSymbol: (s: string) => boolean): TieredQuery | BinanceError {
  const symbol = params.get('symbol');
  const interval = params.get('interval');
  if (symbol === null || symbol === '') return err(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.");
  if (interval === null || interval === '') return err(400, -1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.");
  if (!/^[A-Za-z0-9]{2,20}$/.test(symbol)) {
    return err(400, -1100, "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.");
  }
  if (!isInterval(interval)) return err(400, -1120, 'Invalid interval.');
  const int = (name: string): number | undefined | BinanceError => {
    const v = params.get(name);
    if (v === null || v === '') return undefined;
    if (!/^-?\d+$/.test(v)) return err(400, -1100, `Illegal characters found in parameter '${name}'; legal range is '^[0-9]{1,20}$'.`);
    const n = Number(v);
    if (!Number.isSafeInteger(n)) return err(400, -1100, `Illegal characters found in parameter '${name}'; legal range is '^[0-9]{1,20}$'.`);
    return n;
  };
  const startTime = int('startTime');
  const endTime = int('endTime');
  const limitRaw = int('limit');
  for (const v of [startTime, endTime, limitRaw]) if (typeof v === 'object') return v;
  let limit = (limitRaw as number | undefined) ?? DEFAULT_LIMIT;
  if (limit <= 0) return err(400, -1100, "Illegal characters found in parameter 'limit'; legal range is '1-1000'.");
  if (limit > MAX_LIMIT) limit = MAX_LIMIT; // Binance clamps rather than rejects
  const st = startTime as number | undefined;
  const et = endTime as number | undefined;
  if (st !== undefined && et !== undefined && st > et) return err(400, -1128, 'Combination of optional parameters invalid. Recommendation: startTime must be less than endTime.');
  const upper = symbol.toUpperCase();
  if (!knownSymbol(upper)) return err(400, -1121, 'Invalid symbol.');
  return { symbol: upper, interval, startTime: st, endTime: et, limit };
}

export function isBinanceError(x: unknown): x is BinanceError {
  return typeof x === 'object' && x !== null && 'code' in x && 'msg' in x;
}

export interface KlineResponse {
  status: number;
  body: BinanceKlineRow[] | { code: number; msg: string };
  headers: Record<string, string>;
}

/** Runs a parsed query and shapes the answer (rows, or a Binance error) with the tiers header. */
export async function answerKlines(q: TieredQuery, read: (q: TieredQuery) => Promise<TieredResult>): Promise<KlineResponse> {
  try {
    const r = await read(q);
    const headers: Record<string, string> = { 'x-mp-tiers': r.tiers.join(',') };
    if (r.degraded.length > 0) headers['x-mp-degraded'] = r.degraded.join(',');
    return { status: 200, body: r.klines.map(toRow), headers };
  } catch (e) {
    if (e instanceof HistoryUnavailableError) {
      return { status: 503, body: { code: -1001, msg: e.message }, headers: { 'x-mp-degraded': e.tier } };
    }
    return { status: 500, body: { code: -1000, msg: `An unknown error occurred while processing the request: ${e instanceof Error ? e.message : String(e)}` }, headers: {} };
  }
}
