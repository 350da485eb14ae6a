// One conformance suite, run against every client protocol of the gateway:
// WebSocket JSON, WebSocket protobuf, protobuf over TCP, gRPC PushService,
// gRPC-web and Connect (Subscribe + Update on the gateway's HTTP port).
// All of them sit on the same sessions and subscription core.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { adminJson, startCluster, type RoleProc, type TestCluster } from '../helpers/cluster.ts';
import { contiguous } from '../helpers/ws-client.ts';
import { GrpcClient, GrpcWebClient, ProtoClient, TcpClient, WsJsonClient, WsProtobufClient } from '../helpers/proto-clients.ts';

const protocols: Record<string, (gw: RoleProc, answerHeartbeats?: boolean) => ProtoClient> = {
  'ws-json': (gw, answer = true) => new WsJsonClient(gw.urls.ws!, answer),
  'ws-protobuf': (gw) => new WsProtobufClient(gw.urls.ws!),
  tcp: (gw, answer = true) => new TcpClient(gw.urls.tcp!, answer),
  grpc: (gw, answer = true) => new GrpcClient(gw.urls.grpc!, answer),
  'grpc-web': (gw, answer = true) => new GrpcWebClient(gw.urls['grpc-web']!, answer),
  // The Connect protocol, on the same port and methods as gRPC-web.
  connect: (gw, answer = true) => new GrpcWebClient(gw.urls['grpc-web']!, answer, 'connect'),
};

describe('every protocol on one subscription core', () => {
  let cluster: TestCluster;
  let gw: RoleProc;
  const open: ProtoClient[] = [];
  const connect = async (name: string, answerHeartbeats = true) => {
    const c = protocols[name]!(gw, answerHeartbeats);
    open.push(c);
    await c.open();
    return c;
  };

  before(async () => {
    cluster = await startCluster({
      servers: 1,
      gateways: 1,
      symbols: 3,
      rate: 20,
      gateway: { pingIntervalMs: 300, pongTimeoutMs: 1_500, inboundRatePerSec: 50, inboundBurst: 50 },
    });
    gw = cluster.gateways[0]!;
  });
  after(async () => {
    for (const c of open) c.close();
    await cluster?.stop();
  });

  test('the gateway advertises every protocol to the router', async () => {
    for (const p of ['ws', 'tcp', 'grpc', 'grpc-web']) {
      const body = (await (await fetch(`${cluster.routerUrl}/v1/gateways?protocol=${p}`)).json()) as { gateways: { url: string }[] };
      assert.equal(body.gateways[0]?.url, p === 'ws' ? gw.urls.ws : gw.urls[p], `router lists the ${p} endpoint`);
    }
  });

  for (const name of Object.keys(protocols)) {
    describe(name, () => {
      test('subscribe: a result, snapshots at once, then contiguous sequences', async () => {
        const c = await connect(name);
        c.send({ kind: 'subscribe', id: 1, topics: ['btcusdt@trade', 'btcusdt@depth', 'ethusdt@ticker'] });
        await c.waitFor(() => c.r.results.has(1), 5_000, 'the subscribe result');
        await c.waitFor(() => c.seqs('btcusdt@trade').length >= 5 && c.seqs('btcusdt@depth').length >= 5 && c.seqs('ethusdt@ticker').length >= 1, 15_000, 'events');
        assert.ok(contiguous(c.seqs('btcusdt@trade')), 'trades contiguous');
        assert.ok(contiguous(c.seqs('btcusdt@depth')), 'depth contiguous');
        assert.equal(c.r.events.find((e) => e.topic === 'btcusdt@depth')!.snapshot, true, 'depth starts with its snapshot');
        assert.equal(c.r.errors.length, 0);
      });

      test('list and unsubscribe', async () => {
        const c = await connect(name);
        c.send({ kind: 'subscribe', id: 2, topics: ['bnbusdt@trade', 'bnbusdt@kline_1m'] });
        c.send({ kind: 'list', id: 3 });
        await c.waitFor(() => c.r.results.has(3), 5_000, 'list');
        assert.deepEqual([...(c.r.results.get(3) ?? [])].sort(), ['bnbusdt@kline_1m', 'bnbusdt@trade']);
        c.send({ kind: 'unsubscribe', id: 4, topics: ['bnbusdt@trade'] });
        c.send({ kind: 'list', id: 5 });
        await c.waitFor(() => c.r.results.has(5), 5_000, 'second list');
        assert.deepEqual(c.r.results.get(5), ['bnbusdt@kline_1m']);
      });

      test('bad input: each gets its error and the connection stays usable', async () => {
        const c = await connect(name);
        c.send({ kind: 'subscribe', id: 6, topics: ['btcusdt@bogus'] });
        await c.waitFor(() => c.r.errors.some((e) => e.code === 2), 5_000, 'unknown stream error');
        assert.match(c.r.errors.find((e) => e.code === 2)!.msg, /unknown stream "bogus"/);
        c.send({ kind: 'subscribe', id: 7, topics: ['nosuchusdt@trade'] });
        await c.waitFor(() => c.r.errors.some((e) => /unknown symbol "nosuchusdt"/.test(e.msg)), 5_000, 'unknown symbol error');
        c.sendGarbage();
        await c.waitFor(() => c.r.errors.some((e) => e.code === 3), 5_000, 'undecodable frame error');
        c.send({ kind: 'subscribe', id: 8, topics: ['ethusdt@trade'] });
        await c.waitFor(() => c.r.results.has(8) && c.seqs('ethusdt@trade').length >= 2, 10_000, 'data after the errors');
        assert.equal(c.closed, false);
      });

      if (name !== 'ws-protobuf') {
        // (ws-protobuf answers the same WebSocket pings as ws-json: covered there.)
        test('heartbeat: a client that never answers is cut off, one that answers stays', async () => {
          const silent = await connect(name, false);
          const alive = await connect(name, true);
          silent.send({ kind: 'subscribe', id: 9, topics: ['btcusdt@ticker'] });
          await silent.waitFor(() => silent.closed, 10_000, 'the silent client to be cut off');
          await new Promise((r) => setTimeout(r, 300));
          assert.equal(alive.closed, false, 'the answering client is still connected');
          if (name !== 'ws-json') assert.ok(alive.r.heartbeats >= 1, 'heartbeat frames arrive');
        });
      }
    });
  }
});

