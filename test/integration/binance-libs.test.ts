// The `binance` (MainClient, WebsocketClient) and `@binance/connector` (Spot,
// WebsocketStream) npm clients, unchanged but for their base URLs, against a
// real cluster: REST market data and the streams each offers.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { MainClient, WebsocketClient } from 'binance';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';

// @binance/connector is CommonJS without type declarations: the few calls used here.
interface ConnectorResponse<T> {
  data: T;
  headers: Record<string, string>;
}
interface ConnectorSpot {
  depth(symbol: string, o?: { limit?: number }): Promise<ConnectorResponse<{ lastUpdateId: number; bids: [string, string][]; asks: [string, string][] }>>;
  ticker24hr(symbol?: string): Promise<ConnectorResponse<{ symbol: string; lastPrice: string }>>;
  trades(symbol: string, o?: { limit?: number }): Promise<ConnectorResponse<Array<{ id: number; price: string }>>>;
  klines(symbol: string, interval: string, o?: { limit?: number }): Promise<ConnectorResponse<unknown[][]>>;
  exchangeInfo(o?: { symbol?: string }): Promise<ConnectorResponse<{ symbols: Array<{ symbol: string; filters: Array<{ filterType: string }> }> }>>;
}
interface ConnectorStream {
  diffBookDepth(symbol: string, speed: string): void;
  trade(symbol: string): void;
  kline(symbol: string, interval: string): void;
  miniTicker(symbol: string): void;
  disconnect(): void;
}
const connector = createRequire(import.meta.url)('@binance/connector') as {
  Spot: new (key: string, secret: string, o: { baseURL: string }) => ConnectorSpot;
  WebsocketStream: new (o: { wsURL: string; logger?: unknown; callbacks: { message: (data: string) => void } }) => ConnectorStream;
};

const silent = { trace: () => {}, info: () => {}, error: () => {} };
const quietConsole = { log: () => {}, info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };

