import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestWeights, requestWeight } from '../../system/gateway/rest-weight.ts';

test("requestWeight follows Binance's table", () => {
  const w = (path: string, qs = '') => requestWeight(path, new URLSearchParams(qs));
  assert.equal(w('/api/v3/depth', 'symbol=BTCUSDT'), 5);
  assert.equal(w('/api/v3/depth', 'symbol=BTCUSDT&limit=500'), 25);
  assert.equal(w('/api/v3/depth', 'symbol=BTCUSDT&limit=1000'), 50);
  assert.equal(w('/api/v3/depth', 'symbol=BTCUSDT&limit=5000'), 250);
  assert.equal(w('/api/v3/exchangeInfo'), 20);
  assert.equal(w('/api/v3/ticker/24hr', 'symbol=BTCUSDT'), 2);
  assert.equal(w('/api/v3/ticker/24hr'), 80);
  assert.equal(w('/api/v3/trades', 'symbol=BTCUSDT'), 25);
  assert.equal(w('/api/v3/aggTrades', 'symbol=BTCUSDT'), 4);
  assert.equal(w('/api/v3/klines', 'symbol=BTCUSDT&interval=1m'), 2);
  assert.equal(w('/api/v3/uiKlines', 'symbol=BTCUSDT&interval=1m'), 2);
  assert.equal(w('/api/v3/ping'), 1);
  // Rolling windows: 4 a symbol whatever the window, capped at 200 past 50 symbols.
  const list = (n: number) => `symbols=${encodeURIComponent(JSON.stringify(Array.from({ length: n }, (_, i) => `S${i}USDT`)))}`;
  assert.equal(w('/api/v3/ticker', 'symbol=BTCUSDT&windowSize=7d'), 4);
  assert.equal(w('/api/v3/ticker', list(3)), 12);
  assert.equal(w('/api/v3/ticker', list(50)), 200);
  assert.equal(w('/api/v3/ticker', list(51)), 200);
  assert.equal(w('/api/v3/ticker', list(100)), 200);
  assert.equal(w('/api/v3/ticker', 'symbols=[oops'), 4);
});

test('RequestWeights: sums per IP within a UTC minute, starts again at the next one', () => {
  const weights = new RequestWeights(100);
  const t0 = Date.UTC(2026, 0, 1, 12, 0, 10);
  assert.equal(weights.charge('1.1.1.1', 20, t0), 20);
  assert.equal(weights.charge('1.1.1.1', 5, t0 + 40_000), 25);
  assert.equal(weights.charge('2.2.2.2', 5, t0 + 40_000), 5, 'another IP has its own count');
  assert.equal(weights.charge('1.1.1.1', 5, t0 + 50_000), 5, 'a new minute starts at zero');
});
