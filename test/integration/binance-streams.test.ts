// Binance's stream surface beyond trades, tickers and diff depth, against real
// processes (feed → NATS → two push-servers → gateway), over raw WebSockets:
// every kline interval and the +08:00 variants, partial book depth, @aggTrade;
// their shapes and types as Binance documents them, their consistency with
// the streams they come from, and a clear error for what is not provided.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';
import { BINANCE_KLINE_INTERVALS, KLINE_TZ_OFFSET_MS, klineNextOpen, klineOpenTime, type KlineInterval } from '../../system/common/topics.ts';

type Msg = Record<string, any>;

function connect(url: string): { ws: WebSocket; opened: Promise<void>; msgs: Msg[] } {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const msgs: Msg[] = [];
  ws.on('message', (d: Buffer) => msgs.push(JSON.parse(d.toString()) as Msg));
  ws.on('error', () => {});
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
  return { ws, opened, msgs };
}

const DECIMAL = /^\d+(\.\d+)?$/;

describe('Binance streams: klines of every interval, partial depth, aggTrade', () => {
  let cluster: TestCluster;
  let wsUrl: string;
  let http: string;
  const sockets: WebSocket[] = [];
  const open = async (path: string) => {
    const c = connect(`${wsUrl}${path}`);
    sockets.push(c.ws);
    await c.opened;
    return c;
  };
  const request = async (c: { ws: WebSocket; msgs: Msg[] }, body: Msg): Promise<Msg> => {
    c.ws.send(JSON.stringify(body));
    let reply: Msg | undefined;
    await waitFor(() => (reply = c.msgs.find((m) => m.id === body.id)) !== undefined, 10_000, `reply to ${JSON.stringify(body)}`);
    return reply!;
  };

  before(async () => {
    cluster = await startCluster({ servers: 2, gateways: 1, symbols: 3, rate: 50 });
    http = cluster.gateways[0]!.urls.http!;
    wsUrl = cluster.gateways[0]!.urls.ws!;
    await waitFor(async () => (await fetch(`${http}/api/v3/depth?symbol=BTCUSDT`)).status === 200, 10_000, 'a first depth snapshot');
  });
  after(async () => {
    for (const s of sockets) s.terminate();
    await cluster?.stop();
  });

  test('every kline interval and +08:00: Binance shape, aligned open/close times, 1s candles close every second', async () => {
    const names = [...BINANCE_KLINE_INTERVALS.map((i) => `btcusdt@kline_${i}`), 'btcusdt@kline_1d@+08:00', 'btcusdt@kline_1M@+08:00', 'btcusdt@kline_1h@+08:00'];
    // As clients write it: `+` unescaped in the query string (Binance reads it as a plus, not a space).
    const c = await open(`/stream?streams=${names.join('/')}`);
    const of = (stream: string) => c.msgs.filter((m) => m.stream === stream);
    // Every interval updates at least every 2 s: two rounds of each within ~6 s.
    await waitFor(() => names.every((n) => of(n).length >= 2), 15_000, 'updates on every kline stream');
    await waitFor(() => of('btcusdt@kline_1s').filter((m) => m.data.k.x).length >= 2, 10_000, 'closed 1s candles');
    for (const name of names) {
      const tz = name.endsWith('@+08:00');
      const interval = name.slice('btcusdt@kline_'.length).replace('@+08:00', '') as KlineInterval;
      const offset = tz ? KLINE_TZ_OFFSET_MS : 0;
      for (const { data } of of(name)) {
        assert.equal(data.e, 'kline', name);
        assert.equal(data.s, 'BTCUSDT');
        const k = data.k;
        assert.equal(k.i, interval, `${name}: k.i is Binance's interval name`);
        for (const f of ['o', 'c', 'h', 'l', 'v', 'q', 'V', 'Q']) assert.match(k[f], DECIMAL, `${name} k.${f}`);
        for (const f of ['t', 'T', 'f', 'L', 'n']) assert.ok(Number.isSafeInteger(k[f]), `${name} k.${f}`);
        assert.equal(typeof k.x, 'boolean');
        // Open and close times are the candle's boundaries (weeks from Monday, months by the calendar, in the stream's zone).
        assert.equal(k.t, klineOpenTime(interval, k.t, offset), `${name}: open time on a boundary`);
        assert.equal(k.T, klineNextOpen(interval, k.t, offset) - 1, `${name}: close time`);
        if (!k.x) assert.ok(k.t <= data.E && data.E <= k.T + 1, `${name}: in-progress candle holds its event time`);
        assert.ok(Number(k.l) <= Number(k.o) && Number(k.o) <= Number(k.h) && Number(k.l) <= Number(k.c) && Number(k.c) <= Number(k.h), `${name}: l ≤ o,c ≤ h`);
      }
    }
    // A closed 1s candle is followed by the next second's candle.
    const closed = of('btcusdt@kline_1s').filter((m) => m.data.k.x).map((m) => m.data.k.t as number);
    assert.ok(closed[1]! - closed[0]! >= 1000 && closed[1]! % 1000 === 0);
    // 1h in UTC+8 is the UTC candle (derived by the server): same candles, under its own stream name.
    const utc = new Map(of('btcusdt@kline_1h').map((m) => [`${m.data.k.n}/${m.data.k.c}/${m.data.E}`, m.data.k]));
    const tzEvents = of('btcusdt@kline_1h@+08:00');
    assert.ok(tzEvents.some((m) => utc.has(`${m.data.k.n}/${m.data.k.c}/${m.data.E}`)), 'the +08:00 1h candle equals the UTC 1h candle');
    for (const m of tzEvents) {
      const twin = utc.get(`${m.data.k.n}/${m.data.k.c}/${m.data.E}`);
      if (twin) assert.deepEqual(m.data.k, twin);
    }
    // 1d in UTC+8 opens at 16:00 UTC; its trade counts differ from the UTC day's only by what happened between the two starts.
    const day8 = of('btcusdt@kline_1d@+08:00').at(-1)!.data.k;
    assert.equal(new Date(day8.t).getUTCHours(), 16);
    c.ws.close();
  });

  test('SUBSCRIBE keeps 1M (month) apart from 1m (minute); LIST_SUBSCRIPTIONS names them as Binance spells them', async () => {
    const c = await open('/ws');
    assert.deepEqual(await request(c, { method: 'SUBSCRIBE', params: ['btcusdt@kline_1M', 'btcusdt@kline_1m'], id: 1 }), { result: null, id: 1 });
    const list = await request(c, { method: 'LIST_SUBSCRIPTIONS', id: 2 });
    assert.deepEqual([...list.result].sort(), ['btcusdt@kline_1M', 'btcusdt@kline_1m']);
    await waitFor(() => c.msgs.some((m) => m.k?.i === '1M') && c.msgs.some((m) => m.k?.i === '1m'), 10_000, 'both candles');
    const month = c.msgs.find((m) => m.k?.i === '1M')!.k;
    assert.equal(new Date(month.t).getUTCDate(), 1, 'a month candle opens on the 1st');
    assert.deepEqual(await request(c, { method: 'UNSUBSCRIBE', params: ['btcusdt@kline_1M'], id: 3 }), { result: null, id: 3 });
    assert.deepEqual((await request(c, { method: 'LIST_SUBSCRIPTIONS', id: 4 })).result, ['btcusdt@kline_1m']);
    c.ws.close();
  });

  test('partial depth @depth5/10/20 (1 s and 100 ms): Binance shape, sorted, and the top of the diff-stream book at the same update id', async () => {
    const c = await open('/stream?streams=ethusdt@depth@100ms/ethusdt@depth5/ethusdt@depth10@100ms/ethusdt@depth20');
    // The local book from REST + diffs, its top 10 recorded at every update id it reaches.
    await waitFor(() => c.msgs.some((m) => m.stream === 'ethusdt@depth@100ms'), 10_000, 'a first diff');
    const snap = (await (await fetch(`${http}/api/v3/depth?symbol=ETHUSDT&limit=1000`)).json()) as { lastUpdateId: number; bids: [string, string][]; asks: [string, string][] };
    await waitFor(() => c.msgs.filter((m) => m.stream === 'ethusdt@depth10@100ms').length >= 15 && c.msgs.filter((m) => m.stream === 'ethusdt@depth5').length >= 2, 15_000, 'partial depth events');
    const bids = new Map(snap.bids);
    const asks = new Map(snap.asks);
    let last = snap.lastUpdateId;
    const tops = new Map<number, string>();
    const top = (n: number) => JSON.stringify({
      bids: [...bids].sort((a, b) => Number(b[0]) - Number(a[0])).slice(0, n),
      asks: [...asks].sort((a, b) => Number(a[0]) - Number(b[0])).slice(0, n),
    });
    tops.set(last, top(10));
    for (const { stream, data } of c.msgs) {
      if (stream !== 'ethusdt@depth@100ms' || data.e !== 'depthUpdate' || data.u <= last) continue;
      assert.ok(data.U <= last + 1, 'diffs continue the snapshot');
      for (const [side, levels] of [[bids, data.b], [asks, data.a]] as const) {
        for (const [p, q] of levels as [string, string][]) {
          if (Number(q) === 0) side.delete(p);
          else side.set(p, q);
        }
      }
      last = data.u;
      tops.set(last, top(10));
    }
    let compared = 0;
    for (const { stream, data } of c.msgs) {
      if (!/@depth(5|10|20)/.test(stream)) continue;
      const levels = Number(/@depth(\d+)/.exec(stream)![1]);
      assert.equal(data.e, undefined, 'Binance partial depth has no event type');
      assert.ok(Number.isSafeInteger(data.lastUpdateId) && data.lastUpdateId > 0);
      assert.equal(data.bids.length, levels, `${stream}: ${levels} bids (the feed keeps 20 a side)`);
      assert.equal(data.asks.length, levels);
      for (const [p, q] of [...data.bids, ...data.asks]) {
        assert.match(p, /^\d+\.\d{2}$/, 'ETHUSDT tick size');
        assert.match(q, /^\d+\.\d{4}$/, 'ETHUSDT step size');
      }
      for (let i = 1; i < levels; i++) {
        assert.ok(Number(data.bids[i][0]) < Number(data.bids[i - 1][0]), 'bids descend');
        assert.ok(Number(data.asks[i][0]) > Number(data.asks[i - 1][0]), 'asks ascend');
      }
      assert.ok(Number(data.bids[0][0]) < Number(data.asks[0][0]), 'not crossed');
      const local = tops.get(data.lastUpdateId);
      if (stream === 'ethusdt@depth10@100ms' && local) {
        assert.equal(JSON.stringify({ bids: data.bids, asks: data.asks }), local, `depth10@100ms at u=${data.lastUpdateId} is the diff book's top 10`);
        compared++;
      }
    }
    assert.ok(compared >= 5, `compared ${compared} partial books with the diff-stream book`);
    // The 1 s variant comes about once a second, the 100 ms one about ten times as often.
    const t5 = c.msgs.filter((m) => m.stream === 'ethusdt@depth5').map((m) => m.data.pt as number);
    // (The first is the state at subscription, built from the server's book then.)
    assert.ok(t5.every((t, i) => i <= 1 || t - t5[i - 1]! >= 900_000), `@depth5 at most once a second: ${t5.map((t) => t - t5[0]!).join(' ')}`);
    c.ws.close();
  });

  test('@aggTrade: Binance shape; each aggregate is one trade of @trade (a = f = l = t, same price, qty, time, side)', async () => {
    const c = await open('/stream?streams=bnbusdt@aggTrade/bnbusdt@trade');
    await waitFor(() => c.msgs.filter((m) => m.stream === 'bnbusdt@aggTrade').length >= 20, 15_000, 'aggTrade events');
    const trades = new Map(c.msgs.filter((m) => m.stream === 'bnbusdt@trade').map((m) => [m.data.t, m.data]));
    const aggs = c.msgs.filter((m) => m.stream === 'bnbusdt@aggTrade').map((m) => m.data);
    let matched = 0;
    for (const a of aggs) {
      assert.equal(a.e, 'aggTrade');
      assert.equal(a.s, 'BNBUSDT');
      for (const f of ['a', 'f', 'l', 'T', 'E']) assert.ok(Number.isSafeInteger(a[f]), `aggTrade.${f}`);
      assert.match(a.p, DECIMAL);
      assert.match(a.q, DECIMAL);
      assert.equal(typeof a.m, 'boolean');
      assert.equal(a.M, true);
      assert.ok(a.f <= a.l);
      const t = trades.get(a.f);
      if (!t) continue;
      assert.deepEqual([a.p, a.q, a.T, a.m], [t.p, t.q, t.T, t.m], `aggTrade ${a.a} is trade ${t.t}`);
      matched++;
    }
    assert.ok(matched >= 15, `matched ${matched} aggregates with their trades`);
    for (let i = 1; i < aggs.length; i++) assert.equal(aggs[i].a, aggs[i - 1].a + 1, 'aggregate ids consecutive');
    c.ws.close();
  });

  test('@avgPrice: Binance shape, at most once a second, the 5-minute average REST /api/v3/avgPrice gives', async () => {
    const c = await open('/ws/bnbusdt@avgPrice');
    await waitFor(() => c.msgs.filter((m) => m.e === 'avgPrice').length >= 3, 15_000, 'three avgPrice events');
    const evs = c.msgs.filter((m) => m.e === 'avgPrice');
    for (const a of evs) {
      assert.equal(a.s, 'BNBUSDT');
      assert.equal(a.i, '5m');
      assert.match(a.w, /^\d+\.\d{2}$/, 'BNBUSDT tick size');
      assert.ok(Number.isSafeInteger(a.T) && a.T <= a.E);
    }
    for (let i = 2; i < evs.length; i++) assert.ok(evs[i].pt - evs[i - 1].pt >= 1_000_000, 'one a second at most (after the first, sent on subscribe)');
    const rest = (await (await fetch(`${http}/api/v3/avgPrice?symbol=BNBUSDT`)).json()) as { mins: number; price: string };
    assert.equal(rest.mins, 5);
    // Both average the same trades over the same window, a moment apart: within a few ticks of each other.
    assert.ok(Math.abs(Number(rest.price) - Number(evs.at(-1)!.w)) / Number(rest.price) < 0.001, `stream ${evs.at(-1)!.w} vs REST ${rest.price}`);
    c.ws.close();
  });

  test('!ticker@arr and !miniTicker@arr: arrays of every symbol\'s changed ticker, one a second, equal to the per-symbol streams', async () => {
    const c = await open('/stream?streams=!ticker@arr/!miniTicker@arr/btcusdt@ticker');
    await waitFor(() => c.msgs.filter((m) => m.stream === '!ticker@arr').length >= 3 && c.msgs.filter((m) => m.stream === '!miniTicker@arr').length >= 2, 15_000, 'arrays');
    const arrays = c.msgs.filter((m) => m.stream === '!ticker@arr').map((m) => m.data as Msg[]);
    for (const arr of arrays) {
      assert.ok(Array.isArray(arr) && arr.length >= 1 && arr.length <= 3);
      for (const t of arr) {
        assert.equal(t.e, '24hrTicker');
        assert.ok(['BTCUSDT', 'ETHUSDT', 'BNBUSDT'].includes(t.s));
        for (const f of ['p', 'w', 'c', 'o', 'h', 'l', 'v', 'q', 'b', 'a']) assert.match(t[f], /^-?\d+(\.\d+)?$/, f);
      }
      assert.equal(new Set(arr.map((t) => t.s)).size, arr.length, 'one entry per symbol');
    }
    assert.ok(arrays.slice(1).some((a) => a.length === 3), 'each second, every symbol that changed (the feed ticks all of them)');
    const minis = c.msgs.filter((m) => m.stream === '!miniTicker@arr').flatMap((m) => m.data as Msg[]);
    assert.ok(minis.every((t) => t.e === '24hrMiniTicker' && t.b === undefined));
    // The BTCUSDT entries are the @ticker events themselves.
    const single = new Map(c.msgs.filter((m) => m.stream === 'btcusdt@ticker').map((m) => [m.data.C, m.data]));
    const inArrays = arrays.flat().filter((t) => t.s === 'BTCUSDT');
    assert.ok(inArrays.some((t) => single.has(t.C)));
    for (const t of inArrays) {
      const one = single.get(t.C);
      if (one) assert.deepEqual({ ...t, E: 0 }, { ...Object.fromEntries(Object.entries(one).filter(([k]) => !['seq', 'ep', 'pt'].includes(k))), E: 0 });
    }
    c.ws.close();
  });

  test('SET_PROPERTY / GET_PROPERTY combined switch the framing live; bad property requests get Binance\'s errors', async () => {
    const c = await open('/ws/btcusdt@trade');
    assert.deepEqual(await request(c, { method: 'GET_PROPERTY', params: ['combined'], id: 1 }), { result: false, id: 1 });
    await waitFor(() => c.msgs.some((m) => m.e === 'trade'), 10_000, 'a raw trade');
    assert.deepEqual(await request(c, { method: 'SET_PROPERTY', params: ['combined', true], id: 2 }), { result: null, id: 2 });
    assert.deepEqual(await request(c, { method: 'GET_PROPERTY', params: ['combined'], id: 3 }), { result: true, id: 3 });
    const from = c.msgs.length;
    await waitFor(() => c.msgs.slice(from).some((m) => m.stream === 'btcusdt@trade' && m.data?.e === 'trade'), 10_000, 'a combined trade');
    assert.deepEqual(await request(c, { method: 'SET_PROPERTY', params: ['combined', false], id: 4 }), { result: null, id: 4 });
    const back = c.msgs.length;
    await waitFor(() => c.msgs.slice(back).some((m) => m.e === 'trade'), 10_000, 'raw again');
    const errors: Array<[Msg, number, RegExp]> = [
      [{ method: 'SET_PROPERTY', params: ['combined', 'yes'], id: 10 }, 1, /expected Boolean/],
      [{ method: 'SET_PROPERTY', params: ['compressed', true], id: 11 }, 0, /Unknown property/],
      [{ method: 'GET_PROPERTY', params: [7], id: 12 }, 2, /property name must be a string/],
      [{ method: 'GET_PROPERTY', params: ['combined', true], id: 13 }, 2, /too many parameters/],
    ];
    for (const [body, code, re] of errors) {
      const r = await request(c, body);
      assert.equal(r.error?.code, code, JSON.stringify(body));
      assert.match(r.error.msg, re);
    }
    assert.deepEqual(await request(c, { method: 'GET_PROPERTY', params: ['combined'], id: 14 }), { result: false, id: 14 }, 'refused requests changed nothing');
    c.ws.close();
  });

  test('timeUnit=MICROSECOND: event and trade times in µs on the connect URL; a bad unit refuses the connection', async () => {
    const us = await open('/stream?streams=btcusdt@trade/btcusdt@kline_1m&timeUnit=MICROSECOND');
    const ms = await open('/ws/btcusdt@trade?timeUnit=millisecond');
    await waitFor(() => us.msgs.some((m) => m.data?.e === 'trade') && us.msgs.some((m) => m.data?.e === 'kline') && ms.msgs.some((m) => m.e === 'trade'), 10_000, 'trades and klines');
    const t = us.msgs.find((m) => m.data?.e === 'trade')!.data;
    assert.equal(t.E, t.pt, 'E is the event time in µs');
    assert.ok(t.T > 1e15 && t.T % 1000 === 0, `T in µs: ${t.T}`);
    const k = us.msgs.find((m) => m.data?.e === 'kline')!.data.k;
    assert.equal(k.t % 60_000_000, 0, 'kline open time in µs');
    assert.equal(k.T, k.t + 60_000_000 - 1000);
    const m = ms.msgs.find((x) => x.e === 'trade')!;
    assert.ok(m.T < 1e13 && m.E === Math.floor(m.pt / 1000), 'milliseconds by default and for MILLISECOND');
    await assert.rejects(open('/ws/btcusdt@trade?timeUnit=NANOSECOND'), /upgrade refused: 400/);
    us.ws.close();
    ms.ws.close();
  });

  test('REST: uiKlines answers the klines; timeZone 0 accepted, another refused with a Binance error; exchangeInfo permissions filters', async () => {
    const q = 'symbol=BTCUSDT&interval=1m&limit=3';
    const ui = await fetch(`${http}/api/v3/uiKlines?${q}`);
    assert.equal(ui.status, 200);
    const rows = (await ui.json()) as unknown[][];
    assert.ok(Array.isArray(rows));
    assert.equal(ui.headers.get('x-mbx-used-weight-1m') !== null, true, 'weighed like klines');
    for (const tz of ['0', '+00:00', '-0']) assert.equal((await fetch(`${http}/api/v3/klines?${q}&timeZone=${encodeURIComponent(tz)}`)).status, 200, tz);
    for (const [tz, re] of [['8', /not supported/], ['05:45', /not supported/], ['+15', /legal range/], ['abc', /legal range/]] as const) {
      const r = await fetch(`${http}/api/v3/uiKlines?${q}&timeZone=${encodeURIComponent(tz)}`);
      assert.equal(r.status, 400, tz);
      const body = (await r.json()) as { code: number; msg: string };
      assert.deepEqual(Object.keys(body), ['code', 'msg']);
      assert.equal(body.code, -1100);
      assert.match(body.msg, re, tz);
    }
    const info = async (qs: string) => (await (await fetch(`${http}/api/v3/exchangeInfo?${qs}`)).json()) as { symbols: Array<Record<string, unknown>> };
    assert.equal((await info('permissions=SPOT')).symbols.length, 3);
    assert.equal((await info(`permissions=${encodeURIComponent('["MARGIN","SPOT"]')}`)).symbols.length, 3);
    assert.equal((await info('permissions=MARGIN')).symbols.length, 0);
    assert.equal((await info('symbolStatus=HALT')).symbols.length, 0);
    const sym = (await info('symbol=BTCUSDT&showPermissionSets=false')).symbols[0]!;
    assert.equal(sym.permissionSets, undefined);
    assert.deepEqual((await info('symbol=BTCUSDT')).symbols[0]!.permissionSets, [['SPOT']]);
    assert.equal((await fetch(`${http}/api/v3/exchangeInfo?permissions=${encodeURIComponent('["SPOT"')}`)).status, 400);
  });

  test('streams not provided are refused with a reason (SUBSCRIBE and the connect URL), and a refused request changes nothing', async () => {
    const c = await open('/ws/conn1');
    for (const [i, name] of ['!bookTicker', '!ticker_2h@arr', 'btcusdt@ticker_2h', 'btcusdt@blockTrade', 'btcusdt@kline_1d@+09:00', 'btcusdt@depth15'].entries()) {
      const r = await request(c, { method: 'SUBSCRIBE', params: ['btcusdt@trade', name], id: 100 + i });
      assert.equal(r.error?.code, 2, name);
      assert.match(r.error.msg, /not available|invalid|unknown stream/, name);
    }
    assert.deepEqual((await request(c, { method: 'LIST_SUBSCRIPTIONS', id: 200 })).result, []);
    await assert.rejects(open('/ws/btcusdt@ticker_2h'), /upgrade refused: 400/);
    await assert.rejects(open('/stream?streams=btcusdt@trade/!ticker_2h@arr'), /upgrade refused: 400/);
    c.ws.close();
  });
});
