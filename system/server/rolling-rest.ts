// GET /api/v3/ticker on a push-server: Binance's rolling-window statistics
// (`symbol` or `symbols`, `windowSize` 1m…59m | 1h…23h | 1d…7d, default 1d,
// `type` FULL | MINI, `symbolStatus`), from the windows every trade feeds
// (rolling-tickers.ts), closing at the time of the request. Errors are
// Binance's codes and messages; a gateway forwards the query unchanged.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson, type Routes } from '../common/http.ts';
import type { TopicHistory } from '../common/topic-history.ts';
import { binanceError, isBinanceError, selectSymbols, sendBinanceError, type BinanceError } from '../history/binance-api.ts';
import type { RollingTickers } from './rolling-tickers.ts';
import type { WindowStats } from './rolling-window.ts';

const MAX_SYMBOLS = 100;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const UNIT_MAX = { m: 59, h: 23, d: 7 } as const;
const SYMBOL_STATUSES = ['TRADING', 'HALT', 'BREAK'];

/** Binance's `windowSize`: one unit only (`1d2h` is not allowed); ms, or a Binance error. */
export function parseWindowSize(v: string | null): number | BinanceError {
  if (v === null) return UNIT_MS.d;
  const m = /^([1-9]\d?)([mhd])$/.exec(v);
  const unit = m?.[2] as keyof typeof UNIT_MS | undefined;
  if (!m || !unit || Number(m[1]) > UNIT_MAX[unit]) return binanceError(400, -1100, "Illegal characters found in parameter 'windowSize'; legal range is '1m-59m, 1h-23h, 1d-7d'.");
  return Number(m[1]) * UNIT_MS[unit];
}

export interface RollingQuery {
  symbols: string[];
  /** `symbol` was given: one object answers, not an array. */
  single: boolean;
  windowMs: number;
  mini: boolean;
}

/** Checks the query in Binance's order: selectors, windowSize, type, symbolStatus. */
export function parseRollingQuery(params: URLSearchParams, known: { has(s: string): boolean }): RollingQuery | BinanceError {
  const one = params.get('symbol');
  const many = params.get('symbols');
  if ((one === null || one === '') && (many === null || many === '')) {
    if (one !== null && many === null) return binanceError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.");
    return binanceError(400, -1102, "Param 'symbol' or 'symbols' must be sent, but both were empty/null!");
  }
  if (many !== null && one === null) {
    try {
      const list: unknown = JSON.parse(many);
      if (Array.isArray(list) && list.length > MAX_SYMBOLS) return binanceError(400, -1101, `Too many values sent for parameter 'symbols', maximum allowed up to ${MAX_SYMBOLS}.`);
    } catch {
      // selectSymbols says what is wrong with it
    }
  }
  const picked = selectSymbols(params, known);
  if (isBinanceError(picked)) return picked;
  const windowMs = parseWindowSize(params.get('windowSize'));
  if (isBinanceError(windowMs)) return windowMs;
  const type = params.get('type') ?? 'FULL';
  if (type !== 'FULL' && type !== 'MINI') return binanceError(400, -1100, "Illegal characters found in parameter 'type'; legal range is 'FULL, MINI'.");
  const status = params.get('symbolStatus');
  if (status !== null && !SYMBOL_STATUSES.includes(status)) return binanceError(400, -1122, 'Invalid symbolStatus.');
  const single = one !== null;
  // Every symbol here is TRADING: another status matches none (one symbol: Binance's -1220).
  if (status !== null && status !== 'TRADING') {
    if (single) return binanceError(400, -1220, "The symbol's status does not match the requested symbolStatus.");
    return { symbols: [], single, windowMs, mini: type === 'MINI' };
  }
  return { symbols: picked ?? [], single, windowMs, mini: type === 'MINI' };
}

/** Binance's FULL or MINI object of one window. */
export function rollingJson(symbol: string, s: WindowStats, mini: boolean): Record<string, unknown> {
  const tail = { openTime: s.openTime, closeTime: s.closeTime, firstId: s.firstId, lastId: s.lastId, count: s.count };
  const prices = { openPrice: s.open, highPrice: s.high, lowPrice: s.low, lastPrice: s.close, volume: s.volume, quoteVolume: s.quoteVolume };
  if (mini) return { symbol: symbol.toUpperCase(), ...prices, ...tail };
  return { symbol: symbol.toUpperCase(), priceChange: s.priceChange, priceChangePercent: s.priceChangePercent, weightedAvgPrice: s.weightedAvgPrice, ...prices, ...tail };
}

export function rollingTickerRoutes(rolling: RollingTickers, topics: ReadonlyMap<string, TopicHistory>): Routes {
  const known = { has: (s: string) => rolling.has(s) || topics.has(`${s}@ticker`) || topics.has(`${s}@trade`) };
  return {
    'GET /api/v3/ticker': (_q: IncomingMessage, res: ServerResponse, url: URL) => {
      const q = parseRollingQuery(url.searchParams, known);
      if (isBinanceError(q)) return sendBinanceError(res, q);
      const now = Date.now();
      const out: Record<string, unknown>[] = [];
      for (const sym of q.symbols) {
        const s = rolling.stats(sym, q.windowMs, now);
        if (s) out.push(rollingJson(sym, s, q.mini));
      }
      if (!q.single) return sendJson(res, 200, out);
      if (out.length === 0) return sendBinanceError(res, binanceError(503, -1001, 'Internal error; no trades for this symbol yet. Please try again.'));
      sendJson(res, 200, out[0]);
    },
  };
}
