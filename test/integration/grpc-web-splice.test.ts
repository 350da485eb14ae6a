// The gRPC-web / Connect Subscribe response is spliced (system/gateway/
// grpc-web-api.ts): Connect writes the headers, the first message and the
// status, the session's batches go to Connect's response writer as ready
// envelopes in between. Here: the raw bytes on the wire over both protocols
// (framing, session id first, each later envelope a ServerBatch, compressed
// exactly when Connect would compress it, a drain ending with the right
// status), JSON clients (not spliced: Connect's whole path) still getting
// every frame, and the backpressure contract: a client that stops reading is
// cut to a resync while the clients beside it on the same topics keep every event.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { PushService, ServerBatchSchema, SubscribeRequestSchema, type ServerBatch } from '../../proto/gen/client_pb.js';
import { adminHeaders, adminJson, startCluster } from '../helpers/cluster.ts';
import { contiguous } from '../helpers/ws-client.ts';
import { GrpcWebClient } from '../helpers/proto-clients.ts';

interface Envelope {
  flags: number;
  /** Decompressed when flag 1 is set. */
  data: Buffer;
}

/** A Subscribe call over raw HTTP/1.1, its response split into envelopes as they arrive. */
function rawSubscribe(baseUrl: string, wire: 'grpc-web' | 'connect', topics: string[]) {
  const msg = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { topics }));
  const body = Buffer.alloc(5 + msg.length);
  body.writeUInt32BE(msg.length, 1);
  body.set(msg, 5);
  const headers: Record<string, string> =
    wire === 'grpc-web'
      ? { 'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1', 'grpc-accept-encoding': 'gzip' }
      : { 'content-type': 'application/connect+proto', 'connect-protocol-version': '1', 'connect-accept-encoding': 'gzip' };
  const envelopes: Envelope[] = [];
  const abort = new AbortController();
  const done = (async () => {
    const res = await fetch(`${baseUrl}/marketpush.v1.PushService/Subscribe`, { method: 'POST', body, headers, signal: abort.signal });
    let buf = Buffer.alloc(0);
    for await (const chunk of res.body!) {
      buf = Buffer.concat([buf, chunk as Uint8Array]);
      while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
        const flags = buf[0]!;
        const raw = buf.subarray(5, 5 + buf.readUInt32BE(1));
        buf = buf.subarray(5 + raw.length);
        envelopes.push({ flags, data: flags & 1 ? gunzipSync(raw) : Buffer.from(raw) });
      }
    }
    return { status: res.status, contentType: res.headers.get('content-type'), leftover: buf.length };
  })();
  return { envelopes, done, abort };
}

