// Binance's rolling-window tickers against real processes (feed → NATS → two
// push-servers → gateway): `<sym>@ticker_<w>` and `!ticker_<w>@arr` in JSON and
// protobuf, GET /api/v3/ticker with windowSize; Binance's shapes and types,
// and consistency with @trade: the window's last price is trade L's, its
// volumes grow by exactly the trades between two updates, n = L − F + 1.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ClientFrameSchema, ServerFrameSchema } from '../../proto/gen/client_pb.js';
import type { Event } from '../../proto/gen/market_pb.js';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';

type Msg = Record<string, any>;

const DECIMAL = /^-?\d+(\.\d+)?$/;
const H = 3_600_000;
const ROLLING_KEYS = ['e', 'E', 's', 'p', 'P', 'o', 'h', 'l', 'c', 'w', 'v', 'q', 'O', 'C', 'F', 'L', 'n'];
const FULL_KEYS = ['symbol', 'priceChange', 'priceChangePercent', 'weightedAvgPrice', 'openPrice', 'highPrice', 'lowPrice', 'lastPrice', 'volume', 'quoteVolume', 'openTime', 'closeTime', 'firstId', 'lastId', 'count'];
const MINI_KEYS = ['symbol', 'openPrice', 'highPrice', 'lowPrice', 'lastPrice', 'volume', 'quoteVolume', 'openTime', 'closeTime', 'firstId', 'lastId', 'count'];

/** A decimal string as an integer of 10^-d (exact sums to compare). */
const units = (s: string, d: number) => {
  const [i, f = ''] = s.split('.');
  return BigInt(i! + f.padEnd(d, '0'));
};
const decimals = (s: string) => s.split('.')[1]?.length ?? 0;

/** One rolling object (stream or array element): Binance's fields and types, internally consistent. */
function checkRolling(d: Msg, e: string, windowMs: number, what: string): void {
  assert.deepEqual(Object.keys(d).filter((k) => !['seq', 'ep', 'pt'].includes(k)), ROLLING_KEYS, what);
  assert.equal(d.e, e, what);
  for (const f of ['p', 'P', 'o', 'h', 'l', 'c', 'w', 'v', 'q']) assert.match(d[f], DECIMAL, `${what} ${f}`);
  for (const f of ['E', 'O', 'C', 'F', 'L', 'n']) assert.ok(Number.isSafeInteger(d[f]), `${what} ${f}`);
  assert.ok(d.n > 0, `${what}: trades in the window`);
  assert.equal(d.n, d.L - d.F + 1, `${what}: n = L - F + 1`);
  // The servers started before the feed: they saw every trade, the window holds them all from trade 1.
  assert.equal(d.F, 1, `${what}: the window starts at the feed's first trade`);
  assert.ok(d.O <= d.C && d.C - d.O < windowMs + 60_000, `${what}: O..C within the window and a minute`);
  assert.ok(Number(d.l) <= Number(d.o) && Number(d.o) <= Number(d.h) && Number(d.l) <= Number(d.c) && Number(d.c) <= Number(d.h), `${what}: l <= o,c <= h`);
  assert.ok(Number(d.l) <= Number(d.w) && Number(d.w) <= Number(d.h), `${what}: l <= w <= h`);
  const pd = decimals(d.c);
  assert.equal(units(d.p, pd), units(d.c, pd) - units(d.o, pd), `${what}: p = c - o`);
}

