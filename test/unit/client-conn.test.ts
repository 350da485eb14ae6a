import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type WebSocket from 'ws';
import { create, toBinary } from '@bufbuild/protobuf';
import { WsTransport } from '../../system/gateway/transport.ts';
import { ClientConn } from '../../system/gateway/client-conn.ts';
import { EncodedEvent, prepareFrame } from '../../system/gateway/codec.ts';
import { EventSchema } from '../../proto/gen/market_pb.js';

/**
 * A net.Socket stand-in that never sends anything by itself. Like a real
 * Writable, write() reports false once writableLength reaches the high-water
 * mark, and only then is 'drain' emitted when the buffer empties.
 */
class FakeSocket extends EventEmitter {
  readonly writableHighWaterMark = 64 * 1024;
  writableLength = 0;
  writableNeedDrain = false;
  destroyed = false;
  writable = true;
  remoteAddress = '127.0.0.1';
  remotePort = 50000;
  writes = 0;
  /** One entry per write (a burst), split back into the WebSocket frames it carries. */
  bursts: Buffer[][] = [];

  write(b: Buffer): boolean {
    this.writes++;
    this.bursts.push(splitFrames(b));
    this.writableLength += b.length;
    if (this.writableLength >= this.writableHighWaterMark) this.writableNeedDrain = true;
    return !this.writableNeedDrain;
  }

  /** The kernel took bytes: the buffer shrinks to `left`; 'drain' as Node emits it. */
  sent(left = 0): void {
    this.writableLength = left;
    if (left === 0 && this.writableNeedDrain) {
      this.writableNeedDrain = false;
      this.emit('drain');
    }
  }

  /** Fills the buffer as a stalled peer would (as one write that went over the high-water mark). */
  stall(bytes: number): void {
    this.writableLength = bytes;
    this.writableNeedDrain = bytes >= this.writableHighWaterMark;
  }

  get written(): Buffer[] {
    return this.bursts.flat();
  }
}

/** Splits unmasked server WebSocket frames written back to back. */
function splitFrames(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < b.length) {
    let len = b[pos + 1]! & 0x7f;
    let header = 2;
    if (len === 126) {
      len = b.readUInt16BE(pos + 2);
      header = 4;
    } else if (len === 127) {
      len = Number(b.readBigUInt64BE(pos + 2));
      header = 10;
    }
    out.push(b.subarray(pos, pos + header + len));
    pos += header + len;
  }
  return out;
}

class FakeWs {
  closes: Array<[number, string]> = [];
  terminated = 0;
  /** How many frames the socket had been given when close() was called. */
  writtenAtClose = -1;
  socket: FakeSocket | undefined;
  close(code: number, reason: string): void {
    this.closes.push([code, reason]);
    this.writtenAtClose = this.socket?.written.length ?? -1;
  }
  terminate(): void {
    this.terminated++;
  }
  pings = 0;
  ping(): void {
    this.pings++;
  }
}

function setup(capBytes: number) {
  const socket = new FakeSocket();
  const ws = new FakeWs();
  ws.socket = socket;
  const calls = { dirty: 0, resync: [] as string[], overflowed: 0 };
  const noticeFrame = named(prepareFrame('{"e":"resync"}', false), 'resync notice');
  // Not an object literal at the call site: the hooks interface may grow optional extras.
  const hooks = {
    markDirty: () => void calls.dirty++,
    overflowed: () => void calls.overflowed++,
    resync: (c: ClientConn, reason: string) => {
      calls.resync.push(reason);
      c.send(noticeFrame); // what the gateway does: notices and snapshots, then the flush writes them
    },
  };
  const conn = new ClientConn({
    transport: new WsTransport(ws as unknown as WebSocket, socket as unknown as Socket),
    format: 'raw',
    capBytes,
    ratePerSec: 10,
    burst: 20,
    hooks,
  });
  return { socket, ws, conn, calls, noticeFrame };
}

// Frames are compared by content through short labels, so a failure prints a readable diff.
// (Written frames come back as views into one concatenated write, not the original objects.)
const labels = new Map<string, string>();
const key = (f: Buffer) => f.toString('base64');
const label = (f: Buffer | undefined) => (f ? (labels.get(key(f)) ?? `unlabelled(${f.length} bytes)`) : 'none');
const named = (f: Buffer, name: string) => (labels.set(key(f), name), f);
const labelled = (fs: Buffer[] | undefined) => (fs ?? []).map(label);

