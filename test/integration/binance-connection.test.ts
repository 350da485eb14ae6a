// Binance's connection behaviour and cadences on a real cluster (feed → NATS →
// push-server → gateway) whose market does not move (rate 0: no trades, so
// no diffs): partial depth still comes every window; combined `stream` names
// are Binance's whatever case a client subscribes in; streams are counted
// without duplicates; ping and pong frames count against the inbound limit;
// the connection life (Binance: 24 h) is an option.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';

type Msg = Record<string, any>;
interface Client { ws: WebSocket; msgs: Msg[]; closed: Promise<{ code: number; reason: string }> }

describe('Binance connection behaviour and partial-depth cadence', () => {
  let cluster: TestCluster;
  const sockets: WebSocket[] = [];
  const open = async (base: string, path: string): Promise<Client> => {
    const ws = new WebSocket(`${base}${path}`, { perMessageDeflate: false });
    sockets.push(ws);
    const msgs: Msg[] = [];
    ws.on('message', (d: Buffer) => msgs.push(JSON.parse(d.toString()) as Msg));
    ws.on('error', () => {});
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    return { ws, msgs, closed };
  };
  const request = async (c: Client, body: Msg): Promise<Msg> => {
    c.ws.send(JSON.stringify(body));
    let reply: Msg | undefined;
    await waitFor(() => (reply = c.msgs.find((m) => m.id === body.id)) !== undefined, 10_000, `reply to ${JSON.stringify(body)}`);
    return reply!;
  };
  const ws = () => cluster.gateways[0]!.urls.ws!;

  before(async () => {
    cluster = await startCluster({ servers: 1, gateways: 1, symbols: 2, rate: 0, gateway: { maxStreamsPerConnection: 4 } });
  });
  after(async () => {
    for (const s of sockets) s.terminate();
    await cluster?.stop();
  });

  test('partial depth comes every window (1 s, 100 ms) although the book does not change', async () => {
    const c = await open(ws(), '/stream?streams=btcusdt@depth5/btcusdt@depth10@100ms');
    const of = (s: string) => c.msgs.filter((m) => m.stream === s).map((m) => m.data);
    await waitFor(() => of('btcusdt@depth5').length >= 4 && of('btcusdt@depth10@100ms').length >= 20, 20_000, 'partial depth events');
    for (const [stream, windowUs] of [['btcusdt@depth5', 1_000_000], ['btcusdt@depth10@100ms', 100_000]] as const) {
      const events = of(stream);
      // No trade, no diff: the same book every time, sent anyway.
      assert.equal(new Set(events.map((e) => e.lastUpdateId)).size, 1, `${stream}: one unchanged book`);
      // After the state sent at subscription, one event per window, on the window's boundary.
      const pts = events.slice(1).map((e) => e.pt as number);
      for (let i = 0; i < pts.length; i++) {
        assert.equal(pts[i]! % windowUs, 0, `${stream}: on a window boundary`);
        if (i > 0) assert.ok(pts[i]! > pts[i - 1]!, `${stream}: never two in one window`);
      }
    }
    c.ws.close();
  });

  test('combined `stream` names and LIST_SUBSCRIPTIONS are Binance\'s, whatever case the client subscribed in', async () => {
    const c = await open(ws(), '/ws/1');
    assert.deepEqual(await request(c, { method: 'SET_PROPERTY', params: ['combined', true], id: 1 }), { result: null, id: 1 });
    assert.deepEqual(await request(c, { method: 'SUBSCRIBE', params: ['BTCUSDT@miniTicker', 'BTCUSDT@kline_1M', '!MINITICKER@arr', 'ETHUSDT@TICKER'], id: 2 }), { result: null, id: 2 });
    const want = ['btcusdt@miniTicker', 'btcusdt@kline_1M', '!miniTicker@arr', 'ethusdt@ticker'];
    await waitFor(() => want.every((s) => c.msgs.some((m) => m.stream === s)), 15_000, `events of ${want.join(' ')}`);
    assert.deepEqual([...new Set(c.msgs.filter((m) => m.stream).map((m) => m.stream))].sort(), [...want].sort(), 'no other spelling');
    assert.equal(c.msgs.find((m) => m.stream === 'btcusdt@kline_1M')!.data.k.i, '1M', 'the month, not the minute');
    assert.deepEqual((await request(c, { method: 'LIST_SUBSCRIPTIONS', id: 3 })).result.sort(), [...want].sort());
    c.ws.close();
  });

  test('streams per connection are counted without duplicates (limit 4 here)', async () => {
    const c = await open(ws(), '/stream?streams=btcusdt@ticker/BTCUSDT@ticker/btcusdt@trade/btcusdt@trade/btcusdt@miniTicker/btcusdt@kline_1m');
    assert.deepEqual(await request(c, { method: 'SUBSCRIBE', params: ['btcusdt@ticker', 'BTCUSDT@TRADE', 'btcusdt@kline_1m', 'btcusdt@kline_1m'], id: 1 }), { result: null, id: 1 });
    assert.deepEqual((await request(c, { method: 'LIST_SUBSCRIPTIONS', id: 2 })).result.sort(), ['btcusdt@kline_1m', 'btcusdt@miniTicker', 'btcusdt@ticker', 'btcusdt@trade']);
    const refused = await request(c, { method: 'SUBSCRIBE', params: ['ethusdt@ticker'], id: 3 });
    assert.equal(refused.error?.code, 4, JSON.stringify(refused));
    c.ws.close();
  });

  test('ping frames and unsolicited pongs count against the inbound message limit; a client that keeps flooding is closed', async () => {
    const c = await open(ws(), '/ws');
    // 5 a second with a burst of 20: thirty pings at once leave nothing for the request behind them.
    for (let i = 0; i < 30; i++) c.ws.ping();
    c.ws.send(JSON.stringify({ method: 'LIST_SUBSCRIPTIONS', id: 1 }));
    await waitFor(() => c.msgs.some((m) => m.error), 10_000, 'a rate-limit error');
    assert.equal(c.msgs.find((m) => m.error)!.error.code, 5);
    assert.equal(c.msgs.some((m) => m.id === 1 && 'result' in m), false, 'the request was not served');
    for (let i = 0; i < 60; i++) c.ws.ping();
    assert.deepEqual(await c.closed, { code: 1008, reason: 'too many requests' });
    // Pongs that answer no heartbeat of the gateway's count the same.
    const p = await open(ws(), '/ws');
    for (let i = 0; i < 30; i++) p.ws.pong();
    p.ws.send(JSON.stringify({ method: 'LIST_SUBSCRIPTIONS', id: 1 }));
    await waitFor(() => p.msgs.some((m) => m.error || m.id === 1), 10_000, 'an answer');
    assert.equal(p.msgs[0]!.error?.code, 5, JSON.stringify(p.msgs[0]));
    p.ws.close();
  });

  test('the connection life (Binance: 24 h) is an option: past it the gateway closes with 1001', async () => {
    const gw = await cluster.startGateway(2, { maxConnectionLifeMs: 1_000 });
    const c = await open(gw.urls.ws!, '/ws/btcusdt@ticker');
    const closed = await c.closed;
    assert.equal(closed.code, 1001);
    assert.match(closed.reason, /connection life/);
    assert.ok(c.msgs.length > 0, 'it carried events until then');
  });
});