describe('rolling-window tickers: @ticker_<w>, !ticker_<w>@arr, GET /api/v3/ticker', () => {
  let cluster: TestCluster;
  let http: string;
  let wsUrl: string;
  const sockets: WebSocket[] = [];

  before(async () => {
    cluster = await startCluster({ servers: 2, gateways: 1, symbols: 3, rate: 50 });
    http = cluster.gateways[0]!.urls.http!;
    wsUrl = cluster.gateways[0]!.urls.ws!;
  });
  after(async () => {
    for (const s of sockets) s.terminate();
    await cluster?.stop();
  });

  test('JSON streams: Binance shapes, c is trade L, volumes grow by exactly the trades between updates, arrays hold what changed', async () => {
    const ws = new WebSocket(`${wsUrl}/stream?streams=btcusdt@trade/btcusdt@ticker_1h/!ticker_1h@arr/ethusdt@ticker_4h`, { perMessageDeflate: false });
    sockets.push(ws);
    const msgs: Msg[] = [];
    ws.on('message', (d: Buffer) => msgs.push(JSON.parse(d.toString()) as Msg));
    const of = (stream: string) => msgs.filter((m) => m.stream === stream).map((m) => m.data);
    const trades = new Map<number, Msg>();
    await waitFor(() => {
      for (const t of of('btcusdt@trade')) trades.set(t.t, t);
      const seen = of('btcusdt@ticker_1h').filter((d) => trades.has(d.L));
      return seen.length >= 4 && of('!ticker_1h@arr').length >= 3 && of('ethusdt@ticker_4h').length >= 2;
    }, 20_000, 'rolling tickers, arrays and the trades they end at');

    for (const d of of('btcusdt@ticker_1h')) {
      checkRolling(d, '1hTicker', H, 'btcusdt@ticker_1h');
      assert.equal(d.s, 'BTCUSDT');
      assert.equal(typeof d.seq, 'number');
    }
    for (const d of of('ethusdt@ticker_4h')) checkRolling(d, '4hTicker', 4 * H, 'ethusdt@ticker_4h');

    // Against @trade: the last price is trade L's; between two updates (no minute rolls off a fresh feed's
    // hour), volume, quote volume and count grow by exactly the trades in between.
    const rolled = of('btcusdt@ticker_1h').filter((d) => trades.has(d.L));
    for (const d of rolled) assert.equal(d.c, trades.get(d.L)!.p, `c is trade ${d.L}'s price`);
    const [a, b] = [rolled[0]!, rolled.at(-1)!];
    const between = [...trades.values()].filter((t) => t.t > a.L && t.t <= b.L);
    assert.equal(between.length, b.L - a.L, 'every trade in between was seen on @trade');
    const qd = decimals(a.v);
    const pd = decimals(a.c);
    let dv = 0n;
    let dq = 0n;
    for (const t of between) {
      dv += units(t.q, qd);
      dq += units(t.p, pd) * units(t.q, qd);
    }
    assert.equal(units(b.v, qd) - units(a.v, qd), dv, 'v grew by the trades in between');
    assert.equal(units(b.q, pd + qd) - units(a.q, pd + qd), dq, 'q grew by price x qty of the trades in between');
    assert.equal(b.n - a.n, b.L - a.L);
    for (const t of between) {
      assert.ok(Number(t.p) <= Number(b.h) && Number(t.p) >= Number(b.l), 'every trade within [l, h]');
    }

    // Arrays: only rolling objects of known symbols; a symbol appears again only when its window changed; one a second.
    const arrays = msgs.filter((m) => m.stream === '!ticker_1h@arr');
    const last = new Map<string, string>();
    for (const { data } of arrays) {
      assert.ok(Array.isArray(data) && data.length > 0);
      for (const t of data) {
        checkRolling(t, '1hTicker', H, '!ticker_1h@arr');
        assert.ok(['BTCUSDT', 'ETHUSDT', 'BNBUSDT'].includes(t.s), t.s);
        const key = `${t.F}/${t.L}/${t.n}`;
        assert.notEqual(last.get(t.s), key, `${t.s} sent again unchanged`);
        last.set(t.s, key);
      }
    }
    for (let i = 2; i < arrays.length; i++) assert.ok(arrays[i]!.data[0].E - arrays[i - 1]!.data[0].E >= 1000, 'at most one array a second');
    ws.close();
  });

  test('protobuf: Ticker events under @ticker_4h and a TickerArray under !ticker_1d@arr, with seq and the same fields', async () => {
    const ws = new WebSocket(`${wsUrl}/ws?format=protobuf`, { perMessageDeflate: false });
    sockets.push(ws);
    const events: Event[] = [];
    ws.on('message', (d: Buffer) => {
      const f = fromBinary(ServerFrameSchema, d);
      if (f.kind.case === 'event') events.push(f.kind.value);
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(Buffer.from(toBinary(ClientFrameSchema, create(ClientFrameSchema, { id: 1n, kind: { case: 'subscribe', value: { topics: ['btcusdt@ticker_4h', '!ticker_1d@arr'] } } }))));
    const tickers = () => events.filter((e) => e.topic === 'btcusdt@ticker_4h');
    const arrays = () => events.filter((e) => e.topic === '!ticker_1d@arr');
    await waitFor(() => tickers().length >= 3 && arrays().length >= 2, 15_000, 'protobuf rolling events');
    const seqs = tickers().map((e) => Number(e.seq));
    assert.ok(seqs.every((s, i) => i === 0 || s === seqs[i - 1]! + 1), 'contiguous seq');
    for (const e of tickers()) {
      assert.equal(e.payload.case, 'ticker');
      const t = e.payload.value as Extract<Event['payload'], { case: 'ticker' }>['value'];
      assert.equal(t.symbol, 'BTCUSDT');
      for (const f of [t.openPrice, t.highPrice, t.lowPrice, t.lastPrice, t.volume, t.quoteVolume, t.weightedAvgPrice, t.priceChange]) assert.match(f, DECIMAL);
      assert.equal(t.tradeCount, t.lastTradeId - t.firstTradeId + 1n);
      assert.ok(t.openTime <= t.closeTime);
    }
    for (const e of arrays()) {
      assert.equal(e.payload.case, 'tickerArray');
      const list = (e.payload.value as Extract<Event['payload'], { case: 'tickerArray' }>['value']).tickers;
      assert.ok(list.length > 0 && list.every((t) => t.tradeCount === t.lastTradeId - t.firstTradeId + 1n));
    }
    ws.close();
  });

  test('GET /api/v3/ticker: FULL and MINI shapes, windowSize, lastPrice is trade lastId, weights and errors as Binance', async () => {
    const get = async (qs: string) => {
      const r = await fetch(`${http}/api/v3/ticker?${qs}`);
      return { status: r.status, weight: Number(r.headers.get('x-mbx-used-weight-1m')), body: (await r.json()) as any };
    };
    await waitFor(async () => (await get('symbol=BTCUSDT&windowSize=1h')).status === 200, 10_000, 'a first window');
    const one = await get('symbol=BTCUSDT&windowSize=1h');
    assert.equal(one.status, 200);
    assert.deepEqual(Object.keys(one.body), FULL_KEYS);
    const b = one.body;
    assert.equal(b.symbol, 'BTCUSDT');
    for (const f of FULL_KEYS.slice(1, 10)) assert.match(b[f], DECIMAL, f);
    assert.equal(b.firstId, 1);
    assert.equal(b.count, b.lastId - b.firstId + 1);
    assert.ok(b.openTime <= b.closeTime && b.closeTime - b.openTime < H + 60_000);

    // The last price is trade lastId's, as @aggTrades has it.
    const trades = (await (await fetch(`${http}/api/v3/aggTrades?symbol=BTCUSDT&fromId=${b.lastId}&limit=1`)).json()) as Array<{ a: number; p: string }>;
    assert.equal(trades[0]?.a, b.lastId);
    assert.equal(trades[0]?.p, b.lastPrice);

    // A 1-minute window holds no more than the hour; the default window is 1d.
    const minute = (await get('symbol=BTCUSDT&windowSize=1m')).body;
    assert.ok(minute.count <= (await get('symbol=BTCUSDT&windowSize=1h')).body.count);
    // Windows open on a minute, or when this cluster's trades began (a fresh feed: the hour's open is that instant).
    assert.ok(minute.openTime % 60_000 === 0 || minute.openTime === b.openTime, `1m window opens at ${minute.openTime}`);
    assert.ok(minute.openTime >= b.openTime);
    assert.equal((await get('symbol=BTCUSDT')).status, 200);

    const mini = await get(`symbols=${encodeURIComponent('["BTCUSDT","ETHUSDT","BNBUSDT"]')}&windowSize=7d&type=MINI`);
    assert.equal(mini.status, 200);
    assert.equal(mini.body.length, 3);
    for (const t of mini.body) assert.deepEqual(Object.keys(t), MINI_KEYS);
    assert.deepEqual(mini.body.map((t: Msg) => t.symbol), ['BTCUSDT', 'ETHUSDT', 'BNBUSDT']);
    // 4 a symbol: three symbols cost 12 (unless the UTC minute turned in between and the count started again).
    const w1 = (await get('symbol=ETHUSDT&windowSize=2h')).weight;
    const w2 = (await get(`symbols=${encodeURIComponent('["BTCUSDT","ETHUSDT","BNBUSDT"]')}`)).weight;
    assert.ok(w2 - w1 === 12 || w2 === 12, `weight ${w1} then ${w2}`);
    assert.deepEqual((await get(`symbols=${encodeURIComponent('["BTCUSDT"]')}&symbolStatus=HALT`)).body, []);

    const errors: Array<[string, number, RegExp]> = [
      ['windowSize=1h', -1102, /'symbol' or 'symbols'/],
      ['symbol=', -1102, /Mandatory parameter 'symbol'/],
      ['symbol=BTCUSDT&windowSize=1d2h', -1100, /windowSize/],
      ['symbol=BTCUSDT&windowSize=60m', -1100, /windowSize/],
      ['symbol=BTCUSDT&windowSize=8d', -1100, /windowSize/],
      ['symbol=BTCUSDT&type=BIG', -1100, /type/],
      ['symbol=NOPEUSDT', -1121, /Invalid symbol/],
      ['symbol=BTC/USDT', -1100, /symbol/],
      [`symbol=BTCUSDT&symbols=${encodeURIComponent('["ETHUSDT"]')}`, -1101, /cannot be sent together/],
      [`symbols=${encodeURIComponent(JSON.stringify(Array.from({ length: 101 }, () => 'BTCUSDT')))}`, -1101, /maximum allowed up to 100/],
      ['symbol=BTCUSDT&symbolStatus=HALT', -1220, /does not match/],
      ['symbol=BTCUSDT&symbolStatus=NOPE', -1122, /Invalid symbolStatus/],
    ];
    for (const [qs, code, re] of errors) {
      const r = await get(qs);
      assert.equal(r.status, 400, qs);
      assert.deepEqual(Object.keys(r.body), ['code', 'msg'], qs);
      assert.equal(r.body.code, code, qs);
      assert.match(r.body.msg, re, qs);
    }
  });
});
