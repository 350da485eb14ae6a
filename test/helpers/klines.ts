// Deterministic candles for the history tests, and the Binance answer a
// range query must give over them.
import type { Kline } from '../../system/history/kline.ts';

export function makeKlines(symbol: string, interval: string, firstOpen: number, stepMs: number, count: number): Kline[] {
  const out: Kline[] = [];
  for (let i = 0; i < count; i++) {
    const t = firstOpen + i * stepMs;
    const p = (100 + (i % 97) / 10).toFixed(2);
    out.push({
      symbol,
      interval,
      openTime: t,
      closeTime: t + stepMs - 1,
      open: p,
      high: (Number(p) + 1).toFixed(2),
      low: (Number(p) - 1).toFixed(2),
      close: p,
      volume: `${i}.5`,
      quoteVolume: `${i * 100}.25`,
      trades: i,
      takerBuyBase: `${i}.1`,
      takerBuyQuote: `${i}.2`,
    });
  }
  return out;
}

/** Binance semantics: with startTime the first `limit` in range, otherwise the last `limit`. */
export function expected(all: readonly Kline[], q: { startTime?: number; endTime?: number; limit: number }): Kline[] {
  const inRange = all.filter((k) => (q.startTime === undefined || k.openTime >= q.startTime) && (q.endTime === undefined || k.openTime <= q.endTime));
  return q.startTime !== undefined ? inRange.slice(0, q.limit) : inRange.slice(Math.max(0, inRange.length - q.limit));
}