let seq = 0;
function event(topic: string): EncodedEvent {
  seq++;
  const symbol = topic.split('@')[0]!;
  const payload = topic.endsWith('@ticker')
    ? ({ case: 'ticker', value: { symbol, lastPrice: `${100 + seq}` } } as const)
    : ({ case: 'trade', value: { symbol, tradeId: BigInt(seq), price: '100.5', qty: '1' } } as const);
  const bytes = toBinary(EventSchema, create(EventSchema, { topic, seq: BigInt(seq), epoch: 1n, publishTimeUs: 1_767_225_600_000_000n, payload }));
  const ev = new EncodedEvent(topic, seq, bytes);
  named(ev.frame('raw'), `${topic}#${seq}`);
  return ev;
}
const conflatable = (topic: string) => topic.endsWith('@ticker');
const deliver = (conn: ClientConn, evs: EncodedEvent[]) => {
  for (const ev of evs) conn.deliver(ev, conflatable(ev.topic));
};
const frames = (evs: EncodedEvent[]) => evs.map((e) => e.frame('raw'));
// Trades to fill queues with (the same frame may be queued many times).
const filler = Array.from({ length: 16 }, () => event('btcusdt@trade'));
const microtasks = () => new Promise<void>((r) => setImmediate(r));

test('ClientConn: the frames of one slice go out in one write, in order', () => {
  const { socket, conn, calls } = setup(4 * 1024 * 1024);
  assert.equal(conn.remote, '127.0.0.1:50000');
  const first = [event('btcusdt@trade'), event('btcusdt@ticker'), event('ethusdt@trade')];
  deliver(conn, first);
  assert.equal(calls.dirty, 1, 'marked dirty once per slice, on the first frame');
  assert.equal(socket.written.length, 0, 'nothing is written before the slice ends');
  assert.equal(conn.queuedBytes, frames(first).reduce((n, f) => n + f.length, 0));
  conn.flush();
  assert.deepEqual(socket.bursts.map(labelled), [labelled(frames(first))]);
  const second = [event('btcusdt@trade'), event('btcusdt@trade')];
  deliver(conn, second);
  assert.equal(calls.dirty, 2);
  conn.flush();
  conn.flush(); // nothing left: no empty burst
  assert.deepEqual(socket.bursts.map(labelled), [labelled(frames(first)), labelled(frames(second))]);
  assert.equal(socket.writes, 2, 'one write per slice');
  assert.equal(conn.framesOut, 5);
  assert.equal(conn.bytesOut, socket.written.reduce((n, f) => n + f.length, 0));
  assert.equal(conn.state, 'live');
});

test('ClientConn: a backed-up socket holds frames, conflating tickers and klines to their latest', () => {
  const { socket, conn } = setup(4 * 1024 * 1024);
  socket.stall(300 * 1024); // well over the socket's high-water mark
  deliver(conn, [event('btcusdt@trade')]);
  conn.flush();
  assert.equal(conn.state, 'backlogged');
  const before = socket.written.length;

  const t1 = event('btcusdt@ticker');
  const tr1 = event('btcusdt@trade');
  const t2 = event('btcusdt@ticker');
  const e1 = event('ethusdt@ticker');
  const tr2 = event('btcusdt@trade');
  const t3 = event('btcusdt@ticker');
  const e2 = event('ethusdt@ticker');
  deliver(conn, [t1, tr1, t2, e1, tr2, t3, e2]);
  conn.flush();
  assert.equal(socket.written.length, before, 'nothing is written while backlogged');
  const kept = frames([t3, tr1, e2, tr2]);
  assert.equal(conn.queuedBytes, socket.writableLength + kept.reduce((n, f) => n + f.length, 0), 'replaced frames no longer count');

  socket.sent(0); // the peer caught up: 'drain'
  assert.equal(conn.state, 'live');
  assert.deepEqual(labelled(socket.bursts.at(-1)), labelled(kept), 'latest ticker per topic, in the place of the first; every trade');
  assert.equal(conn.queuedBytes, kept.reduce((n, f) => n + f.length, 0));

  // Live again: nothing is conflated any more.
  socket.sent(0);
  const live = [event('btcusdt@ticker'), event('btcusdt@ticker')];
  deliver(conn, live);
  conn.flush();
  assert.deepEqual(labelled(socket.bursts.at(-1)), labelled(frames(live)));
});

