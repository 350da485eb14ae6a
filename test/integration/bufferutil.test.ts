// bench-protocols lost the gRPC / gRPC-web bench sessions' by-request
// subscriptions, and did so less often with WS_NO_BUFFER_UTIL=1, so ws's native
// helper (bufferutil, which ccxt brings in) was blamed. It was not the cause: no
// WebSocket frame is masked or unmasked on that path (the native calls count
// zero in every process of that run). ReplaySession dropped the subscribes and
// unsubscribes applied while its connection was still opening, and a gRPC
// channel's first connect is slower than the scenario's 300 ms subscribe.
//
// 1. Deterministic, per protocol: a server holds the connection half-open, the
//    session subscribes and unsubscribes meanwhile, and those requests must
//    reach the server once it opens, before any later one.
// 2. Users' installs: a real cluster and bench agents with bufferutil loaded
//    (WS_NO_BUFFER_UTIL unset in every child, ws checked to call the native
//    mask), every protocol's by-request subscriptions seen by the gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawnSync } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { ClientFrameSchema, PushService, ServerBatchSchema, ServerFrameSchema, type ClientFrame } from '../../proto/gen/client_pb.js';
import { pushServiceDefinition } from '../../system/gateway/grpc-api.ts';
import { nowUs } from '../../bench/lib/clock.ts';
import { Meter } from '../../cli/lib/bench/meter.ts';
import { ReplaySession, type SessionEnv } from '../../cli/lib/bench/session-client.ts';
import { runBench } from '../../cli/lib/bench/controller.ts';
import { recordTap } from '../../cli/lib/bench/recorder.ts';
import { parseCapture, type Scenario, type WireFormat } from '../../cli/lib/bench/scenario.ts';
import { adminHeaders, startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';

interface Seen {
  kind: string;
  topics: string[];
}

/** A server that records what a session asks for and holds its connection half-open until release(). */
interface HeldServer {
  url: string;
  /** The connect (with its initial streams) first, then every subscribe / unsubscribe, in arrival order. */
  seen: Seen[];
  /** The connection reached the server; the session is not open yet. */
  reached: Promise<void>;
  release(): void;
  close(): Promise<void>;
}

function gates() {
  let release!: () => void;
  let reach!: () => void;
  const open = new Promise<void>((r) => (release = r));
  const reached = new Promise<void>((r) => (reach = r));
  return { open, release, reached, reach };
}

const requestOf = (f: ClientFrame): Seen | undefined =>
  f.kind.case === 'subscribe' || f.kind.case === 'unsubscribe' ? { kind: f.kind.case, topics: [...f.kind.value.topics] } : undefined;

/** A ServerFrame that is neither a heartbeat nor an error: what opens a TCP or gRPC session. */
const resultFrame = () => toBinary(ServerFrameSchema, create(ServerFrameSchema, { kind: { case: 'result', value: { id: 0n, topics: [] } } }));

async function heldWebSocket(): Promise<HeldServer> {
  const g = gates();
  const seen: Seen[] = [];
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    // The upgrade waits: the client stays CONNECTING.
    verifyClient: (info, cb) => {
      seen.push({ kind: 'connect', topics: new URL(info.req.url!, 'http://x').searchParams.get('streams')!.split('/').filter(Boolean) });
      g.reach();
      void g.open.then(() => cb(true));
    },
  });
  wss.on('connection', (ws) =>
    ws.on('message', (d) => {
      const m = JSON.parse(String(d)) as { method: string; params: string[] };
      seen.push({ kind: m.method.toLowerCase(), topics: m.params });
    }),
  );
  await once(wss, 'listening');
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    seen,
    reached: g.reached,
    release: g.release,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    },
  };
}

