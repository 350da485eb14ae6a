// Binance's request-weight accounting for the REST market endpoints: every
// request costs its endpoint's weight (Binance's table), summed per client IP
// over the current UTC minute and reported in `X-MBX-USED-WEIGHT-1M`; past the
// budget a request is refused with 429, code -1003 and `Retry-After` (seconds
// to the next minute), as Binance does.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Handler } from '../common/http.ts';
import { binanceError, sendBinanceError } from '../history/binance-api.ts';

/** Binance's weight of a request: some depend on `limit` or on asking for every symbol. */
export function requestWeight(path: string, params: URLSearchParams): number {
  const allSymbols = !params.has('symbol');
  switch (path) {
    case '/api/v3/depth': {
      const limit = Number(params.get('limit') ?? 100) || 100;
      return limit <= 100 ? 5 : limit <= 500 ? 25 : limit <= 1000 ? 50 : 250;
    }
    case '/api/v3/exchangeInfo':
      return 20;
    case '/api/v3/trades':
      return 25;
    case '/api/v3/ticker':
      return rollingWeight(params);
    case '/api/v3/ticker/24hr':
      return allSymbols ? (params.has('symbols') ? 40 : 80) : 2;
    case '/api/v3/ticker/price':
    case '/api/v3/ticker/bookTicker':
      return allSymbols ? 4 : 2;
    case '/api/v3/aggTrades':
      return 4;
    case '/api/v3/klines':
    case '/api/v3/uiKlines':
    case '/api/v3/avgPrice':
      return 2;
    default:
      return 1;
  }
}

/** GET /api/v3/ticker: 4 a symbol whatever the window, at most 200 (past 50 symbols). */
function rollingWeight(params: URLSearchParams): number {
  let n = 1;
  const many = params.get('symbols');
  if (!params.has('symbol') && many !== null) {
    try {
      const list: unknown = JSON.parse(many);
      if (Array.isArray(list)) n = Math.max(1, list.length);
    } catch {
      // a malformed list is refused; it costs one symbol's weight
    }
  }
  return Math.min(4 * n, 200);
}

const MINUTE_MS = 60_000;

export class RequestWeights {
  readonly budget: number;
  #minute = 0;
  #used = new Map<string, number>();

  constructor(budgetPerMinute: number) {
    this.budget = budgetPerMinute;
  }

  /** Adds a request's weight to its IP's minute; the weight used so far this minute. */
  charge(ip: string, weight: number, now = Date.now()): number {
    const minute = Math.floor(now / MINUTE_MS);
    if (minute !== this.#minute) {
      // A new minute: every IP starts again (and the map never outgrows one minute of clients).
      this.#minute = minute;
      this.#used.clear();
    }
    const used = (this.#used.get(ip) ?? 0) + weight;
    this.#used.set(ip, used);
    return used;
  }

  /** Wraps a handler: charges it, sets the weight header, refuses past the budget. */
  wrap(handler: Handler): Handler {
    return (req: IncomingMessage, res: ServerResponse, url: URL) => {
      const now = Date.now();
      const used = this.charge(req.socket.remoteAddress ?? '', requestWeight(url.pathname, url.searchParams), now);
      res.setHeader('x-mbx-used-weight-1m', String(used));
      if (used > this.budget) {
        const retryAfter = Math.max(1, Math.ceil((MINUTE_MS - (now % MINUTE_MS)) / 1000));
        return sendBinanceError(
          res,
          binanceError(429, -1003, `Too much request weight used; current limit is ${this.budget} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.`),
          { 'retry-after': String(retryAfter), 'access-control-allow-origin': '*' },
        );
      }
      return handler(req, res, url);
    };
  }
}
