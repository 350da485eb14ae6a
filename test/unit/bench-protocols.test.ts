// The bench's protocol plumbing without a cluster: ServerBatch → ServerFrames
// without a decode (gRPC), close codes from error frames, formats in captures
// and scenarios, fixed `connect:` addresses per protocol, format weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ServerBatchSchema, ServerFrameSchema } from '../../proto/gen/client_pb.js';
import { clientFrame, closeCodeOf, forEachBatchFrame, HEARTBEAT_TAG } from '../../cli/lib/bench/proto-frames.ts';
import { loadScenario, parseCapture, parseConnect, protocolOf, WIRE_FORMATS } from '../../cli/lib/bench/scenario.ts';
import { expandShare } from '../../cli/lib/bench/plan.ts';
import { Meter, TopicTrack } from '../../cli/lib/bench/meter.ts';
import { wrapServerFrame } from '../../system/gateway/codec.ts';

const frames = [
  create(ServerFrameSchema, { kind: { case: 'event', value: { topic: 'btcusdt@trade', seq: 7n, epoch: 1n, publishTimeUs: 1n, payload: { case: 'trade', value: { symbol: 'btcusdt', tradeId: 9n, price: '1', qty: '2' } } } } }),
  create(ServerFrameSchema, { kind: { case: 'heartbeat', value: { serverTimeUs: 123n } } }),
  create(ServerFrameSchema, { kind: { case: 'result', value: { id: 3n, topics: ['a', 'b'] } } }),
  // Over 127 bytes: a two-byte length varint.
  create(ServerFrameSchema, { kind: { case: 'error', value: { id: 0n, code: 4002, msg: 'x'.repeat(300) } } }),
];

test('a ServerBatch splits into the exact bytes of each ServerFrame, session_id skipped', () => {
  const batch = Buffer.from(toBinary(ServerBatchSchema, create(ServerBatchSchema, { sessionId: 'abc', frames })));
  const got: Buffer[] = [];
  forEachBatchFrame(batch, (f) => got.push(f));
  assert.equal(got.length, frames.length);
  got.forEach((f, i) => {
    assert.deepEqual(new Uint8Array(f), toBinary(ServerFrameSchema, frames[i]!));
    assert.equal(f.buffer, batch.buffer, 'a view, not a copy');
  });
  assert.equal(got[1]![0], HEARTBEAT_TAG);
  assert.equal(closeCodeOf(got[3]!), 4002);
  assert.equal(closeCodeOf(got[2]!), undefined);
});

test('the gateway\'s pre-encoded gRPC pieces split the same way', () => {
  // What the gateway writes on gRPC: each frame wrapped as field 1, concatenated.
  const bytes = frames.map((f) => toBinary(ServerFrameSchema, f));
  const batch = Buffer.concat(bytes.map((b) => wrapServerFrame('grpc', b)));
  const got: Uint8Array[] = [];
  forEachBatchFrame(batch, (f) => got.push(new Uint8Array(f)));
  assert.deepEqual(got, bytes);
  // …and the meter reads the event out of the split frame.
  const meter = new Meter(() => 10);
  meter.onProtobuf(Buffer.from(bytes[0]!), new TopicTrack());
  assert.equal(meter.counters.msgs, 1);
  assert.deepEqual(fromBinary(ServerBatchSchema, batch).frames.length, frames.length);
});

test('an empty batch has no frames; a truncated or malformed one throws', () => {
  let n = 0;
  forEachBatchFrame(Buffer.alloc(0), () => n++);
  assert.equal(n, 0);
  const batch = Buffer.from(toBinary(ServerBatchSchema, create(ServerBatchSchema, { frames })));
  assert.throws(() => forEachBatchFrame(batch.subarray(0, batch.length - 3), () => {}), /truncated ServerBatch/);
  assert.throws(() => forEachBatchFrame(Buffer.from([0x0a, 0x80]), () => {}), /truncated ServerBatch \(varint\)/);
  assert.throws(() => forEachBatchFrame(Buffer.from([0x0b]), () => {}), /wire type 3/);
});

