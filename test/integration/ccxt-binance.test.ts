// ccxt's Binance exchange (ccxt.pro.binance), unchanged but for its URLs and
// the documented options that keep loadMarkets on spot (no /fapi, /dapi or
// /sapi calls), against a real cluster: markets, the REST order book, and a
// local book kept by watchOrderBook (Binance's snapshot + diff algorithm, as
// ccxt implements it) that never crosses and equals a fresh GET
// /api/v3/depth at the same update id.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { assertSorted, compareWithRest, makeExchange, watchBookFor, type Side } from '../helpers/ccxt-book.ts';

describe('ccxt.pro.binance against a gateway', () => {
  let cluster: TestCluster;
  let http: string;
  let ex: ReturnType<typeof makeExchange>;

  before(async () => {
    cluster = await startCluster({ servers: 1, gateways: 1, symbols: 3, rate: 50 });
    http = cluster.gateways[0]!.urls.http!;
    ex = makeExchange(http, cluster.gateways[0]!.urls.ws!);
    // ccxt's documented step for plain ws:// URLs (a local gateway without TLS).
    await ex.loadHttpProxyAgent();
  });
  after(async () => {
    await ex?.close();
    await cluster?.stop();
  });

  test('loadMarkets: the feed symbols, with precisions from the filters', async () => {
    const markets = await ex.loadMarkets();
    assert.deepEqual(Object.keys(markets).sort(), ['BNB/USDT', 'BTC/USDT', 'ETH/USDT']);
    const btc = markets['BTC/USDT']!;
    assert.equal(btc.spot, true);
    assert.equal(btc.precision.price, 0.01);
    assert.equal(btc.precision.amount, 0.00001);
    assert.equal(ex.priceToPrecision('BTC/USDT', 60123.454), '60123.45');
    assert.equal(ex.amountToPrecision('BTC/USDT', 0.123456789), '0.12345');
  });

  test('fetchOrderBook: sorted, not crossed, with the update id as nonce', async () => {
    const ob = await ex.fetchOrderBook('BTC/USDT', 10);
    assert.equal(ob.bids.length, 10);
    assertSorted(ob.bids as Side, ob.asks as Side, 'fetchOrderBook');
    assert.ok(Number.isSafeInteger(ob.nonce) && ob.nonce! > 0);
  });

  test('fetchTicker, fetchTrades, fetchOHLCV (several intervals)', async () => {
    const t = await ex.fetchTicker('BTC/USDT');
    assert.equal(t.symbol, 'BTC/USDT');
    assert.ok(t.last! > 0 && t.bid! > 0 && t.ask! > t.bid!, JSON.stringify(t));
    assert.ok(t.low! <= t.last! && t.last! <= t.high!);
    const trades = await ex.fetchTrades('BTC/USDT', undefined, 20);
    assert.equal(trades.length, 20);
    for (const tr of trades) {
      assert.equal(tr.symbol, 'BTC/USDT');
      assert.ok(tr.price! > 0 && tr.amount! > 0 && (tr.side === 'buy' || tr.side === 'sell'));
    }
    for (let i = 1; i < trades.length; i++) assert.ok(trades[i]!.timestamp! >= trades[i - 1]!.timestamp!);
    for (const tf of ['1m', '5m', '1h']) {
      const candles = await ex.fetchOHLCV('BTC/USDT', tf);
      assert.ok(candles.length >= 1, tf);
      const [ts, o, h, l, c, v] = candles.at(-1)!;
      assert.ok(ts! > 0 && l! <= o! && o! <= h! && l! <= c! && c! <= h! && v! >= 0, `${tf}: ${candles.at(-1)}`);
    }
  });

  test('watchTicker, watchTrades, watchOHLCV', async () => {
    const t = await ex.watchTicker('ETH/USDT');
    assert.equal(t.symbol, 'ETH/USDT');
    assert.ok(t.last! > 0);
    const trades = await ex.watchTrades('ETH/USDT');
    assert.ok(trades.length >= 1);
    assert.equal(trades[0]!.symbol, 'ETH/USDT');
    assert.ok(trades[0]!.price! > 0);
    const candles = await ex.watchOHLCV('ETH/USDT', '1m');
    assert.ok(candles.length >= 1);
    const [ts, o, h, l, c] = candles.at(-1)!;
    assert.equal(ts! % 60_000, 0);
    assert.ok(l! <= o! && o! <= h! && l! <= c! && c! <= h!);
  });

  test('watchOHLCV for 3m, 1w and 1M (Binance names the month 1M), and watchTrades on aggTrade', async () => {
    const three = await ex.watchOHLCV('BTC/USDT', '3m');
    assert.equal(three.at(-1)![0]! % 180_000, 0);
    const week = await ex.watchOHLCV('BTC/USDT', '1w');
    const monday = new Date(week.at(-1)![0]!);
    assert.deepEqual([monday.getUTCDay(), monday.getUTCHours(), monday.getUTCMinutes()], [1, 0, 0], 'a week opens on Monday 00:00 UTC');
    const month = await ex.watchOHLCV('BTC/USDT', '1M');
    const first = new Date(month.at(-1)![0]!);
    assert.deepEqual([first.getUTCDate(), first.getUTCHours()], [1, 0], 'a month opens on the 1st');
    for (const [, o, h, l, c, v] of [...three, ...week, ...month]) assert.ok(l! <= o! && o! <= h! && l! <= c! && c! <= h! && v! >= 0);
    // ccxt's documented option: aggregate trades instead of trades.
    const aggs = await ex.watchTrades('BTC/USDT', undefined, undefined, { name: 'aggTrade' });
    assert.ok(aggs.length >= 1);
    assert.equal(aggs[0]!.symbol, 'BTC/USDT');
    assert.ok(aggs[0]!.price! > 0 && aggs[0]!.amount! > 0);
    assert.match(String(aggs[0]!.id), /^\d+$/);
  });

  test('watchTickers without symbols (the all-market array stream) and with symbols', async () => {
    const all = await ex.watchTickers();
    assert.ok(Object.keys(all).length >= 1);
    for (const t of Object.values(all)) {
      assert.ok(['BTC/USDT', 'ETH/USDT', 'BNB/USDT'].includes(t.symbol ?? ''), t.symbol);
      // ccxt's default is the mini ticker (no book fields): last, open, high, low, volumes.
      assert.ok(t.last! > 0 && t.low! <= t.last! && t.last! <= t.high!, JSON.stringify(t));
      if (t.bid !== undefined) assert.ok(t.ask! > t.bid);
    }
    const some = await ex.watchTickers(['BTC/USDT', 'ETH/USDT']);
    assert.ok(Object.keys(some).every((s) => s === 'BTC/USDT' || s === 'ETH/USDT'));
  });

  // 10 s here (the suite's time budget); `npm run bench:ccxt-orderbook` runs the same check for 60 s.
  test('watchOrderBook for 10 s: every update sorted, uncrossed, positive, nonce advancing; then equal to a fresh GET /api/v3/depth at the same update id', async () => {
    const w = await watchBookFor(ex, 'ETH/USDT', 10_000);
    assert.ok(w.updates >= 50, `only ${w.updates} updates in 10 s of @depth@100ms`);
    await compareWithRest(ex, http, 'ETH/USDT');
  });
});
