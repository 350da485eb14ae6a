// The gateway's Binance REST market endpoints (`/api/v3/…`): ping, time,
// exchangeInfo (with the symbols' trading filters, derived from the same
// symbol facts the feed prices with), depth, tickers (24 h and rolling
// windows), trades and avgPrice
// (answered by the push-server that owns the symbol), and Binance's
// `{"code":…,"msg":…}` body for any /api route that does not exist.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Handler, Routes } from '../common/http.ts';
import { sendJson } from '../common/http.ts';
import { formatUnits, symbolInfo, symbolSpec } from '../common/symbols.ts';
import { depthBookTopic } from '../common/topics.ts';
import { binanceError, isBinanceError, parseDepthQuery, selectSymbols, sendBinanceError } from '../history/binance-api.ts';
import type { KlineProxy } from '../history/gateway-proxy.ts';
import { RequestWeights } from './rest-weight.ts';

export interface MarketRestOptions {
  /** The symbols the cluster publishes, lower case. */
  symbols: () => ReadonlySet<string>;
  /** Forwards a query to the push-server that owns a topic. */
  servers: KlineProxy;
  /** Requests per second a client may send (reported in rateLimits). */
  inboundRatePerSec: number;
  /** Request weight one IP may use per minute. */
  weightPerMinute: number;
  /** Answers klines and uiKlines here instead of forwarding them (the history process's own tiers). */
  klines?: Handler;
}

const CORS = { 'access-control-allow-origin': '*' };
const ORDER_TYPES = ['LIMIT', 'LIMIT_MAKER', 'MARKET', 'STOP_LOSS_LIMIT', 'TAKE_PROFIT_LIMIT'];
// Far beyond any price or size the random walk reaches from a symbol's reference price.
const MAX_PRICE_FACTOR = 1000;
const MAX_QTY_NOTIONAL = 100_000_000;
const MIN_NOTIONAL = 1;

/** One symbol of exchangeInfo, its filters in Binance's 8-decimal string form. */
export function exchangeSymbol(symbol: string): Record<string, unknown> {
  const spec = symbolSpec(symbol);
  const info = symbolInfo(symbol);
  const d8 = (x: number) => x.toFixed(8);
  const units = (n: number, decimals: number) => d8(Number(formatUnits(n, decimals)));
  const maxQtySteps = Math.max(1, Math.round((MAX_QTY_NOTIONAL / spec.refPrice) * 10 ** spec.qtyDecimals));
  return {
    symbol: info.symbol,
    status: info.status,
    baseAsset: info.baseAsset,
    baseAssetPrecision: 8,
    quoteAsset: info.quoteAsset,
    quotePrecision: 8,
    quoteAssetPrecision: 8,
    baseCommissionPrecision: 8,
    quoteCommissionPrecision: 8,
    orderTypes: ORDER_TYPES,
    icebergAllowed: true,
    ocoAllowed: true,
    otoAllowed: true,
    quoteOrderQtyMarketAllowed: true,
    allowTrailingStop: true,
    cancelReplaceAllowed: true,
    isSpotTradingAllowed: true,
    isMarginTradingAllowed: false,
    filters: [
      { filterType: 'PRICE_FILTER', minPrice: units(1, spec.priceDecimals), maxPrice: d8(spec.refPrice * MAX_PRICE_FACTOR), tickSize: units(1, spec.priceDecimals) },
      { filterType: 'LOT_SIZE', minQty: units(1, spec.qtyDecimals), maxQty: units(maxQtySteps, spec.qtyDecimals), stepSize: units(1, spec.qtyDecimals) },
      { filterType: 'NOTIONAL', minNotional: d8(MIN_NOTIONAL), applyMinToMarket: true, maxNotional: d8(MAX_QTY_NOTIONAL), applyMaxToMarket: false, avgPriceMins: 5 },
    ],
    permissions: [],
    permissionSets: [['SPOT']],
    defaultSelfTradePreventionMode: 'EXPIRE_MAKER',
    allowedSelfTradePreventionModes: ['EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH'],
  };
}

const SYMBOL_STATUSES = ['TRADING', 'HALT', 'BREAK', 'END_OF_DAY'];
const PERMISSION_RE = /^[A-Z0-9_]{1,30}$/;

/** exchangeInfo's `permissions`: `SPOT` or `["SPOT","MARGIN"]`; undefined when absent, a message when malformed. */
export function permissionsFilter(v: string | null): string[] | undefined | string {
  if (v === null || v === '') return undefined;
  let list: unknown = [v];
  if (v.startsWith('[')) {
    try {
      list = JSON.parse(v);
    } catch {
      return "Illegal characters found in parameter 'permissions'.";
    }
  }
  if (!Array.isArray(list) || list.length === 0 || !list.every((p) => typeof p === 'string' && PERMISSION_RE.test(p))) return "Illegal characters found in parameter 'permissions'.";
  return list as string[];
}

/** Binance's kline `timeZone` (hours `8`, `-1`, or `hh:mm` `05:45`, -12:00…+14:00): minutes east of UTC, or why not. */
export function klineTimeZone(v: string | null): number | string {
  if (v === null || v === '') return 0;
  const m = /^([+-])?(\d{1,2})(?::(\d{2}))?$/.exec(v);
  if (!m) return "Illegal characters found in parameter 'timeZone'; legal range is '[-12:00 to +14:00]'.";
  const minutes = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] ?? 0));
  if (minutes < -12 * 60 || minutes > 14 * 60 || Number(m[3] ?? 0) >= 60) return "Illegal characters found in parameter 'timeZone'; legal range is '[-12:00 to +14:00]'.";
  if (minutes !== 0) return `Parameter 'timeZone' ${v} is not supported by this cluster: kline history is kept in UTC (timeZone=0); the @kline_<interval>@+08:00 streams carry UTC+8 candles live.`;
  return 0;
}