test('ClientFrames for requests and heartbeat pings', () => {
  assert.ok(clientFrame('ping', 0).length > 0);
  const sub = clientFrame('subscribe', 5, ['btcusdt@trade']);
  assert.ok(Buffer.from(sub).includes('btcusdt@trade'));
});

test('capture formats: every protocol, grpc from a recorded protocol, unknown ones refused', () => {
  const lines = WIRE_FORMATS.map((f, i) => JSON.stringify({ t: i, s: `s${i}`, ev: 'connect', format: f, streams: ['btcusdt@trade'] }));
  lines.push(JSON.stringify({ t: 9, s: 'rec', ev: 'connect', format: 'protobuf', protocol: 'grpc', streams: [] }));
  const sessions = parseCapture(lines.join('\n'));
  assert.deepEqual(sessions.map((s) => s.format), [...WIRE_FORMATS, 'grpc']);
  assert.throws(() => parseCapture(JSON.stringify({ t: 0, s: 'x', ev: 'connect', format: 'carrier-pigeon' })), /unknown format "carrier-pigeon"/);
  assert.deepEqual(WIRE_FORMATS.map(protocolOf), ['ws', 'ws', 'tcp', 'grpc', 'grpc-web']);
});

test('fixed connect addresses: one per protocol by scheme; ws and gRPC-web share the HTTP port', () => {
  assert.deepEqual(parseConnect('ws://h:8080'), { ws: 'ws://h:8080', 'grpc-web': 'http://h:8080' });
  assert.deepEqual(parseConnect('http://h:8080/ tcp://h:7301 grpc://h:7400'), { ws: 'ws://h:8080', 'grpc-web': 'http://h:8080', tcp: 'h:7301', grpc: 'h:7400' });
  assert.throws(() => parseConnect('h:7400'), /unknown scheme/);
  assert.throws(() => parseConnect('grpc://h'), /needs a port/);
  const dir = mkdtempSync(join(tmpdir(), 'bench-protocols-'));
  try {
    const file = join(dir, 's.yaml');
    writeFileSync(file, 'sessions: [{ id: a, format: grpc, ops: [{ t: 0, ev: connect, streams: [btcusdt@trade] }] }]\nconnect: ws://127.0.0.1:1\n');
    assert.throws(() => loadScenario(file), /connect has no grpc address for the grpc sessions/);
    writeFileSync(file, 'sessions: [{ id: a, format: grpc, ops: [{ t: 0, ev: connect, streams: [btcusdt@trade] }] }]\nconnect: grpc://127.0.0.1:1\n');
    assert.equal(loadScenario(file).sessions[0]!.format, 'grpc');
    writeFileSync(file, 'sessions: [{ id: a, ops: [{ t: 0, ev: connect, streams: [btcusdt@trade] }] }]\nformats: { grpc-web: 1, quic: 1 }\n');
    assert.throws(() => loadScenario(file), /formats has "quic" \(json, protobuf, tcp, grpc, grpc-web\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('format weights draw gRPC and gRPC-web copies too', () => {
  const sessions = parseCapture(JSON.stringify({ t: 0, s: 'a', ev: 'connect', format: 'json', streams: ['btcusdt@trade'] }));
  const copies = expandShare({
    runId: 'r', agent: 'a', index: 0, agents: 1, sessions, amplify: 400, jitterMs: 0, speed: 1, durationMs: 1_000, seed: 1,
    connect: 'router', router: 'http://x', formats: { grpc: 1, 'grpc-web': 1 }, snapshotMs: 1_000, applyClockOffset: false,
  });
  const count = (f: string) => copies.filter((c) => c.format === f).length;
  assert.equal(count('grpc') + count('grpc-web'), 400);
  assert.ok(count('grpc') > 100 && count('grpc-web') > 100, `${count('grpc')} / ${count('grpc-web')}`);
  assert.equal((copies[0]!.ops[0] as { format: string }).format, copies[0]!.format);
});
