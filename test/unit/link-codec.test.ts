import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { decodeLinkBatch, decodeLinkItems, encodeLinkBatch, encodeLinkItems, frameField1 } from '../../system/common/link-codec.ts';
import { LinkBatchSchema, LinkNoticeSchema } from '../../proto/gen/internal_pb.js';
import { EventSchema, type Event } from '../../proto/gen/market_pb.js';
import { ServerFrameSchema } from '../../proto/gen/client_pb.js';

function tradeEvent(seq: number, qtyPadding = 0): Event {
  return create(EventSchema, {
    topic: 'btcusdt@trade',
    seq: BigInt(seq),
    epoch: 3n,
    publishTimeUs: 1_767_225_600_000_000n + BigInt(seq),
    payload: {
      case: 'trade',
      value: { symbol: 'btcusdt', tradeId: BigInt(seq), price: '101.5', qty: '0.25' + '0'.repeat(qtyPadding), tradeTime: 1_767_225_600_000n, buyerIsMaker: seq % 2 === 0 },
    },
  });
}

// An encoded event of exactly `size` bytes (padding a decimal with zeros), to hit the
// varint boundaries of the length prefix: 1 byte up to 127, 2 up to 16383, 3 above.
function eventOfSize(size: number, seq: number): Uint8Array {
  let padding = 0;
  for (let i = 0; i < 5; i++) {
    const bytes = toBinary(EventSchema, tradeEvent(seq, padding));
    if (bytes.length === size) return bytes;
    padding += size - bytes.length;
  }
  throw new Error(`cannot build an event of ${size} bytes`);
}

const notices = [
  create(LinkNoticeSchema, { topic: 'nope@trade', kind: 'unknown_topic', detail: 'no such topic' }),
  create(LinkNoticeSchema, { topic: 'btcusdt@depth', kind: 'resync', detail: 'server queue overflowed' }),
];

const cases: Array<{ name: string; events: Uint8Array[] }> = [
  { name: 'no events', events: [] },
  { name: 'one event', events: [toBinary(EventSchema, tradeEvent(1))] },
  { name: 'many events', events: Array.from({ length: 300 }, (_, i) => toBinary(EventSchema, tradeEvent(i + 1))) },
  { name: 'an empty event', events: [new Uint8Array(0), toBinary(EventSchema, tradeEvent(2))] },
  {
    name: 'events around the varint boundaries',
    events: [127, 128, 129, 200, 16383, 16384, 16385, 70_000, 2_100_000].map((size, i) => eventOfSize(size, i + 1)),
  },
];

test('eventOfSize produces the sizes the boundary cases need', () => {
  for (const size of [100, 127, 128, 16383, 16384, 70_000]) assert.equal(eventOfSize(size, 1).length, size);
});

for (const { name, events } of cases) {
  for (const withNotices of [false, true]) {
    const ns = withNotices ? notices : [];
    test(`link-codec: ${name}${withNotices ? ' with notices' : ''} round-trips and matches protobuf-es`, () => {
      const encoded = encodeLinkBatch(events, ns);
      const reference = toBinary(LinkBatchSchema, create(LinkBatchSchema, { events, notices: ns }));
      assert.deepEqual(Buffer.from(encoded), Buffer.from(reference), 'same bytes as the generic encoder');

      const decoded = decodeLinkBatch(encoded);
      assert.equal(decoded.events.length, events.length);
      for (let i = 0; i < events.length; i++) assert.deepEqual(Buffer.from(decoded.events[i]!), Buffer.from(events[i]!), `event ${i}`);
      assert.deepEqual(
        decoded.notices.map((n) => [n.topic, n.kind, n.detail]),
        ns.map((n) => [n.topic, n.kind, n.detail]),
      );

      // protobuf-es reads what we wrote, and we read what protobuf-es wrote.
      const generic = fromBinary(LinkBatchSchema, encoded);
      assert.equal(generic.events.length, events.length);
      for (let i = 0; i < events.length; i++) assert.deepEqual(Buffer.from(generic.events[i]!), Buffer.from(events[i]!));
      const fromReference = decodeLinkBatch(reference);
      assert.deepEqual(fromReference.events.map((e) => Buffer.from(e)), events.map((e) => Buffer.from(e)));
      assert.equal(fromReference.notices.length, ns.length);
    });
  }
}