test('spliced Subscribe responses on the wire: gRPC-web and Connect framing, compression as Connect would, drain ends with unavailable', async (t) => {
  const cluster = await startCluster({ servers: 1, gateways: 1, symbols: 3, rate: 50, gateway: { drainSpreadMs: 200 } });
  t.after(() => cluster.stop());
  const gw = cluster.gateways[0]!;
  // Three depth snapshots (each several hundred bytes) make a batch over Connect's 1 KiB compression threshold:
  // once the gateway holds the books, a new session gets all three at once, before its first batch goes out.
  const topics = ['btcusdt@depth', 'ethusdt@depth', 'bnbusdt@depth', 'btcusdt@trade', 'ethusdt@ticker'];
  const warm = new GrpcWebClient(gw.urls['grpc-web']!);
  t.after(() => warm.close());
  await warm.open(topics);
  await warm.waitFor(() => warm.r.events.filter((e) => e.snapshot).length >= 3, 10_000, 'the three books');
  const calls = (['grpc-web', 'connect'] as const).map((wire) => ({ wire, ...rawSubscribe(gw.urls['grpc-web']!, wire, topics) }));
  t.after(() => calls.forEach((c) => c.abort.abort()));
  const deadline = Date.now() + 15_000;
  while (calls.some((c) => c.envelopes.length < 30)) {
    if (Date.now() > deadline) throw new Error(`too few envelopes: ${calls.map((c) => `${c.wire} ${c.envelopes.length}`).join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const res = await fetch(`${gw.urls.admin}/admin/drain`, { method: 'POST', headers: adminHeaders(), body: '{}' });
  assert.equal(res.status, 200);

  for (const c of calls) {
    const end = await c.done;
    assert.equal(end.status, 200, c.wire);
    assert.equal(end.contentType, c.wire === 'grpc-web' ? 'application/grpc-web+proto' : 'application/connect+proto');
    assert.equal(end.leftover, 0, `${c.wire}: the response ends on an envelope boundary`);
    const [first, ...rest] = c.envelopes;
    const last = rest.pop()!;
    // First: only the session id.
    assert.equal(first!.flags, 0);
    const opening = fromBinary(ServerBatchSchema, first!.data);
    assert.match(opening.sessionId, /^[0-9a-f-]{36}$/);
    assert.equal(opening.frames.length, 0);
    // Then ServerBatches of at least one frame each, gzip exactly from Connect's threshold up.
    const batches: ServerBatch[] = [];
    for (const e of rest) {
      assert.equal(e.flags & ~1, 0, `${c.wire}: a message envelope, flags ${e.flags}`);
      assert.equal((e.flags & 1) === 1, e.data.length >= 1024, `${c.wire}: compressed iff ≥ 1024 bytes (flags ${e.flags}, ${e.data.length} bytes)`);
      const b = fromBinary(ServerBatchSchema, e.data);
      assert.ok(b.frames.length >= 1, `${c.wire}: an empty batch`);
      batches.push(b);
    }
    assert.ok(rest.some((e) => e.flags & 1), `${c.wire}: the snapshots' batch went out compressed`);
    const frames = batches.flatMap((b) => b.frames);
    const snapshots = frames.filter((f) => f.kind.case === 'event' && f.kind.value.payload.case === 'depthSnapshot');
    assert.equal(snapshots.length, 3, `${c.wire}: one snapshot per depth topic`);
    const trades = frames.flatMap((f) => (f.kind.case === 'event' && f.kind.value.topic === 'btcusdt@trade' ? [Number(f.kind.value.seq)] : []));
    assert.ok(trades.length >= 2 && contiguous(trades), `${c.wire}: trades contiguous: ${trades.join(',')}`);
    // The drain's last frame (4002), then the end of the stream with its status.
    const lastFrame = frames.at(-1)!;
    assert.equal(lastFrame.kind.case, 'error');
    assert.equal(lastFrame.kind.case === 'error' && lastFrame.kind.value.code, 4002);
    if (c.wire === 'grpc-web') {
      assert.equal(last.flags, 0x80, 'gRPC-web trailers');
      const trailer = last.data.toString();
      assert.match(trailer, /grpc-status: ?14\r\n/i);
      assert.match(trailer, /grpc-message: ?[^\r]*draining/i);
    } else {
      assert.equal(last.flags, 0x02, 'Connect end-stream');
      const endStream = JSON.parse(last.data.toString()) as { error?: { code: string; message: string } };
      assert.equal(endStream.error?.code, 'unavailable');
      assert.match(endStream.error?.message ?? '', /draining/);
    }
  }
});

test('JSON clients (gRPC-web and Connect) take Connect\'s own path and get the same frames', async (t) => {
  const cluster = await startCluster({ servers: 1, gateways: 1, symbols: 2, rate: 50 });
  t.after(() => cluster.stop());
  const baseUrl = cluster.gateways[0]!.urls['grpc-web']!;
  for (const make of [createGrpcWebTransport, createConnectTransport]) {
    const client = createClient(PushService, make({ baseUrl, httpVersion: '1.1', useBinaryFormat: false }));
    const abort = new AbortController();
    let sessionId = '';
    const trades: number[] = [];
    // Bounded: a stream of empty batches would otherwise never reach ten trades.
    const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(15_000)]);
    for await (const batch of client.subscribe({ topics: ['btcusdt@trade'] }, { signal })) {
      if (batch.sessionId) sessionId = batch.sessionId;
      for (const f of batch.frames) if (f.kind.case === 'event' && f.kind.value.topic === 'btcusdt@trade') trades.push(Number(f.kind.value.seq));
      if (trades.length >= 10) break;
    }
    abort.abort();
    assert.match(sessionId, /^[0-9a-f-]{36}$/, make.name);
    assert.ok(contiguous(trades), `${make.name}: ${trades.join(',')}`);
  }
});

