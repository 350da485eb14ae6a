// TopicHub's gap handling, with events as a push-server sends them: a jump is
// first filled from the server's history (the events after it held); what
// cannot be filled is announced to each subscriber in order — after every
// event sent before the hole, before the first one after it — and depth
// subscribers get nothing more until a fresh snapshot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { TopicHub } from '../../system/gateway/topic-hub.ts';
import { ProcessStats } from '../../system/common/process-stats.ts';
import { createLogger } from '../../system/common/logger.ts';
import { parseTopic, type ParsedTopic } from '../../system/common/topics.ts';
import { EventSchema } from '../../proto/gen/market_pb.js';
import { ServerFrameSchema } from '../../proto/gen/client_pb.js';
import type { ClientConn } from '../../system/gateway/client-conn.ts';
import type { EncodedEvent } from '../../system/gateway/codec.ts';

const trade = (seq: number, epoch = 1) =>
  toBinary(EventSchema, create(EventSchema, { topic: 'btcusdt@trade', seq: BigInt(seq), epoch: BigInt(epoch), publishTimeUs: 1n, payload: { case: 'trade', value: { symbol: 'btcusdt', tradeId: BigInt(seq), price: '1', qty: '1' } } }));
const diff = (seq: number) =>
  toBinary(EventSchema, create(EventSchema, { topic: 'btcusdt@depth', seq: BigInt(seq), epoch: 1n, publishTimeUs: 1n, payload: { case: 'depthUpdate', value: { symbol: 'btcusdt', firstUpdateId: BigInt(seq), finalUpdateId: BigInt(seq) } } }));
const snapshot = (seq: number) =>
  toBinary(EventSchema, create(EventSchema, { topic: 'btcusdt@depth', seq: BigInt(seq), epoch: 1n, publishTimeUs: 1n, payload: { case: 'depthSnapshot', value: { symbol: 'btcusdt', lastUpdateId: BigInt(seq) } } }));

/** A connection stand-in (TCP framing) that records what it was sent, in order: `e5`, `snap9`, `notice:reason@lastSeq`. */
function recordingConn(log: string[]): ClientConn {
  return {
    format: 'tcp',
    topics: new Set<string>(),
    state: 'live',
    deliver: (ev: EncodedEvent) => log.push(`e${ev.seq}`),
    send: (frame: Buffer) => {
      const f = fromBinary(ServerFrameSchema, frame.subarray(4));
      if (f.kind.case === 'event') log.push(`${f.kind.value.payload.case === 'depthSnapshot' ? 'snap' : 'e'}${f.kind.value.seq}`);
    },
    flush() {},
  } as unknown as ClientConn;
}

function setup(topic: string) {
  const log: string[] = [];
  const resubscribed: string[] = [];
  const hub = new TopicHub({
    upstream: { subscribe() {}, unsubscribe() {}, resubscribe: (t) => resubscribed.push(t) },
    log: createLogger('test', undefined, 'error'),
    stats: new ProcessStats(),
    fanoutSliceMs: 5,
    flushIntervalMs: 0,
    lingerMs: 1_000,
    notifyResync: (_c, _t, reason, lastSeq) => log.push(`notice:${reason}@${lastSeq}`),
  });
  const conn = recordingConn(log);
  hub.subscribe(conn, parseTopic(topic) as ParsedTopic);
  return { hub, log, resubscribed, conn };
}

test('a jump is filled from the server\'s history: events after it wait, nothing is announced', async (t) => {
  const { hub, log, resubscribed } = setup('btcusdt@trade');
  t.after(() => hub.stop());
  for (const s of [1, 2, 5, 6]) hub.onEvent(trade(s));
  await sleep(5);
  assert.deepEqual(resubscribed, ['btcusdt@trade'], 'asked the server to resend from where this gateway stands');
  assert.deepEqual(hub.position('btcusdt@trade'), { epoch: 1, afterSeq: 2 });
  assert.deepEqual(log, ['e1', 'e2'], '5 and 6 are held');
  for (const s of [3, 4, 5, 6]) hub.onEvent(trade(s)); // the server's history, then live
  hub.onEvent(trade(7));
  await sleep(5);
  assert.deepEqual(log, ['e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7']);
});