test('ClientConn: passing the cap drops the queue, and after drain the client is resynced once and live again', async () => {
  const { socket, conn, calls, noticeFrame } = setup(1024 * 1024);
  socket.stall(300 * 1024);
  deliver(conn, [event('btcusdt@trade')]);
  conn.flush();
  assert.equal(conn.state, 'backlogged');
  const writtenBefore = socket.written.length;

  for (let i = 0; i < 20_000 && conn.state === 'backlogged'; i++) deliver(conn, [filler[i % filler.length]!]);
  assert.equal(conn.state, 'resyncing');
  assert.equal(conn.resyncs, 1);
  assert.ok(conn.overflowAt > 0);
  assert.equal(conn.queuedBytes, socket.writableLength, 'the queue was dropped');
  deliver(conn, [event('btcusdt@trade'), event('btcusdt@ticker')]);
  conn.flush();
  assert.equal(conn.queuedBytes, socket.writableLength, 'events are not queued while resyncing');
  await microtasks();
  assert.deepEqual(calls.resync, [], 'no resync before the socket drained');

  socket.sent(0);
  assert.deepEqual(calls.resync, ['slow_client']);
  assert.equal(conn.state, 'live');
  assert.equal(conn.overflowAt, 0);
  assert.deepEqual(labelled(socket.written.slice(writtenBefore)), [label(noticeFrame)], 'only what the resync sent, none of the dropped frames');

  await microtasks();
  socket.sent(0);
  assert.deepEqual(calls.resync, ['slow_client'], 'resynced once');
  const after = [event('btcusdt@trade')];
  deliver(conn, after);
  conn.flush();
  assert.deepEqual(labelled(socket.bursts.at(-1)), labelled(frames(after)));
});

test('ClientConn: a queue over the cap on an idle socket resyncs right away', async () => {
  const { socket, conn, calls, noticeFrame } = setup(64 * 1024);
  for (let i = 0; i < 5_000 && conn.state === 'live'; i++) deliver(conn, [filler[i % filler.length]!]); // one slice, never flushed
  assert.equal(conn.state, 'resyncing');
  await microtasks();
  assert.deepEqual(calls.resync, ['slow_client']);
  assert.equal(conn.state, 'live');
  assert.deepEqual(labelled(socket.written), [label(noticeFrame)]);
});

test('ClientConn: a socket that empties without ever filling up does not leave the client stuck', async () => {
  // Below the socket's high-water mark a write never returns false, so Node never emits 'drain'.
  const { socket, conn, calls } = setup(64 * 1024); // a small cap: a quarter of it is 16 KiB
  const burst = Array.from({ length: 150 }, () => event('btcusdt@trade'));
  deliver(conn, burst);
  conn.flush();
  assert.ok(socket.writableLength > 16 * 1024 && !socket.writableNeedDrain, 'a quarter of the cap in the socket buffer, yet under its high-water mark');
  socket.sent(0); // the kernel took it all: no 'drain' event
  const next = [event('btcusdt@trade')];
  deliver(conn, next);
  conn.flush();
  assert.deepEqual(labelled(socket.bursts.at(-1)), labelled(frames(next)), 'the next slice is written');

  // An overflow while a few bytes sit in the socket buffer (no 'drain' coming either).
  socket.stall(1000);
  for (let i = 0; i < 5_000 && conn.state !== 'resyncing'; i++) deliver(conn, [filler[i % filler.length]!]);
  assert.equal(conn.state, 'resyncing');
  await microtasks();
  socket.sent(0);
  await microtasks();
  assert.deepEqual(calls.resync, ['slow_client'], 'resynced without a drain event');
  assert.equal(conn.state, 'live');
});

test('ClientConn: close() flushes what was queued, marks it closed, aborts its signal, and nothing is written after', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { socket, ws, conn, calls } = setup(1024 * 1024);
  let aborted = 0;
  conn.abort.signal.addEventListener('abort', () => aborted++);
  const queued = event('btcusdt@trade');
  const explanation = named(prepareFrame('{"error":{"code":4,"msg":"Too many streams"},"id":1}', false), 'error');
  deliver(conn, [queued]);
  conn.send(explanation);
  conn.close(1008, 'policy');
  assert.equal(conn.state, 'closed');
  assert.equal(conn.abort.signal.aborted, true);
  assert.equal(aborted, 1);
  assert.deepEqual(ws.closes, [[1008, 'policy']]);
  assert.deepEqual(socket.bursts.map(labelled), [labelled([queued.frame('raw'), explanation])], 'what was queued goes out, in one burst');
  assert.equal(ws.writtenAtClose, 2, '... before the close frame');

  const dirtyBefore = calls.dirty;
  deliver(conn, [event('btcusdt@trade'), event('btcusdt@ticker')]);
  conn.send(prepareFrame('{"result":null}', false));
  conn.flush();
  assert.equal(socket.written.length, 2, 'nothing written after close');
  assert.equal(calls.dirty, dirtyBefore);

  conn.close(1000, 'again');
  conn.markClosed();
  assert.equal(ws.closes.length, 1, 'closed once');
  assert.equal(aborted, 1, 'aborted once');

  assert.equal(ws.terminated, 0);
  t.mock.timers.tick(2_000);
  assert.equal(ws.terminated, 1, 'a peer that never completes the close handshake is cut');
});