test('link-codec: decoded events are views into the batch, and decode as the original events', () => {
  const original = [tradeEvent(7), tradeEvent(8)];
  const batch = encodeLinkBatch(original.map((e) => toBinary(EventSchema, e)));
  const { events } = decodeLinkBatch(batch);
  assert.equal(events[0]!.buffer, batch.buffer, 'no copy');
  assert.deepEqual(events.map((e) => fromBinary(EventSchema, e)), original);
});

test('link-codec: frameField1 around Event bytes is a ServerFrame carrying that event', () => {
  for (const size of [100, 127, 128, 16384, 70_000]) {
    const bytes = eventOfSize(size, 5);
    const framed = frameField1(bytes);
    const frame = fromBinary(ServerFrameSchema, framed);
    assert.equal(frame.kind.case, 'event');
    assert.deepEqual(frame.kind.value, fromBinary(EventSchema, bytes), `size ${size}`);
    const reference = toBinary(ServerFrameSchema, create(ServerFrameSchema, { kind: { case: 'event', value: fromBinary(EventSchema, bytes) } }));
    assert.deepEqual(Buffer.from(framed), Buffer.from(reference), `size ${size}: same bytes as the generic encoder`);
  }
});

test('link-codec: truncated input throws a clear error', () => {
  const events = [eventOfSize(100, 1), eventOfSize(20_000, 2)];
  const batch = encodeLinkBatch(events);
  // Cut inside the second event's length prefix and inside its body.
  const secondStart = 1 + 1 + 100;
  assert.throws(() => decodeLinkBatch(batch.subarray(0, secondStart + 2)), /truncated LinkBatch/);
  assert.throws(() => decodeLinkBatch(batch.subarray(0, secondStart + 1)), /truncated LinkBatch/);
  assert.throws(() => decodeLinkBatch(batch.subarray(0, batch.length - 1)), /truncated event in LinkBatch/);
  assert.throws(() => decodeLinkBatch(batch.subarray(0, 50)), /truncated event in LinkBatch/);
  assert.deepEqual(decodeLinkBatch(batch.subarray(0, secondStart)).events.length, 1, 'a cut between events is a shorter batch');
  // Notices cut short are reported by the generic decoder.
  const withNotices = encodeLinkBatch(events, notices);
  assert.throws(() => decodeLinkBatch(withNotices.subarray(0, withNotices.length - 3)));
});

test('link-codec: events and notices keep their order (a notice lands between the events around it)', () => {
  const e1 = toBinary(EventSchema, tradeEvent(1));
  const e5 = toBinary(EventSchema, tradeEvent(5));
  const gap = create(LinkNoticeSchema, { topic: 'btcusdt@trade', kind: 'gap', detail: 'server missed 2..4' });
  const encoded = encodeLinkItems([e1, gap, e5]);
  // Still a valid LinkBatch for the generic decoder.
  const generic = fromBinary(LinkBatchSchema, encoded);
  assert.equal(generic.events.length, 2);
  assert.equal(generic.notices[0]!.kind, 'gap');
  const items = decodeLinkItems(encoded);
  assert.equal(items.length, 3);
  assert.deepEqual(Buffer.from(items[0] as Uint8Array), Buffer.from(e1));
  assert.ok(!(items[1] instanceof Uint8Array) && items[1]!.kind === 'gap' && items[1]!.detail === 'server missed 2..4');
  assert.deepEqual(Buffer.from(items[2] as Uint8Array), Buffer.from(e5));
  assert.throws(() => decodeLinkItems(encoded.subarray(0, encoded.length - e5.length - 4)), /truncated notice in LinkBatch/);
});