test('a hole the server cannot fill is announced in order: after what came before it, before what comes after', async (t) => {
  const { hub, log } = setup('btcusdt@trade');
  t.after(() => hub.stop());
  // One upstream batch, handled synchronously: the notice must not overtake events still being fanned out.
  for (const s of [1, 2, 3]) hub.onEvent(trade(s));
  hub.onNotice('btcusdt@trade', 'gap', 'push-server missed seq 4..6 on the bus');
  hub.onEvent(trade(7));
  hub.onEvent(trade(8));
  await sleep(5);
  assert.deepEqual(log, ['e1', 'e2', 'e3', 'notice:upstream_gap@3', 'e7', 'e8']);
});

test('a fill the server answers with "gap" (history no longer covers) is announced; held events follow the notice', async (t) => {
  const { hub, log } = setup('btcusdt@trade');
  t.after(() => hub.stop());
  for (const s of [1, 2, 9, 10]) hub.onEvent(trade(s));
  hub.onNotice('btcusdt@trade', 'gap', 'history no longer covers the requested position');
  hub.onEvent(trade(11));
  await sleep(5);
  assert.deepEqual(log, ['e1', 'e2', 'notice:upstream_gap@2', 'e9', 'e10', 'e11']);
});

test('a fill the server never answers is announced after the wait', async (t) => {
  const { hub, log } = setup('btcusdt@trade');
  t.after(() => hub.stop());
  for (const s of [1, 2, 6]) hub.onEvent(trade(s));
  await sleep(5);
  assert.deepEqual(log, ['e1', 'e2']);
  await sleep(1_100);
  assert.deepEqual(log, ['e1', 'e2', 'notice:upstream_gap@2', 'e6']);
});

test('depth: after an announced hole no diff is sent until a fresh snapshot, which comes with its update ids', async (t) => {
  const { hub, log } = setup('btcusdt@depth');
  t.after(() => hub.stop());
  hub.onEvent(snapshot(2));
  await sleep(5);
  hub.onEvent(diff(3));
  hub.onEvent(diff(4));
  hub.onNotice('btcusdt@depth', 'gap', 'push-server missed seq 5..7 on the bus');
  hub.onEvent(diff(8));
  hub.onEvent(diff(9));
  await sleep(5);
  assert.deepEqual(log, ['snap2', 'e3', 'e4', 'notice:upstream_gap@4'], 'diffs after the hole are withheld');
  hub.onEvent(snapshot(9));
  hub.onEvent(diff(10));
  await sleep(5);
  assert.deepEqual(log, ['snap2', 'e3', 'e4', 'notice:upstream_gap@4', 'snap9', 'e10']);
});

test('a new epoch is announced before its first event', async (t) => {
  const { hub, log } = setup('btcusdt@trade');
  t.after(() => hub.stop());
  hub.onEvent(trade(1));
  hub.onEvent(trade(2));
  hub.onEvent(trade(1, 2));
  await sleep(5);
  assert.deepEqual(log, ['e1', 'e2', 'notice:epoch_change@2', 'e1']);
});

test('a server overflow ("resync" notice) is refilled from its history: the jump after it is held, then filled, nothing announced', async (t) => {
  const { hub, log, resubscribed } = setup('btcusdt@trade');
  t.after(() => hub.stop());
  for (const s of [1, 2]) hub.onEvent(trade(s));
  hub.onNotice('btcusdt@trade', 'resync', 'server queue for this gateway stream overflowed');
  hub.onEvent(trade(6)); // live, after what the server dropped
  await sleep(5);
  assert.deepEqual(resubscribed, ['btcusdt@trade']);
  assert.deepEqual(log, ['e1', 'e2']);
  for (const s of [3, 4, 5, 6]) hub.onEvent(trade(s)); // the server's history
  await sleep(1_100); // past the fill wait: nothing more may happen
  assert.deepEqual(log, ['e1', 'e2', 'e3', 'e4', 'e5', 'e6']);
});
