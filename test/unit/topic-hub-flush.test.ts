// TopicHub's flush rounds: with flushIntervalMs 0 every event-loop turn that
// queued frames ends in a round; with an interval, frames queued within it of
// the last round wait and leave in the next round together.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { TopicHub } from '../../system/gateway/topic-hub.ts';
import { ProcessStats } from '../../system/common/process-stats.ts';
import { createLogger } from '../../system/common/logger.ts';
import type { ClientConn } from '../../system/gateway/client-conn.ts';

/** A connection stand-in that records which round flushed it. */
function recorder() {
  const rounds: string[][] = [];
  let current: string[] | undefined;
  const conn = (name: string) =>
    ({
      flush() {
        if (!current) {
          current = [];
          rounds.push(current);
          setImmediate(() => (current = undefined));
        }
        current.push(name);
      },
    }) as unknown as ClientConn;
  return { rounds, conn };
}

function hub(flushIntervalMs: number): TopicHub {
  return new TopicHub({
    upstream: { subscribe() {}, unsubscribe() {}, resubscribe() {} },
    log: createLogger('test', undefined, 'error'),
    stats: new ProcessStats(),
    fanoutSliceMs: 5,
    flushIntervalMs,
    lingerMs: 1_000,
    notifyResync: () => {},
  });
}

test('flushIntervalMs 0: frames queued in separate turns leave in separate rounds', async () => {
  const h = hub(0);
  const { rounds, conn } = recorder();
  const a = conn('a');
  const b = conn('b');
  h.markDirty(a);
  // One check phase: a's round runs (it was queued first), then this resumes.
  // A timer here could fire before a's round when the loop is late, and
  // merge both into one turn.
  await new Promise((r) => setImmediate(r));
  h.markDirty(b);
  await sleep(5);
  assert.deepEqual(rounds, [['a'], ['b']]);
});

test('flushIntervalMs: frames queued within the interval of the last round leave together in the next round', async () => {
  const h = hub(300);
  const { rounds, conn } = recorder();
  const a = conn('a');
  const b = conn('b');
  const c = conn('c');
  // Long after any round: flushed at once.
  h.markDirty(a);
  await sleep(5);
  assert.deepEqual(rounds, [['a']]);
  // Within the interval: held, then both in one round.
  h.markDirty(b);
  await sleep(5);
  h.markDirty(c);
  h.markDirty(b);
  await sleep(20);
  assert.deepEqual(rounds, [['a']], 'nothing flushed before the interval passed');
  await sleep(400);
  assert.deepEqual(rounds, [['a'], ['b', 'c']]);
});

test('flushIntervalMs: an explicit flush (end of a fan-out slice) sends at once and cancels the pending round', async () => {
  const h = hub(300);
  const { rounds, conn } = recorder();
  h.markDirty(conn('a'));
  // Two check phases: a's round, then the recorder closing it. A timer here
  // could fire between them on a late loop and put b into a's round.
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  h.markDirty(conn('b'));
  h.flush();
  await sleep(400);
  assert.deepEqual(rounds, [['a'], ['b']]);
});