export function marketRoutes(o: MarketRestOptions): Routes {
  const exchangeInfo = (_req: IncomingMessage, res: ServerResponse, url: URL) => {
    const known = o.symbols();
    const picked = selectSymbols(url.searchParams, known);
    if (isBinanceError(picked)) return sendBinanceError(res, picked, CORS);
    const perms = permissionsFilter(url.searchParams.get('permissions'));
    if (typeof perms === 'string') return sendBinanceError(res, binanceError(400, -1100, perms), CORS);
    const status = url.searchParams.get('symbolStatus');
    if (status !== null && !SYMBOL_STATUSES.includes(status)) return sendBinanceError(res, binanceError(400, -1100, `Illegal characters found in parameter 'symbolStatus'; legal range is '${SYMBOL_STATUSES.join(', ')}'.`), CORS);
    // Every symbol here is a TRADING spot symbol: a filter for anything else selects none.
    const listed = perms && !perms.includes('SPOT') ? [] : status !== null && status !== 'TRADING' ? [] : (picked ?? [...known].sort());
    const showSets = url.searchParams.get('showPermissionSets') !== 'false';
    sendJson(
      res,
      200,
      {
        timezone: 'UTC',
        serverTime: Date.now(),
        rateLimits: [
          { rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: o.weightPerMinute },
          { rateLimitType: 'RAW_REQUESTS', interval: 'SECOND', intervalNum: 1, limit: o.inboundRatePerSec },
        ],
        exchangeFilters: [],
        symbols: listed.map((sym) => {
          const x = exchangeSymbol(sym);
          if (!showSets) delete x.permissionSets;
          return x;
        }),
      },
      CORS,
    );
  };

  const depth = async (_req: IncomingMessage, res: ServerResponse, url: URL) => {
    const q = parseDepthQuery(url.searchParams, (s) => o.symbols().has(s.toLowerCase()));
    if (isBinanceError(q)) return sendBinanceError(res, q, CORS);
    const params = new URLSearchParams({ symbol: q.symbol, limit: String(q.limit) });
    const r = await o.servers.forward('/api/v3/depth', depthBookTopic(q.symbol.toLowerCase()), params, 'Internal error; no push-server answered the depth query. Please try again.');
    res.writeHead(r.status, { 'content-type': 'application/json', 'content-length': String(r.body.length), ...CORS, ...r.headers });
    res.end(r.body);
  };

  // Answered by a push-server from the tickers, trades and books it keeps (system/server/market-rest.ts).
  const forwarded = (path: string) => async (_req: IncomingMessage, res: ServerResponse, url: URL) => {
    const symbol = url.searchParams.get('symbol')?.toLowerCase();
    const r = await o.servers.forward(path, symbol ? `${symbol}@trade` : path, url.searchParams, 'Internal error; no push-server answered. Please try again.');
    res.writeHead(r.status, { 'content-type': 'application/json', 'content-length': String(r.body.length), ...CORS, ...r.headers });
    res.end(r.body);
  };
  const serverRoutes = Object.fromEntries(
    ['/api/v3/ticker', '/api/v3/ticker/24hr', '/api/v3/ticker/price', '/api/v3/ticker/bookTicker', '/api/v3/avgPrice', '/api/v3/trades', '/api/v3/aggTrades'].map((p) => [`GET ${p}`, forwarded(p)]),
  );

  // Kline history is kept in UTC: a zero timeZone is accepted, any other is refused, never ignored.
  const klines = (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const tz = klineTimeZone(url.searchParams.get('timeZone'));
    if (typeof tz === 'string') return sendBinanceError(res, binanceError(400, -1100, tz), CORS);
    // The REST host answers from its own history tiers; a gateway forwards to the servers.
    return o.klines ? o.klines(req, res, url) : o.servers.handle(req, res, url);
  };

  const unknownRoute = (req: IncomingMessage, res: ServerResponse, url: URL) =>
    sendBinanceError(res, binanceError(404, -1000, `Unknown endpoint: ${req.method} ${url.pathname.slice(0, 100)}`), CORS);

  const weights = new RequestWeights(o.weightPerMinute);
  const weighed: Routes = {
    'GET /api/v3/ping': (_q, res) => sendJson(res, 200, {}, CORS),
    'GET /api/v3/time': (_q, res) => sendJson(res, 200, { serverTime: Date.now() }, CORS),
    'GET /api/v3/exchangeInfo': exchangeInfo,
    'GET /api/v3/depth': depth,
    'GET /api/v3/klines': klines,
    // The simulated candles need no UI adjustment: uiKlines answers the klines (same query, weight and shape).
    'GET /api/v3/uiKlines': klines,
    ...serverRoutes,
  };
  return {
    ...Object.fromEntries(Object.entries(weighed).map(([k, h]) => [k, weights.wrap(h)])),
    // After every exact route: the router tries exact keys first, then these prefixes.
    'GET /api/*': unknownRoute,
    'POST /api/*': unknownRoute,
    'PUT /api/*': unknownRoute,
    'DELETE /api/*': unknownRoute,
  };
}
