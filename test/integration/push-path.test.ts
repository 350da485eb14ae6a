// The whole push path with real processes: feed → NATS → push-server →
// push-gateway → WebSocket clients (JSON and protobuf).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import { ClientFrameSchema } from '../../proto/gen/client_pb.js';
import { adminJson, startCluster, type TestCluster } from '../helpers/cluster.ts';
import { TestClient, contiguous } from '../helpers/ws-client.ts';
import WebSocket from 'ws';

/** Status and body of a refused WebSocket upgrade. */
function refusedUpgrade(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const w = new WebSocket(url);
    w.on('open', () => reject(new Error(`upgrade to ${url} was accepted`)));
    w.on('error', () => {});
    w.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
  });
}

describe('push path: feed → NATS → server → gateway → clients', () => {
  let cluster: TestCluster;
  let ws: string;
  let http: string;
  let admin: string;
  const clients: TestClient[] = [];
  const client = (path: string) => {
    const c = new TestClient(`${ws}${path}`);
    clients.push(c);
    return c;
  };

  before(async () => {
    cluster = await startCluster({ servers: 1, gateways: 1, symbols: 3, rate: 20, gateway: { maxPayloadBytes: 4096, inboundRatePerSec: 20, inboundBurst: 20, inboundViolationsToClose: 30 } });
    ws = cluster.gateways[0]!.urls.ws!;
    http = cluster.gateways[0]!.urls.http!;
    admin = cluster.gateways[0]!.urls.admin!;
  });
  after(async () => {
    for (const c of clients) c.close();
    await cluster?.stop();
  });

  test('the router hands out the gateway and the gateway lists the feed symbols', async () => {
    const g = (await (await fetch(`${cluster.routerUrl}/v1/gateways?protocol=ws`)).json()) as { gateways: { id: string; url: string }[] };
    assert.equal(g.gateways[0]!.url, ws);
    const info = (await (await fetch(`${http}/api/v3/exchangeInfo`)).json()) as { symbols: { symbol: string; baseAsset: string }[] };
    assert.deepEqual(info.symbols.map((s) => s.symbol).sort(), ['BNBUSDT', 'BTCUSDT', 'ETHUSDT']);
    assert.equal(info.symbols.find((s) => s.symbol === 'BTCUSDT')!.baseAsset, 'BTC');
  });

  test('combined JSON streams: ticker, kline, depth and trade with strictly increasing sequence numbers', async () => {
    const c = client('/stream?streams=btcusdt@ticker/btcusdt@kline_1m/btcusdt@depth/btcusdt@trade');
    await c.opened;
    await c.waitFor(() => ['btcusdt@ticker', 'btcusdt@kline_1m', 'btcusdt@depth', 'btcusdt@trade'].every((t) => (c.seqs.get(t)?.length ?? 0) >= 5), 15_000, 'five events of every topic');
    for (const [topic, seqs] of c.seqs) {
      assert.ok(contiguous(seqs), `${topic} seqs contiguous: ${seqs.join(',')}`);
    }
    const ticker = c.json.find((m) => m.stream === 'btcusdt@ticker')!.data!;
    assert.equal(ticker.e, '24hrTicker');
    assert.equal(ticker.s, 'BTCUSDT');
    for (const k of ['E', 'c', 'o', 'h', 'l', 'v', 'b', 'a', 'pt']) assert.ok(k in ticker, `ticker has ${k}`);
    const kline = c.json.find((m) => m.stream === 'btcusdt@kline_1m')!.data! as { e: string; k: Record<string, unknown> };
    assert.equal(kline.e, 'kline');
    assert.equal(kline.k.i, '1m');
    for (const k of ['t', 'T', 'o', 'c', 'h', 'l', 'v', 'x']) assert.ok(k in kline.k, `kline has k.${k}`);
    // Depth: a snapshot first, then diffs that continue exactly from its lastUpdateId.
    const depth = c.json.filter((m) => m.stream === 'btcusdt@depth').map((m) => m.data!);
    assert.equal(depth[0]!.e, 'depthSnapshot');
    let lastU = depth[0]!.lastUpdateId as number;
    for (const d of depth.slice(1)) {
      assert.equal(d.e, 'depthUpdate');
      assert.ok((d.U as number) <= lastU + 1 && (d.u as number) >= lastU + 1, `diff U=${d.U} u=${d.u} continues from ${lastU}`);
      lastU = d.u as number;
    }
    // The gateway's own latency stages cover the events it just wrote: pt → in, pt → out, out ≥ in.
    type Lat = { count: number; p50Ms: number; maxMs: number; arrival: { count: number; p50Ms: number } };
    const lat = await adminJson<Lat>(`${admin}/admin/egress-latency?reset=1`);
    assert.ok(lat.count > 0 && lat.arrival.count > 0, `stages recorded: ${JSON.stringify(lat)}`);
    assert.ok(lat.p50Ms >= lat.arrival.p50Ms, 'out of the gateway comes after into it');
    assert.ok(lat.maxMs < 10_000, 'latencies are plausible (same clock as the feed)');
    const after = await adminJson<Lat>(`${admin}/admin/egress-latency`);
    assert.ok(after.count < lat.count, 'reset=1 started a new window');
  });

  test('raw /ws/<stream> delivers unwrapped events; LIST_SUBSCRIPTIONS and UNSUBSCRIBE answer by id', async () => {
    const c = client('/ws/ethusdt@trade');
    await c.opened;
    await c.waitFor(() => c.json.some((m) => m.e === 'trade'), 10_000, 'a raw trade');
    const t = c.json.find((m) => m.e === 'trade')!;
    assert.equal(t.s, 'ETHUSDT');
    assert.equal(t.stream, undefined);
    c.send({ method: 'SUBSCRIBE', params: ['ethusdt@ticker', 'BNBUSDT@trade'], id: 1 });
    assert.deepEqual(await c.reply(1), { result: null, id: 1 });
    c.send({ method: 'LIST_SUBSCRIPTIONS', id: 2 });
    assert.deepEqual(((await c.reply(2)).result as string[]).sort(), ['bnbusdt@trade', 'ethusdt@ticker', 'ethusdt@trade']);
    c.send({ method: 'UNSUBSCRIBE', params: ['ethusdt@trade'], id: 'three' });
    assert.deepEqual(await c.reply('three'), { result: null, id: 'three' });
    c.send({ method: 'LIST_SUBSCRIPTIONS', id: 4 });
    assert.deepEqual(((await c.reply(4)).result as string[]).sort(), ['bnbusdt@trade', 'ethusdt@ticker']);
  });

  test('protobuf frames: subscribe, events with increasing seq, list', async () => {
    const c = client('/ws?format=protobuf');
    await c.opened;
    const frame = (f: Parameters<typeof create<typeof ClientFrameSchema>>[1]) => Buffer.from(toBinary(ClientFrameSchema, create(ClientFrameSchema, f)));
    c.ws.send(frame({ id: 11n, kind: { case: 'subscribe', value: { topics: ['solusdt@ticker', 'btcusdt@trade', 'btcusdt@depth'] } } }));
    await c.waitFor(() => c.frames.some((f) => f.kind.case === 'error' || f.kind.case === 'result'), 5_000, 'subscribe answer');
    // solusdt is not among the 3 symbols the feed runs: the whole request is refused.
    const err = c.frames.find((f) => f.kind.case === 'error');
    assert.ok(err && err.kind.case === 'error' && /unknown symbol "solusdt"/.test(err.kind.value.msg), 'unknown symbol refused');
    c.ws.send(frame({ id: 12n, kind: { case: 'subscribe', value: { topics: ['btcusdt@trade', 'btcusdt@depth'] } } }));
    await c.waitFor(() => (c.seqs.get('btcusdt@trade')?.length ?? 0) >= 5 && (c.seqs.get('btcusdt@depth')?.length ?? 0) >= 5, 10_000, 'protobuf events');
    assert.ok(contiguous(c.seqs.get('btcusdt@trade')!));
    assert.ok(contiguous(c.seqs.get('btcusdt@depth')!));
    const firstDepth = c.frames.find((f) => f.kind.case === 'event' && f.kind.value.topic === 'btcusdt@depth');
    assert.equal(firstDepth?.kind.case === 'event' && firstDepth.kind.value.payload.case, 'depthSnapshot');
    c.ws.send(frame({ id: 13n, kind: { case: 'listSubscriptions', value: {} } }));
    await c.waitFor(() => c.frames.some((f) => f.kind.case === 'result' && f.kind.value.id === 13n), 5_000, 'list result');
    const list = c.frames.find((f) => f.kind.case === 'result' && f.kind.value.id === 13n)!;
    assert.deepEqual(list.kind.case === 'result' && [...list.kind.value.topics].sort(), ['btcusdt@depth', 'btcusdt@trade']);
  });

  test('200 clients on one topic all receive every message', async () => {
    const many = Array.from({ length: 200 }, () => client('/ws/bnbusdt@trade'));
    await Promise.all(many.map((c) => c.opened));
    await Promise.all(many.map((c) => c.waitFor(() => (c.seqs.get('bnbusdt@trade')?.length ?? 0) >= 40, 20_000, '40 trades')));
    // Over the range every client saw, each one has every sequence number.
    const from = Math.max(...many.map((c) => c.seqs.get('bnbusdt@trade')![0]!));
    const to = Math.min(...many.map((c) => c.seqs.get('bnbusdt@trade')!.at(-1)!));
    assert.ok(to - from >= 20, `common range ${from}..${to}`);
    for (const c of many) {
      const seqs = c.seqs.get('bnbusdt@trade')!;
      assert.ok(contiguous(seqs), 'no gap for any client');
      const inRange = seqs.filter((s) => s >= from && s <= to);
      assert.equal(inRange.length, to - from + 1);
    }
    for (const c of many) c.close();
  });

  test('bad input gets a clear error and the gateway stays healthy', async () => {
    const c = client('/ws');
    await c.opened;
    c.send('{not json');
    await c.waitFor(() => c.json.some((m) => (m.error as { code: number } | undefined)?.code === 3), 5_000, 'invalid JSON error');
    c.send({ method: 'SUBSCRIBE_ALL', params: ['btcusdt@trade'], id: 21 });
    const unknownMethod = (await c.reply(21)) as { error: { code: number; msg: string } };
    assert.equal(unknownMethod.error.code, 2);
    assert.match(unknownMethod.error.msg, /unknown method "SUBSCRIBE_ALL"/);
    c.send({ method: 'SUBSCRIBE', params: ['btcusdt@trade', 'btcusdt@bogus'], id: 22 });
    const unknownTopic = (await c.reply(22)) as { error: { code: number; msg: string } };
    assert.equal(unknownTopic.error.code, 2);
    assert.match(unknownTopic.error.msg, /unknown stream "bogus"/);
    c.send({ method: 'SUBSCRIBE', params: ['zzzusdt@trade'], id: 23 });
    assert.match(((await c.reply(23)) as { error: { msg: string } }).error.msg, /unknown symbol "zzzusdt"/);
    c.send({ method: 'SUBSCRIBE', params: 'btcusdt@trade', id: 24 });
    assert.equal(((await c.reply(24)) as { error: { code: number } }).error.code, 2);
    c.send({ method: 'LIST_SUBSCRIPTIONS', id: -1 });
    await c.waitFor(() => c.json.some((m) => (m.error as { code: number } | undefined)?.code === 1), 5_000, 'bad id error');
    c.ws.send(Buffer.from([1, 2, 3]));
    await c.waitFor(() => c.json.some((m) => (m.error as { code: number } | undefined)?.code === 6), 5_000, 'binary frame error');
    // Nothing was half-applied: the refused requests subscribed nothing.
    c.send({ method: 'LIST_SUBSCRIPTIONS', id: 25 });
    assert.deepEqual((await c.reply(25)).result, []);
    // Bad upgrade URLs are refused before the upgrade, with a reason.
    const refused = await refusedUpgrade(`${ws}/ws/btcusdt@nope`);
    assert.equal(refused.status, 400);
    assert.match((JSON.parse(refused.body) as { error: { msg: string } }).error.msg, /unknown stream "nope"/);
    assert.equal((await refusedUpgrade(`${ws}/elsewhere`)).status, 404);

    // Oversized frame: closed with 1009, nothing else affected.
    const big = client('/ws');
    await big.opened;
    big.send({ method: 'SUBSCRIBE', params: Array.from({ length: 400 }, () => 'btcusdt@trade'), id: 1 });
    await big.closed;
    assert.equal(big.closeCode, 1009);

    // Flood: each excess request gets its error, then the flooder is cut off.
    const flood = client('/ws');
    await flood.opened;
    for (let i = 0; i < 200; i++) flood.send({ method: 'SUBSCRIBE', params: ['btcusdt@trade'], id: 1000 + i });
    await flood.closed;
    assert.equal(flood.closeCode, 1008);
    const limited = flood.json.filter((m) => (m.error as { code: number } | undefined)?.code === 5).length;
    assert.ok(limited >= 30, `rate-limit errors sent before closing: ${limited}`);

    // The gateway is still healthy and still serving data.
    assert.equal((await fetch(`${http}/healthz`)).status, 200);
    const after = client('/ws/btcusdt@trade');
    await after.opened;
    await after.waitFor(() => (after.seqs.get('btcusdt@trade')?.length ?? 0) >= 3, 10_000, 'data after abuse');
  });
});
