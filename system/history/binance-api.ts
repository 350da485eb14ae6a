// GET /api/v3/klines with Binance's parameters, limits and error bodies.
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