test('ClientConn: a connection closed while resyncing is not resynced when the socket drains', async () => {
  const { socket, conn, calls } = setup(1024 * 1024);
  socket.stall(300 * 1024);
  for (let i = 0; i < 20_000 && conn.state !== 'resyncing'; i++) deliver(conn, [filler[i % filler.length]!]);
  assert.equal(conn.state, 'resyncing');
  conn.markClosed();
  socket.sent(0);
  await microtasks();
  assert.deepEqual(calls.resync, []);
  assert.deepEqual(socket.bursts, []);
});

test('ClientConn: a destroyed or unwritable socket is not written to', () => {
  const { socket, conn } = setup(1024 * 1024);
  deliver(conn, [event('btcusdt@trade')]);
  socket.writable = false;
  conn.flush();
  socket.writable = true;
  socket.destroyed = true;
  conn.flush();
  assert.deepEqual(socket.bursts, []);
});

test('ClientConn: a drain into kernel buffers does not end the grace; answering the heartbeat sent at the overflow does', async () => {
  const { socket, ws, conn, calls } = setup(1024 * 1024);
  socket.stall(300 * 1024);
  for (let i = 0; i < 20_000 && conn.state !== 'resyncing'; i++) deliver(conn, [filler[i % filler.length]!]);
  assert.equal(conn.state, 'resyncing');
  const stuckSince = conn.stuckSince;
  assert.ok(stuckSince > 0);
  assert.equal(ws.pings, 1, 'a heartbeat is queued behind everything sent so far');

  socket.sent(0); // the kernel took the bytes: the client is resynced, yet nobody has read anything
  assert.deepEqual(calls.resync, ['slow_client']);
  assert.equal(conn.state, 'live');
  assert.equal(conn.stuckSince, stuckSince, 'still stuck: the grace keeps counting from the first overflow');

  // Overflowing again (the kernel buffers are full now) neither restarts the grace nor sends another proof heartbeat.
  socket.stall(300 * 1024);
  deliver(conn, [event('btcusdt@trade')]);
  conn.flush();
  for (let i = 0; i < 20_000 && conn.state !== 'resyncing'; i++) deliver(conn, [filler[i % filler.length]!]);
  assert.equal(conn.state, 'resyncing');
  assert.equal(conn.stuckSince, stuckSince);
  assert.equal(ws.pings, 1);

  conn.heartbeat(); // a routine heartbeat after the proof one
  assert.ok(conn.heartbeatAnswered() > 0, 'the round trip of the oldest heartbeat');
  assert.equal(conn.stuckSince, 0, 'the proof heartbeat was answered: the client reads again');
});

test('ClientConn: an answer to a heartbeat sent before the overflow does not clear it', () => {
  const { socket, conn } = setup(1024 * 1024);
  conn.heartbeat(); // routine, before the client fell behind
  socket.stall(300 * 1024);
  for (let i = 0; i < 20_000 && conn.state !== 'resyncing'; i++) deliver(conn, [filler[i % filler.length]!]);
  const stuckSince = conn.stuckSince;
  assert.ok(stuckSince > 0);
  conn.heartbeatAnswered(); // answers the older heartbeat only
  assert.equal(conn.stuckSince, stuckSince);
  conn.heartbeatAnswered(); // now the one sent at the overflow
  assert.equal(conn.stuckSince, 0);
  conn.heartbeatAnswered(); // unsolicited: counts for nothing
  assert.equal(conn.stuckSince, 0);
});

test('ClientConn: the end is told once through hooks.closed; a signal asked for only after the end is already aborted', () => {
  const socket = new FakeSocket();
  const ws = new FakeWs();
  ws.socket = socket;
  const closed: number[] = [];
  const hooks = { markDirty: () => {}, overflowed: () => {}, resync: () => {}, closed: (c: ClientConn) => void closed.push(c.id) };
  const conn = new ClientConn({ transport: new WsTransport(ws as unknown as WebSocket, socket as unknown as Socket), format: 'raw', capBytes: 1024, ratePerSec: 10, burst: 20, hooks });
  conn.markClosed();
  conn.markClosed();
  conn.close(1000, 'again');
  assert.deepEqual(closed, [conn.id], 'closed hook called once');
  assert.equal(conn.abort.signal.aborted, true, 'a late signal starts aborted, so a late binder unbinds at once');
});