async function heldTcp(): Promise<HeldServer> {
  const g = gates();
  const seen: Seen[] = [];
  const socks = new Set<Socket>();
  const server = createTcpServer((sock) => {
    socks.add(sock);
    sock.on('close', () => socks.delete(sock));
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const f = fromBinary(ClientFrameSchema, buf.subarray(4, 4 + buf.readUInt32BE(0)));
        buf = buf.subarray(4 + buf.readUInt32BE(0));
        const r = requestOf(f);
        if (!r) continue;
        if (seen.length) {
          seen.push(r);
          continue;
        }
        // The initial subscribe: answered (which opens the session) only on release.
        seen.push({ kind: 'connect', topics: r.topics });
        g.reach();
        void g.open.then(() => {
          const body = resultFrame();
          const out = Buffer.allocUnsafe(4 + body.length);
          out.writeUInt32BE(body.length, 0);
          out.set(body, 4);
          sock.write(out);
        });
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    reached: g.reached,
    release: g.release,
    close: async () => {
      for (const s of socks) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

async function heldGrpc(): Promise<HeldServer> {
  const g = gates();
  const seen: Seen[] = [];
  const server = new grpc.Server();
  server.addService({ stream: pushServiceDefinition.stream }, {
    stream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (frame: Buffer) => {
        const r = requestOf(fromBinary(ClientFrameSchema, frame));
        if (!r) return;
        if (seen.length) return void seen.push(r);
        seen.push({ kind: 'connect', topics: r.topics });
        g.reach();
        void g.open.then(() => call.write(Buffer.from(toBinary(ServerBatchSchema, create(ServerBatchSchema, { frames: [fromBinary(ServerFrameSchema, resultFrame())] })))));
      });
      call.on('error', () => {});
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { url: `127.0.0.1:${port}`, seen, reached: g.reached, release: g.release, close: async () => server.forceShutdown() };
}

async function heldGrpcWeb(): Promise<HeldServer> {
  const g = gates();
  const seen: Seen[] = [];
  const handler = connectNodeAdapter({
    grpc: false,
    connect: false,
    grpcWeb: true,
    routes: (router) =>
      router.service(PushService, {
        // The session id (which opens a gRPC-web session) comes only on release.
        async *subscribe(req, ctx) {
          seen.push({ kind: 'connect', topics: [...req.topics] });
          g.reach();
          await g.open;
          yield { sessionId: 'held-1' };
          await new Promise((r) => ctx.signal.addEventListener('abort', r, { once: true }));
        },
        update(req) {
          const r = req.frame && requestOf(req.frame);
          if (r) seen.push(r);
          return {};
        },
      }),
  });
  const server = createHttpServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    reached: g.reached,
    release: g.release,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

const HELD: Record<WireFormat, () => Promise<HeldServer>> = {
  json: heldWebSocket,
  protobuf: heldWebSocket, // not used below: same open path as json
  tcp: heldTcp,
  grpc: heldGrpc,
  'grpc-web': heldGrpcWeb,
};

for (const format of ['json', 'tcp', 'grpc', 'grpc-web'] as const) {
  test(`${format}: a subscribe and an unsubscribe applied while the connection opens reach the server once it is open`, { timeout: 60_000 }, async (t) => {
    const server = await HELD[format]();
    t.after(() => server.close());
    let open = 0;
    const env: SessionEnv = {
      meter: new Meter(nowUs),
      clockUs: nowUs,
      gateways: async () => [server.url],
      openDelta: (d) => (open += d),
      stopped: () => false,
    };
    const s = new ReplaySession('held', format, env);
    t.after(() => s.stop());
    s.apply({ t: 0, ev: 'connect', format, streams: ['btcusdt@trade', 'btcusdt@depth'] });
    await server.reached;
    assert.equal(open, 0, 'the session is not open while the server holds it');
    s.apply({ t: 1, ev: 'subscribe', streams: ['ethusdt@trade'] });
    s.apply({ t: 1, ev: 'unsubscribe', streams: ['btcusdt@depth'] });
    server.release();
    await waitFor(() => open === 1, 20_000, `${format} session open`);
    // A request made once open is sent at once: whatever the opening owed must arrive before it.
    s.apply({ t: 2, ev: 'subscribe', streams: ['solusdt@trade'] });
    await waitFor(() => server.seen.some((r) => r.topics.includes('solusdt@trade')), 20_000, `${format}: the request made once open arrived`);
    assert.deepEqual(server.seen, [
      { kind: 'connect', topics: ['btcusdt@trade', 'btcusdt@depth'] },
      { kind: 'unsubscribe', topics: ['btcusdt@depth'] },
      { kind: 'subscribe', topics: ['ethusdt@trade'] },
      { kind: 'subscribe', topics: ['solusdt@trade'] },
    ]);
    assert.equal(env.meter.counters.errors, 0);
  });
}

/** In a child with WS_NO_BUFFER_UTIL unset: whether ws calls bufferutil's native mask (client send) and unmask (server receive). */
function nativeCallsInChild(): { native: boolean; mask: number; unmask: number } {
  const script = `
    const bu = require('bufferutil');
    const counts = { native: /native code/.test(String(bu.mask)), mask: 0, unmask: 0 };
    const m = bu.mask, u = bu.unmask;
    bu.mask = (...a) => (counts.mask++, m(...a));
    bu.unmask = (...a) => (counts.unmask++, u(...a));
    const { WebSocket, WebSocketServer } = require('ws');
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 }, () => {
      const ws = new WebSocket('ws://127.0.0.1:' + wss.address().port);
      ws.on('open', () => ws.send(Buffer.alloc(100, 7)));
      wss.on('connection', (s) => s.on('message', (d) => {
        counts.ok = d.length === 100 && d.every((b) => b === 7);
        process.stdout.write(JSON.stringify(counts));
        ws.terminate();
        wss.close();
      }));
    });
    setTimeout(() => process.exit(3), 20000).unref();`;
  const env = { ...process.env };
  delete env.WS_NO_BUFFER_UTIL;
  const r = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { native: boolean; mask: number; unmask: number; ok: boolean };
  assert.ok(out.ok, 'the message arrived intact');
  return out;
}

test('with bufferutil loaded in every process, every protocol\'s by-request subscriptions reach the gateway', { timeout: 240_000 }, async (t) => {
  // The users' configuration (pushctl up, npm installs): ws with its native helper.
  const before = process.env.WS_NO_BUFFER_UTIL;
  delete process.env.WS_NO_BUFFER_UTIL;
  t.after(() => {
    if (before !== undefined) process.env.WS_NO_BUFFER_UTIL = before;
  });
  const calls = nativeCallsInChild();
  assert.ok(calls.native && calls.mask > 0 && calls.unmask > 0, `ws uses bufferutil's native mask and unmask here: ${JSON.stringify(calls)}`);

  const cluster: TestCluster = await startCluster({ symbols: 3, rate: 20 });
  t.after(() => cluster.stop());
  const gw = cluster.gateways[0]!;
  for (const format of ['json', 'protobuf', 'tcp', 'grpc', 'grpc-web'] as const) {
    await t.test(format, async () => {
      const lines = [
        { t: 0, s: 'init', ev: 'connect', format, streams: ['btcusdt@trade'] },
        { t: 0, s: 'later', ev: 'connect', format, streams: [] },
        { t: 300, s: 'later', ev: 'subscribe', streams: ['btcusdt@trade', 'ethusdt@trade'] },
        { t: 1_800, s: 'later', ev: 'unsubscribe', streams: ['ethusdt@trade'] },
      ];
      const sc: Scenario = {
        name: `bufferutil-${format}`, description: '', file: '-', sessions: parseCapture(lines.map((l) => JSON.stringify(l)).join('\n')),
        amplify: 3, jitterMs: 0, speed: 1, durationMs: 3_000, connect: 'router', thresholds: [], http: [], faults: [],
      };
      const stopTap = new AbortController();
      const tap = recordTap(gw.urls.admin!, 60_000, stopTap.signal, adminHeaders());
      const o = await runBench({ scenario: sc, router: cluster.routerUrl, nats: cluster.nats.url, agents: 1, remote: false, thresholds: [] });
      stopTap.abort();
      const rec = await tap;
      const facts = JSON.stringify({ counters: o.counters, errors: o.agents.flatMap((a) => a.errorSamples), sessions: rec.sessions });
      assert.equal(o.counters.connectFailures, 0, facts);
      assert.equal(o.counters.errors, 0, facts);
      assert.equal(o.counters.subscribes, 3, facts);
      // Each "later" session asked for both streams: by request, or (when its subscribe came before
      // it was connected) in its connect. Either way the gateway heard of them.
      const later = rec.sessions.filter((s) => s.ops.some((op) => op.ev === 'unsubscribe'));
      assert.ok(later.length >= 3, facts);
      for (const s of later) {
        const asked = new Set(s.ops.flatMap((op) => (op.ev === 'connect' || op.ev === 'subscribe' ? op.streams : [])));
        assert.ok(asked.has('btcusdt@trade') && asked.has('ethusdt@trade'), `${format} session ${s.id} never subscribed: ${facts}`);
      }
    });
  }
});
