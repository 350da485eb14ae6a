// Binance's REST market-data endpoints on a push-server, answered from what
// the server already keeps per topic (topic-history.ts): the latest
// `@ticker` event (ticker/24hr, ticker/price, avgPrice), the recent `@trade`
// events (trades, aggTrades: the simulated market fills one level per trade,
// so every aggregate trade is one trade), and the order book (bookTicker, the
// top of /api/v3/depth's book at the same update id). Events are decoded only
// when asked. A gateway validates the symbols and forwards the query here.
import { fromBinary } from '@bufbuild/protobuf';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EventSchema, type Ticker, type Trade } from '../../proto/gen/market_pb.js';
import { sendJson, type Routes } from '../common/http.ts';
import type { TopicHistory } from '../common/topic-history.ts';
import { binanceError, isBinanceError, selectSymbols, sendBinanceError, type BinanceError } from '../history/binance-api.ts';
import type { DepthBooks } from './depth-book.ts';

const TRADES_DEFAULT_LIMIT = 500;
const TRADES_MAX_LIMIT = 1000;

export function marketRestRoutes(topics: ReadonlyMap<string, TopicHistory>, books: DepthBooks): Routes {
  const known = {
    has: (s: string) => topics.has(`${s}@ticker`) || topics.has(`${s}@trade`),
  };
  const allSymbols = () => [...topics.keys()].filter((t) => t.endsWith('@ticker')).map((t) => t.slice(0, -7)).sort();

  const latestTicker = (sym: string): Ticker | undefined => {
    const latest = topics.get(`${sym}@ticker`)?.latest;
    if (!latest) return undefined;
    const ev = fromBinary(EventSchema, latest.bytes);
    return ev.payload.case === 'ticker' ? ev.payload.value : undefined;
  };

  const recentTrades = (sym: string): Trade[] => {
    const th = topics.get(`${sym}@trade`);
    if (!th) return [];
    const out: Trade[] = [];
    for (const bytes of th.since(th.epoch, Math.max(0, th.oldestSeq - 1)) ?? []) {
      const ev = fromBinary(EventSchema, bytes);
      if (ev.payload.case === 'trade') out.push(ev.payload.value);
    }
    return out;
  };

  /** One symbol (`symbol`), a list (`symbols`), or every symbol: each mapped, or a Binance error. */
  const perSymbol = <T>(url: URL, res: ServerResponse, map: (sym: string) => T | undefined): void => {
    const picked = selectSymbols(url.searchParams, known);
    if (isBinanceError(picked)) return sendBinanceError(res, picked);
    const out: T[] = [];
    for (const sym of picked ?? allSymbols()) {
      const v = map(sym);
      if (v !== undefined) out.push(v);
    }
    if (url.searchParams.has('symbol')) {
      if (out.length === 0) return sendBinanceError(res, notReady());
      return sendJson(res, 200, out[0]);
    }
    sendJson(res, 200, out);
  };

  const ticker24hr = (_q: IncomingMessage, res: ServerResponse, url: URL) => {
    const type = url.searchParams.get('type') ?? 'FULL';
    if (type !== 'FULL' && type !== 'MINI') return sendBinanceError(res, binanceError(400, -1100, "Illegal characters found in parameter 'type'; legal range is 'FULL, MINI'."));
    perSymbol(url, res, (sym) => {
      const t = latestTicker(sym);
      if (!t) return undefined;
      const mini = {
        symbol: t.symbol.toUpperCase(), openPrice: t.openPrice, highPrice: t.highPrice, lowPrice: t.lowPrice, lastPrice: t.lastPrice,
        volume: t.volume, quoteVolume: t.quoteVolume, openTime: Number(t.openTime), closeTime: Number(t.closeTime),
        firstId: t.tradeCount > 0n ? Number(t.firstTradeId) : -1, lastId: t.tradeCount > 0n ? Number(t.lastTradeId) : -1, count: Number(t.tradeCount),
      };
      if (type === 'MINI') return mini;
      return {
        symbol: mini.symbol, priceChange: t.priceChange, priceChangePercent: t.priceChangePercent, weightedAvgPrice: t.weightedAvgPrice,
        prevClosePrice: t.openPrice, lastPrice: t.lastPrice, lastQty: t.lastQty, bidPrice: t.bestBid, bidQty: t.bestBidQty,
        askPrice: t.bestAsk, askQty: t.bestAskQty, openPrice: t.openPrice, highPrice: t.highPrice, lowPrice: t.lowPrice,
        volume: t.volume, quoteVolume: t.quoteVolume, openTime: mini.openTime, closeTime: mini.closeTime,
        firstId: mini.firstId, lastId: mini.lastId, count: mini.count,
      };
    });
  };

  const tickerPrice = (_q: IncomingMessage, res: ServerResponse, url: URL) =>
    perSymbol(url, res, (sym) => {
      const last = recentTrades(sym).at(-1);
      const price = last?.price ?? latestTicker(sym)?.lastPrice;
      return price === undefined ? undefined : { symbol: sym.toUpperCase(), price };
    });

  const bookTicker = (_q: IncomingMessage, res: ServerResponse, url: URL) =>
    perSymbol(url, res, (sym) => {
      const b = books.book(sym);
      const bid = b?.bids[0];
      const ask = b?.asks[0];
      if (!bid || !ask) return undefined;
      return { symbol: sym.toUpperCase(), bidPrice: bid[0], bidQty: bid[1], askPrice: ask[0], askQty: ask[1] };
    });

  const avgPrice = (_q: IncomingMessage, res: ServerResponse, url: URL) => {
    const sym = oneSymbol(url, known);
    if (isBinanceError(sym)) return sendBinanceError(res, sym);
    // Binance: the volume-weighted price of the last 5 minutes' trades (those this server still holds).
    const trades = recentTrades(sym);
    const t = latestTicker(sym);
    if (trades.length === 0 && !t) return sendBinanceError(res, notReady());
    const last = trades.at(-1);
    const from = Number(last?.tradeTime ?? 0) - 300_000;
    let qty = 0;
    let quote = 0;
    for (const tr of trades) {
      if (Number(tr.tradeTime) < from) continue;
      qty += Number(tr.qty);
      quote += Number(tr.qty) * Number(tr.price);
    }
    const decimals = (last?.price ?? t!.lastPrice).split('.')[1]?.length ?? 0;
    const price = qty > 0 ? (quote / qty).toFixed(decimals) : (last?.price ?? t!.lastPrice);
    sendJson(res, 200, { mins: 5, price, closeTime: Number(last?.tradeTime ?? t!.closeTime) });
  };

  const trades = (_q: IncomingMessage, res: ServerResponse, url: URL) => {
    const q = tradeQuery(url, known);
    if (isBinanceError(q)) return sendBinanceError(res, q);
    const rows = recentTrades(q.symbol).slice(-q.limit);
    sendJson(res, 200, rows.map((t) => ({
      id: Number(t.tradeId), price: t.price, qty: t.qty, quoteQty: quoteQty(t), time: Number(t.tradeTime), isBuyerMaker: t.buyerIsMaker, isBestMatch: true,
    })));
  };

  const aggTrades = (_q: IncomingMessage, res: ServerResponse, url: URL) => {
    const q = tradeQuery(url, known);
    if (isBinanceError(q)) return sendBinanceError(res, q);
    let rows = recentTrades(q.symbol);
    if (q.fromId !== undefined) rows = rows.filter((t) => Number(t.tradeId) >= q.fromId!).slice(0, q.limit);
    else if (q.startTime !== undefined || q.endTime !== undefined) {
      rows = rows.filter((t) => (q.startTime === undefined || Number(t.tradeTime) >= q.startTime) && (q.endTime === undefined || Number(t.tradeTime) <= q.endTime)).slice(0, q.limit);
    } else rows = rows.slice(-q.limit);
    sendJson(res, 200, rows.map((t) => ({
      a: Number(t.tradeId), p: t.price, q: t.qty, f: Number(t.firstTradeId || t.tradeId), l: Number(t.lastTradeId || t.tradeId), T: Number(t.tradeTime), m: t.buyerIsMaker, M: true,
    })));
  };

  return {
    'GET /api/v3/ticker/24hr': ticker24hr,
    'GET /api/v3/ticker/price': tickerPrice,
    'GET /api/v3/ticker/bookTicker': bookTicker,
    'GET /api/v3/avgPrice': avgPrice,
    'GET /api/v3/trades': trades,
    'GET /api/v3/aggTrades': aggTrades,
  };
}

