import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TopicHistory } from '../../system/common/topic-history.ts';
import type { EventHeader } from '../../system/common/event-header.ts';

const TOPIC = 'btcusdt@depth';
const hdr = (seq: number, epoch = 1, payloadField = 12): EventHeader => ({ topic: TOPIC, seq, epoch, publishTimeUs: seq * 1000, payloadField });
// Each stored event's bytes name its epoch and seq, so results can be read back.
const bytes = (seq: number, epoch = 1) => new TextEncoder().encode(`${epoch}:${seq}`);
const names = (events: Uint8Array[] | undefined) => events?.map((b) => new TextDecoder().decode(b));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `1:${from + i}`);

function filled(capacity: number, lastSeq: number): TopicHistory {
  const h = new TopicHistory(TOPIC, capacity);
  for (let s = 1; s <= lastSeq; s++) assert.equal(h.add(hdr(s), bytes(s)), 'added');
  return h;
}

test('TopicHistory.add rejects duplicates and older events of the same epoch', () => {
  const h = new TopicHistory(TOPIC, 8);
  assert.equal(h.add(hdr(1), bytes(1)), 'added');
  assert.equal(h.add(hdr(2), bytes(2)), 'added');
  assert.equal(h.add(hdr(2), bytes(99)), false, 'duplicate');
  assert.equal(h.add(hdr(1), bytes(99)), false, 'older');
  assert.equal(h.lastSeq, 2);
  assert.deepEqual(names([h.latest!.bytes]), ['1:2'], 'a rejected event does not replace the latest');
  assert.deepEqual(names(h.since(1, 0)), ['1:1', '1:2'], 'nor enter the ring');
});

test('TopicHistory.since returns exactly what was missed, or undefined once the ring lost it', () => {
  const h = filled(5, 12); // ring holds 8..12
  assert.equal(h.oldestSeq, 8);
  assert.deepEqual(names(h.since(1, 12)), [], 'up to date');
  assert.deepEqual(names(h.since(1, 20)), [], 'ahead of us (e.g. a client that saw more elsewhere)');
  assert.deepEqual(names(h.since(1, 11)), range(12, 12));
  assert.deepEqual(names(h.since(1, 9)), range(10, 12));
  assert.deepEqual(names(h.since(1, 7)), range(8, 12), 'the oldest kept event is exactly the next one');
  assert.equal(h.since(1, 6), undefined, 'seq 7 is gone');
  assert.equal(h.since(1, 0), undefined);
  assert.equal(h.since(2, 11), undefined, 'another epoch cannot resume');

  const small = filled(5, 3); // ring not yet full
  assert.deepEqual(names(small.since(1, 0)), range(1, 3));
  assert.equal(new TopicHistory(TOPIC, 5).since(0, 0)?.length, 0);
});

test('TopicHistory.since stays correct while the ring wraps many times', () => {
  const cap = 7;
  const h = new TopicHistory(TOPIC, cap);
  for (let s = 1; s <= 100; s++) {
    h.add(hdr(s), bytes(s));
    const oldest = Math.max(1, s - cap + 1);
    assert.equal(h.oldestSeq, oldest);
    assert.deepEqual(names(h.since(1, oldest - 1)), range(oldest, s), `after ${s}`);
    if (oldest > 1) assert.equal(h.since(1, oldest - 2), undefined, `after ${s}`);
  }
});

test('TopicHistory: a new epoch resets sequence, latest, snapshot and ring', () => {
  const h = filled(8, 6);
  h.setDepthSnapshot(hdr(5, 1, 13), bytes(5));
  assert.equal(h.add(hdr(1, 2), bytes(1, 2)), 'added', 'seq 1 of a new epoch is accepted');
  assert.equal(h.epoch, 2);
  assert.equal(h.lastSeq, 1);
  assert.equal(h.depthSnapshot, undefined);
  assert.deepEqual(names(h.since(2, 0)), ['2:1']);
  assert.equal(h.since(1, 5), undefined, 'the old epoch is gone');
  assert.deepEqual(h.snapshot('depth'), { events: [], seq: 0, ready: false }, 'depth waits for a snapshot of the new epoch');
  // A snapshot arriving with a new epoch resets too.
  h.setDepthSnapshot(hdr(4, 3, 13), bytes(4, 3));
  assert.equal(h.epoch, 3);
  assert.equal(h.latest, undefined);
  assert.equal(h.since(3, 0)?.length, 0);
});

