import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkedFanout } from '../../system/common/chunked-fanout.ts';

/** A fan-out whose onSliceEnd (a flush before yielding) logs a marker; `done()` resolves once nothing is pending. */
function fanout(sliceMs: number) {
  const log: string[] = [];
  const f: ChunkedFanout<number> = new ChunkedFanout<number>({ sliceMs, onSliceEnd: () => void log.push('|') });
  const done = async () => {
    while (f.pending > 0) await new Promise((r) => setImmediate(r));
  };
  return { f, log, done };
}

// Makes sure the clock moves between deliveries, so a 0 ms slice always runs out.
function spinUntilClockMoves(): void {
  const t0 = performance.now();
  while (performance.now() === t0);
}

test('ChunkedFanout: every target of every job is delivered exactly once, in job order', async () => {
  const { f, log, done } = fanout(50);
  const targets = Array.from({ length: 100 }, (_, i) => i);
  for (let job = 0; job < 20; job++) f.push(targets, (t) => log.push(`${job}:${t}`));
  assert.equal(f.pending, 20);
  assert.equal(log.length, 0, 'delivery is asynchronous');
  await done();
  const deliveries = log.filter((l) => l !== '|');
  const expected = [];
  for (let job = 0; job < 20; job++) for (const t of targets) expected.push(`${job}:${t}`);
  assert.deepEqual(deliveries, expected);
  assert.equal(f.pending, 0);
  assert.ok(!log.includes('|'), 'a fan-out that never yields leaves the flush to its owner (once per event-loop turn)');
});

test('ChunkedFanout: a big job is split into slices that yield to I/O, with a flush before each yield', async () => {
  const { f, log, done } = fanout(0);
  const targets = Array.from({ length: 5000 }, (_, i) => i);
  const got = new Map<number, number>();
  for (let job = 0; job < 3; job++) {
    f.push(targets, (t) => {
      spinUntilClockMoves();
      got.set(t, (got.get(t) ?? 0) + 1);
      log.push(`${job}:${t}`);
    });
  }
  // Queued right behind the fan-out's first run: it only runs if the fan-out yields.
  setImmediate(() => log.push('io'));
  await done();
  assert.ok(f.yields > 0, 'yields');
  assert.equal(f.slices, f.yields + 1, 'slices counted, including the last');
  assert.equal(log.filter((l) => l === '|').length, f.yields, 'one flush per yield, none when the queue drains');
  const io = log.indexOf('io');
  assert.ok(io > 0 && io < log.length - 1, 'other callbacks ran in the middle of the fan-out');
  assert.equal(log[io - 1], '|', 'the slice was flushed before yielding');
  const firstFlush = log.indexOf('|');
  assert.ok(firstFlush > 0 && firstFlush < log.length - 1, 'a flush happened between deliveries');
  // Still each target exactly once per job, jobs in order.
  assert.equal(got.size, targets.length);
  for (const [t, count] of got) assert.equal(count, 3, `target ${t}`);
  const deliveries = log.filter((l) => l !== '|' && l !== 'io').map((l) => l.split(':').map(Number) as [number, number]);
  for (let i = 1; i < deliveries.length; i++) {
    const [pj, pt] = deliveries[i - 1]!;
    const [j, t] = deliveries[i]!;
    assert.ok(j > pj || (j === pj && t > pt), `order at ${i}: ${pj}:${pt} then ${j}:${t}`);
  }
});

test('ChunkedFanout: a target removed from a live Set before it is reached is skipped', async () => {
  const { f, log, done } = fanout(50);
  const subscribers = new Set([1, 2, 3, 4, 5]);
  const later = new Set([10, 11, 12]);
  f.push(subscribers, (t) => {
    log.push(`a:${t}`);
    if (t === 2) subscribers.delete(4); // 4 unsubscribes while the message is going out
    if (t === 3) later.delete(11);
  });
  f.push(later, (t) => log.push(`b:${t}`));
  await done();
  assert.deepEqual(log.filter((l) => l !== '|'), ['a:1', 'a:2', 'a:3', 'a:5', 'b:10', 'b:12']);
});

test('ChunkedFanout: jobs pushed during delivery and after completion are delivered too', async () => {
  const { f, log } = fanout(50);
  await new Promise<void>((resolve) => {
    f.push([1, 2], (t) => {
      log.push(`a:${t}`);
      if (t === 2) f.push([3], (x) => log.push(`b:${x}`));
    });
    setImmediate(resolve);
  });
  assert.deepEqual(log, ['a:1', 'a:2', 'b:3']);
  await new Promise<void>((resolve) => {
    f.push([4], (t) => log.push(`c:${t}`));
    setImmediate(resolve);
  });
  assert.deepEqual(log, ['a:1', 'a:2', 'b:3', 'c:4']);
});

test('ChunkedFanout: a throwing delivery or flush does not stop the others or wedge the queue', async (t) => {
  const errors = t.mock.method(console, 'error', () => {});
  const log: string[] = [];
  let failFlush = true;
  const f = new ChunkedFanout<number>({
    sliceMs: 0,
    onSliceEnd: () => {
      log.push('|');
      if (failFlush) {
        failFlush = false;
        throw new Error('flush failed');
      }
    },
  });
  const settled = async () => {
    while (f.pending > 0) await new Promise((r) => setImmediate(r));
  };
  f.push([1, 2, 3, 6], (x) => {
    if (x % 2 === 0) throw new Error('bad target');
    log.push(`a:${x}`);
  });
  f.push([4], (x) => log.push(`b:${x}`));
  await settled();
  assert.deepEqual(log, ['a:1', 'a:3', 'b:4']);
  // A job long enough to yield: the flush before the yield throws, and delivery goes on.
  const many = Array.from({ length: 600 }, (_, i) => i);
  let delivered = 0;
  f.push(many, () => {
    spinUntilClockMoves();
    delivered++;
  });
  f.push([5], (x) => log.push(`c:${x}`));
  await settled();
  assert.equal(delivered, many.length);
  assert.equal(log.at(-1), 'c:5');
  assert.ok(log.includes('|'), 'it flushed before yielding');
  assert.equal(f.pending, 0);
  assert.equal(errors.mock.callCount(), 2, 'one log line for the failing job (not one per target), one for the flush');
});

test('ChunkedFanout: a job\'s done callback runs once, after its last target, even across slices', async () => {
  const { f, log, done } = fanout(0);
  const targets = Array.from({ length: 2000 }, (_, i) => i);
  f.push(targets, (t) => {
    if (t % 256 === 0) spinUntilClockMoves();
    log.push(String(t));
  }, () => log.push('done-a'));
  f.push([1, 2], (t) => log.push(`b${t}`), () => log.push('done-b'));
  await done();
  assert.ok(log.includes('|'), 'the big job was sliced');
  assert.equal(log.filter((l) => l === 'done-a').length, 1);
  assert.equal(log.indexOf('done-a'), log.indexOf('1999') + 1, 'done follows the last delivery of its job');
  assert.deepEqual(log.slice(-3), ['b1', 'b2', 'done-b']);
});