describe('slow clients and oversized frames, per protocol', () => {
  let cluster: TestCluster;
  let gw: RoleProc;
  const open: ProtoClient[] = [];
  before(async () => {
    cluster = await startCluster({
      servers: 1,
      gateways: 1,
      symbols: 3,
      rate: 1000, // trades alone (depth diffs go out per 100 ms window) must outrun the kernel buffers of a paused TCP client
      gateway: { sendQueueBytes: 64 * 1024, slowClientGraceMs: 60_000, maxPayloadBytes: 4096 },
    });
    gw = cluster.gateways[0]!;
  });
  after(async () => {
    for (const c of open) c.close();
    await cluster?.stop();
  });
  const overflows = async () => (await adminJson<{ counters: Record<string, number> }>(`${gw.urls.admin}/stats`)).counters.overflows ?? 0;
  const everything = ['btcusdt@trade', 'btcusdt@depth', 'ethusdt@trade', 'ethusdt@depth', 'bnbusdt@trade', 'bnbusdt@depth'];

  for (const name of ['tcp', 'grpc', 'grpc-web']) {
    test(`${name}: a client that stops reading is told to resync, then gets fresh data`, async () => {
      const c = protocols[name]!(gw);
      open.push(c);
      await c.open();
      const before = await overflows();
      c.send({ kind: 'subscribe', id: 1, topics: everything });
      c.pause();
      const deadline = Date.now() + 30_000;
      while ((await overflows()) <= before) {
        if (Date.now() > deadline) throw new Error('the paused client never overflowed its queue');
        await new Promise((r) => setTimeout(r, 200));
      }
      c.resume();
      await c.waitFor(() => c.r.resyncs.length > 0, 30_000, 'a resync notice');
      assert.equal(c.r.resyncs[0]!.reason, 'slow_client');
      const at = c.r.resyncs[0]!.at;
      await c.waitFor(() => c.r.events.slice(at).some((e) => e.snapshot), 10_000, 'a fresh depth snapshot after the notice');
      assert.equal(c.closed, false);
    });
  }

  test('tcp: a frame over the maximum size is refused and the connection closed', async () => {
    const c = new TcpClient(gw.urls.tcp!);
    open.push(c);
    await c.open();
    c.writeFrame(Buffer.alloc(10_000, 1));
    await c.waitFor(() => c.closed, 5_000, 'close');
    assert.ok(c.r.errors.some((e) => e.code === 1009 && /exceeds the maximum of 4096/.test(e.msg)), JSON.stringify(c.r.errors));
  });

  test('grpc: a message over the maximum size ends the call with RESOURCE_EXHAUSTED', async () => {
    const c = new GrpcClient(gw.urls.grpc!);
    open.push(c);
    await c.open();
    c.call.write(Buffer.alloc(10_000, 1));
    await c.waitFor(() => c.closed, 5_000, 'the call to end');
    assert.match(c.closeInfo, /RESOURCE_EXHAUSTED/, `call ended with: "${c.closeInfo}"`);
  });

  test('grpc-web: an Update over the maximum size is refused with resource_exhausted, the session carries on', async () => {
    const c = new GrpcWebClient(gw.urls['grpc-web']!);
    open.push(c);
    await c.open();
    c.send({ kind: 'subscribe', id: 1, topics: ['x'.repeat(10_000)] });
    await c.waitFor(() => c.r.errors.length > 0, 5_000, 'the refusal');
    assert.match(c.r.errors[0]!.msg, /Update failed: ResourceExhausted/, JSON.stringify(c.r.errors));
    c.send({ kind: 'subscribe', id: 2, topics: ['btcusdt@trade'] });
    await c.waitFor(() => c.r.results.has(2) && c.seqs('btcusdt@trade').length >= 2, 10_000, 'data after the refusal');
    assert.equal(c.closed, false);
  });
});