test('TopicHistory.snapshot: ticker and kline give the latest event, trade gives nothing', () => {
  const h = filled(4, 9);
  for (const kind of ['ticker', 'kline'] as const) {
    const s = h.snapshot(kind);
    assert.deepEqual({ ...s, events: names(s.events) }, { events: ['1:9'], seq: 9, ready: true }, kind);
  }
  assert.deepEqual(h.snapshot('trade'), { events: [], seq: 9, ready: true });
  assert.deepEqual(new TopicHistory('x@ticker', 4).snapshot('ticker'), { events: [], seq: 0, ready: true }, 'nothing yet');
});

test('TopicHistory.snapshot(depth): the snapshot plus the diffs after it, not ready without one', () => {
  const h = filled(10, 20); // ring 11..20
  assert.deepEqual(h.snapshot('depth'), { events: [], seq: 0, ready: false }, 'no snapshot yet');

  h.setDepthSnapshot(hdr(16, 1, 13), new TextEncoder().encode('snap16'));
  let s = h.snapshot('depth');
  assert.deepEqual({ ...s, events: names(s.events) }, { events: ['snap16', ...range(17, 20)], seq: 20, ready: true });

  h.setDepthSnapshot(hdr(14, 1, 13), new TextEncoder().encode('snap14'));
  assert.deepEqual(names([h.depthSnapshot!.bytes]), ['snap16'], 'an older snapshot never replaces a newer one');

  h.setDepthSnapshot(hdr(20, 1, 13), new TextEncoder().encode('snap20'));
  s = h.snapshot('depth');
  assert.deepEqual({ ...s, events: names(s.events) }, { events: ['snap20'], seq: 20, ready: true }, 'snapshot is current');

  // The snapshot got so old that the ring no longer has the diffs right after it.
  for (let seq = 21; seq <= 40; seq++) h.add(hdr(seq), bytes(seq));
  assert.deepEqual(h.snapshot('depth'), { events: [], seq: 0, ready: false });

  // A snapshot ahead of the diffs received so far (the diffs are late) is usable on its own.
  h.setDepthSnapshot(hdr(42, 1, 13), new TextEncoder().encode('snap42'));
  s = h.snapshot('depth');
  assert.deepEqual({ ...s, events: names(s.events) }, { events: ['snap42'], seq: 42, ready: true });
});

test('TopicHistory: a late event from an older epoch is dropped, not a reset', () => {
  const th = new TopicHistory('btcusdt@trade', 8);
  const ev = (epoch: number, seq: number) => ({ topic: 'btcusdt@trade', seq, epoch, publishTimeUs: 0, payloadField: 14 });
  assert.equal(th.add(ev(200, 1), new Uint8Array([1])), 'added');
  assert.equal(th.add(ev(200, 2), new Uint8Array([2])), 'added');
  assert.equal(th.add(ev(100, 9), new Uint8Array([9])), false, 'older epoch ignored');
  assert.equal(th.epoch, 200);
  assert.equal(th.lastSeq, 2);
  assert.deepEqual(th.since(200, 0), [new Uint8Array([1]), new Uint8Array([2])]);
});

test('TopicHistory.add past a hole says so, and never serves a position or a depth book across it', () => {
  const h = filled(16, 10);
  h.setDepthSnapshot({ ...hdr(8), payloadField: 13 }, bytes(8));
  assert.equal(h.snapshot('depth').ready, true);
  assert.equal(h.add(hdr(14), bytes(14)), 'after_gap', 'seqs 11..13 never arrived');
  assert.equal(h.lastSeq, 14);
  assert.equal(h.since(1, 10), undefined, 'the missed 11..13 cannot be replayed');
  assert.equal(h.since(1, 5), undefined);
  assert.deepEqual(names(h.since(1, 13)), ['1:14'], 'positions after the hole are served');
  assert.equal(h.snapshot('depth').ready, false, 'the old snapshot plus diffs would be a book with a hole: wait for the next one');
  assert.equal(h.add(hdr(15), bytes(15)), 'added');
  h.setDepthSnapshot({ ...hdr(15), payloadField: 13 }, bytes(15));
  assert.deepEqual(names(h.snapshot('depth').events), ['1:15'], 'the next snapshot is usable');
});