test('a gRPC-web client that stops reading is cut to a resync while gRPC-web and Connect clients on the same topics keep every event', async (t) => {
  const cluster = await startCluster({
    servers: 1,
    gateways: 1,
    symbols: 3,
    rate: 1000, // trades alone (depth diffs go out per 100 ms window) must outrun what the paused socket buffers
    gateway: { sendQueueBytes: 64 * 1024, slowClientGraceMs: 60_000 },
  });
  const clients: GrpcWebClient[] = [];
  t.after(async () => {
    clients.forEach((c) => c.close());
    await cluster.stop();
  });
  const gw = cluster.gateways[0]!;
  const overflows = async () => (await adminJson<{ counters: Record<string, number> }>(`${gw.urls.admin}/stats`)).counters.overflows ?? 0;
  const open = async (wire: 'grpc-web' | 'connect') => {
    const c = new GrpcWebClient(gw.urls['grpc-web']!, true, wire);
    clients.push(c);
    await c.open();
    return c;
  };
  const slow = await open('grpc-web');
  const fast = [await open('grpc-web'), await open('connect')];
  // The slow client takes everything; the others a trade stream it shares (small enough to keep up with on a busy machine).
  slow.send({ kind: 'subscribe', id: 1, topics: ['btcusdt@trade', 'btcusdt@depth', 'ethusdt@trade', 'ethusdt@depth', 'bnbusdt@trade', 'bnbusdt@depth'] });
  for (const c of fast) c.send({ kind: 'subscribe', id: 1, topics: ['btcusdt@trade'] });
  for (const c of [slow, ...fast]) await c.waitFor(() => c.seqs('btcusdt@trade').length >= 10, 10_000, 'trades');

  const before = await overflows();
  slow.pause();
  const deadline = Date.now() + 30_000;
  while ((await overflows()) <= before) {
    if (Date.now() > deadline) throw new Error('the paused client never overflowed its queue');
    await new Promise((r) => setTimeout(r, 200));
  }
  const atOverflow = fast.map((c) => c.seqs('btcusdt@trade').length);
  // The others carry on while the slow one is held: more trades, in sequence.
  for (const [i, c] of fast.entries()) await c.waitFor(() => c.seqs('btcusdt@trade').length >= atOverflow[i]! + 200, 15_000, 'trades after the overflow');
  slow.resume();
  await slow.waitFor(() => slow.r.resyncs.length > 0, 30_000, 'a resync notice');
  assert.equal(slow.r.resyncs[0]!.reason, 'slow_client');
  const at = slow.r.resyncs[0]!.at;
  await slow.waitFor(() => slow.r.events.slice(at).some((e) => e.snapshot), 10_000, 'a fresh depth snapshot after the notice');
  assert.equal(slow.closed, false);
  for (const c of fast) {
    assert.equal(c.closed, false, `${c.name}: still open`);
    assert.deepEqual(c.r.resyncs, [], `${c.name}: never resynced`);
    assert.deepEqual(c.r.errors, [], `${c.name}: no errors`);
    assert.ok(contiguous(c.seqs('btcusdt@trade')), `${c.name}: every trade, in sequence`);
  }
});
