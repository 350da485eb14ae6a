import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { PAYLOAD_DEPTH_SNAPSHOT, readEventHeader } from '../../system/common/event-header.ts';
import { EventSchema, type Event } from '../../proto/gen/market_pb.js';

// Deterministic PRNG so a failure can be reproduced.
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PAYLOAD_FIELDS = { ticker: 10, kline: 11, depthUpdate: 12, depthSnapshot: 13, trade: 14, order: 15 } as const;
type PayloadCase = keyof typeof PAYLOAD_FIELDS;

// Every payload message has a `symbol`; that is enough to put the payload on the wire.
const payload = (kind: PayloadCase, symbol: string) => ({ case: kind, value: { symbol } }) as MessageInitShape<typeof EventSchema>['payload'];

function randomEvent(rnd: () => number, kind: PayloadCase): Event {
  const symbol = ['btcusdt', 'ethusdt', 'sym123usdt', 'é'][Math.floor(rnd() * 4)]!;
  return create(EventSchema, {
    topic: `${symbol}@${kind}`,
    seq: BigInt(Math.floor(rnd() * 2 ** 40)),
    epoch: BigInt(Math.floor(rnd() * 2 ** 32)),
    publishTimeUs: BigInt(1_600_000_000_000_000 + Math.floor(rnd() * 400_000_000_000_000)),
    payload: payload(kind, symbol),
  });
}

test('readEventHeader equals a full decode for random events of every payload kind', () => {
  const rnd = prng(7);
  for (let i = 0; i < 600; i++) {
    const kind = Object.keys(PAYLOAD_FIELDS)[i % 6] as PayloadCase;
    const ev = randomEvent(rnd, kind);
    const bytes = toBinary(EventSchema, ev);
    const full = fromBinary(EventSchema, bytes);
    const h = readEventHeader(bytes);
    assert.deepEqual(
      h,
      { topic: full.topic, seq: Number(full.seq), epoch: Number(full.epoch), publishTimeUs: Number(full.publishTimeUs), payloadField: PAYLOAD_FIELDS[kind] },
      `event ${i}`,
    );
  }
});

test('readEventHeader: exact at the edges (2^40 seq, 2^53-1, zero fields left out, no payload)', () => {
  const cases = [
    { topic: 'btcusdt@trade', seq: 2n ** 40n, epoch: 1n, publishTimeUs: 1_767_225_600_123_456n },
    { topic: 'btcusdt@trade', seq: BigInt(Number.MAX_SAFE_INTEGER), epoch: 127n, publishTimeUs: 128n },
    { topic: '', seq: 0n, epoch: 0n, publishTimeUs: 0n },
    { topic: 'x'.repeat(300), seq: 1n, epoch: 0n, publishTimeUs: 1n }, // 2-byte topic length
  ];
  for (const c of cases) {
    const bytes = toBinary(EventSchema, create(EventSchema, c));
    assert.deepEqual(readEventHeader(bytes), { topic: c.topic, seq: Number(c.seq), epoch: Number(c.epoch), publishTimeUs: Number(c.publishTimeUs), payloadField: 0 });
  }
});

test('readEventHeader: a depth snapshot is payload field 13', () => {
  assert.equal(PAYLOAD_DEPTH_SNAPSHOT, 13);
  const bytes = toBinary(EventSchema, create(EventSchema, { topic: 'btcusdt@depth', seq: 5n, epoch: 1n, payload: { case: 'depthSnapshot', value: { symbol: 'btcusdt', lastUpdateId: 9n } } }));
  assert.equal(readEventHeader(bytes).payloadField, PAYLOAD_DEPTH_SNAPSHOT);
});

test('readEventHeader: garbage input throws', () => {
  const garbage: Array<[string, number[], RegExp]> = [
    ['a lone continuation byte', [0xff], /truncated varint/],
    ['a topic longer than the buffer', [0x0a, 0x10, 0x61], /truncated topic/],
    ['a seq varint cut short', [0x10, 0x80, 0x80], /truncated varint/],
    ['seq with the wrong wire type', [0x12, 0x01, 0x00], /unexpected wire type 2 for field 2/],
    ['a topic as a fixed64', [0x09, 0, 0, 0, 0, 0, 0, 0, 0], /unexpected wire type 1 for field 1/],
    ['an endless varint', [0x10, ...Array(11).fill(0xff), 0x01], /varint too long/],
  ];
  for (const [what, bytes, re] of garbage) assert.throws(() => readEventHeader(Uint8Array.from(bytes)), re, what);
});