describe('binance and @binance/connector against a gateway', () => {
  let cluster: TestCluster;
  let http: string;
  let ws: string;

  before(async () => {
    cluster = await startCluster({ servers: 1, gateways: 1, symbols: 3, rate: 50 });
    http = cluster.gateways[0]!.urls.http!;
    ws = cluster.gateways[0]!.urls.ws!;
    await waitFor(async () => (await fetch(`${http}/api/v3/depth?symbol=BTCUSDT`)).status === 200, 10_000, 'a first depth snapshot');
  });
  after(async () => {
    await cluster?.stop();
  });

  test('binance MainClient: exchangeInfo, order book, 24 h ticker, trades, aggTrades, klines, avgPrice', async () => {
    const client = new MainClient({ baseUrl: http });
    const info = await client.getExchangeInfo();
    assert.deepEqual(info.symbols.map((s) => s.symbol), ['BNBUSDT', 'BTCUSDT', 'ETHUSDT']);
    const book = await client.getOrderBook({ symbol: 'BTCUSDT', limit: 5 });
    assert.equal(book.bids.length, 5);
    assert.ok(Number(book.bids[0]![0]) < Number(book.asks[0]![0]));
    assert.ok(book.lastUpdateId > 0);
    const t = (await client.get24hrChangeStatistics({ symbol: 'BTCUSDT' })) as { symbol: string; lastPrice: string | number };
    assert.equal(t.symbol, 'BTCUSDT');
    assert.ok(Number(t.lastPrice) > 0);
    const trades = await client.getRecentTrades({ symbol: 'BTCUSDT', limit: 5 });
    assert.equal(trades.length, 5);
    const agg = await client.getAggregateTrades({ symbol: 'BTCUSDT', limit: 5 });
    assert.equal(agg.length, 5);
    const klines = await client.getKlines({ symbol: 'BTCUSDT', interval: '1m', limit: 2 });
    assert.ok(klines.length >= 1);
    const avg = await client.getAvgPrice({ symbol: 'BTCUSDT' });
    assert.equal(avg.mins, 5);
  });

  test('binance WebsocketClient: diff depth, trades, klines and mini tickers arrive in Binance shapes', async () => {
    const client = new WebsocketClient({ wsUrl: ws }, silent);
    const events: Array<Record<string, unknown>> = [];
    client.on('message', (m: unknown) => {
      const msg = m as Record<string, unknown>;
      events.push((msg.data as Record<string, unknown> | undefined) ?? msg);
    });
    try {
      await client.subscribeSpotDiffBookDepth('BTCUSDT', 100);
      await client.subscribeSpotTrades('BTCUSDT');
      await client.subscribeSpotKline('BTCUSDT', '1m');
      await client.subscribeSpotSymbolMini24hrTicker('BTCUSDT');
      const kinds = ['depthUpdate', 'trade', 'kline', '24hrMiniTicker'];
      await waitFor(() => kinds.every((k) => events.some((e) => e.e === k)), 15_000, `events of kinds ${kinds.join(', ')}`);
      const depth = events.find((e) => e.e === 'depthUpdate')!;
      assert.equal(typeof depth.U, 'number');
      assert.equal(typeof depth.u, 'number');
      const trade = events.find((e) => e.e === 'trade')!;
      assert.equal(typeof trade.p, 'string');
      assert.equal(typeof trade.q, 'string');
    } finally {
      client.closeAll(true);
    }
  });

  test('binance WebsocketClient: partial depth (5 at 100 ms, 20 at 1 s), aggregate trades, 1w and 1s klines', async () => {
    const client = new WebsocketClient({ wsUrl: ws }, silent);
    const events: Array<Record<string, unknown>> = [];
    client.on('message', (m: unknown) => {
      const msg = m as Record<string, unknown>;
      events.push((msg.data as Record<string, unknown> | undefined) ?? msg);
    });
    try {
      await client.subscribeSpotPartialBookDepth('ETHUSDT', 5, 100);
      await client.subscribeSpotPartialBookDepth('BTCUSDT', 20, 1000);
      await client.subscribeSpotAggregateTrades('BTCUSDT');
      await client.subscribeSpotKline('BTCUSDT', '1w');
      await client.subscribeSpotKline('BTCUSDT', '1s');
      const partial = (n: number) => events.find((e) => Array.isArray(e.bids) && (e.bids as unknown[]).length === n);
      await waitFor(
        () => partial(5) !== undefined && partial(20) !== undefined && events.some((e) => e.e === 'aggTrade') && ['1w', '1s'].every((i) => events.some((e) => (e.k as { i?: string } | undefined)?.i === i)),
        15_000,
        'partial depth of 5 and 20, aggTrade, 1w and 1s klines',
      );
      const p5 = partial(5)!;
      assert.equal(typeof p5.lastUpdateId, 'number');
      assert.equal((p5.asks as unknown[]).length, 5);
      const agg = events.find((e) => e.e === 'aggTrade')!;
      assert.equal(typeof agg.a, 'number');
      assert.equal(typeof agg.p, 'string');
      assert.equal(agg.f, agg.l);
      assert.equal(events.filter((e) => e.error !== undefined).length, 0, 'every SUBSCRIBE accepted');
    } finally {
      client.closeAll(true);
    }
  });

  test('@binance/connector: Spot REST and WebsocketStream streams (diff depth at 100 ms and 1000 ms, trades, klines, mini ticker)', async () => {
    const spot = new connector.Spot('', '', { baseURL: http });
    const depth = await spot.depth('BTCUSDT', { limit: 10 });
    assert.equal(depth.data.bids.length, 10);
    assert.ok(depth.data.lastUpdateId > 0);
    assert.equal((await spot.ticker24hr('ETHUSDT')).data.symbol, 'ETHUSDT');
    assert.equal((await spot.trades('ETHUSDT', { limit: 3 })).data.length, 3);
    assert.ok((await spot.klines('ETHUSDT', '5m', { limit: 1 })).data.length >= 1);
    const info = (await spot.exchangeInfo({ symbol: 'ETHUSDT' })).data;
    assert.deepEqual(info.symbols.map((s) => s.symbol), ['ETHUSDT']);
    assert.deepEqual(info.symbols[0]!.filters.map((f) => f.filterType), ['PRICE_FILTER', 'LOT_SIZE', 'NOTIONAL']);

    const events: Array<Record<string, unknown>> = [];
    const stream = new connector.WebsocketStream({ wsURL: ws, logger: quietConsole, callbacks: { message: (d) => events.push(JSON.parse(d) as Record<string, unknown>) } });
    try {
      stream.diffBookDepth('ethusdt', '100ms');
      await waitFor(() => events.some((e) => e.e === 'depthUpdate'), 10_000, 'a connection and its first diff');
      stream.diffBookDepth('bnbusdt', '1000ms');
      stream.trade('ethusdt');
      stream.kline('ethusdt', '1m');
      stream.miniTicker('ethusdt');
      await waitFor(() => ['trade', 'kline', '24hrMiniTicker'].every((k) => events.some((e) => e.e === k)) && events.some((e) => e.e === 'depthUpdate' && e.s === 'BNBUSDT'), 15_000, 'every stream kind');
      const refused = events.filter((e) => e.error !== undefined);
      assert.deepEqual(refused, [], 'every SUBSCRIBE accepted');
    } finally {
      stream.disconnect();
    }
  });
});