const notReady = () => binanceError(503, -1001, 'Internal error; no market data for this symbol yet. Please try again.');

function quoteQty(t: Trade): string {
  const pd = t.price.split('.')[1]?.length ?? 0;
  const qd = t.qty.split('.')[1]?.length ?? 0;
  return (Number(t.price) * Number(t.qty)).toFixed(pd + qd);
}

function oneSymbol(url: URL, known: { has(s: string): boolean }): string | BinanceError {
  const s = url.searchParams.get('symbol');
  if (s === null || s === '') return binanceError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.");
  if (!/^[A-Za-z0-9]{2,20}$/.test(s)) return binanceError(400, -1100, "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.");
  if (!known.has(s.toLowerCase())) return binanceError(400, -1121, 'Invalid symbol.');
  return s.toLowerCase();
}

interface TradeQuery {
  symbol: string;
  limit: number;
  fromId?: number;
  startTime?: number;
  endTime?: number;
}

/** symbol, limit (1–1000, default 500), and for aggTrades fromId / startTime / endTime. */
export function tradeQuery(url: URL, known: { has(s: string): boolean }): TradeQuery | BinanceError {
  const symbol = oneSymbol(url, known);
  if (isBinanceError(symbol)) return symbol;
  const q: TradeQuery = { symbol, limit: TRADES_DEFAULT_LIMIT };
  for (const name of ['limit', 'fromId', 'startTime', 'endTime'] as const) {
    const v = url.searchParams.get(name);
    if (v === null || v === '') continue;
    if (!/^\d{1,20}$/.test(v) || !Number.isSafeInteger(Number(v))) return binanceError(400, -1100, `Illegal characters found in parameter '${name}'; legal range is '^[0-9]{1,20}$'.`);
    q[name] = Number(v);
  }
  if (q.limit < 1) return binanceError(400, -1100, "Illegal characters found in parameter 'limit'; legal range is '1-1000'.");
  q.limit = Math.min(q.limit, TRADES_MAX_LIMIT);
  if (q.startTime !== undefined && q.endTime !== undefined && q.startTime > q.endTime) {
    return binanceError(400, -1128, 'Combination of optional parameters invalid. Recommendation: startTime must be less than endTime.');
  }
  return q;
}
