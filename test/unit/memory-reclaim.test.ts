import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_RECLAIM, MemoryReclaim, shouldReclaim } from '../../system/gateway/memory-reclaim.ts';

test('shouldReclaim: only a drop that is large both absolutely and against the peak, and not too soon', () => {
  const p = DEFAULT_RECLAIM;
  assert.equal(shouldReclaim(p, 3_000, 0, 60_000), true, 'everyone left');
  assert.equal(shouldReclaim(p, 3_000, 2_900, 60_000), false, 'a few left: normal churn');
  assert.equal(shouldReclaim(p, 40, 0, 60_000), false, 'too few to be worth a collection');
  assert.equal(shouldReclaim(p, 3_000, 0, 10_000), false, 'too soon after the last one');
});

test('MemoryReclaim: asks for one async major collection when the load falls from its peak, then tracks a new peak', async () => {
  const saved = globalThis.gc;
  const calls: unknown[] = [];
  globalThis.gc = ((opts: unknown) => {
    calls.push(opts);
    return Promise.resolve();
  }) as typeof globalThis.gc;
  try {
    let load = 0;
    const r = new MemoryReclaim({ load: () => load, checkMs: 1_000 });
    assert.equal(r.enabled, true);
    let now = 100_000;
    for (load = 0; load <= 3_000; load += 500) r.check((now += 1_000));
    assert.equal(calls.length, 0, 'a rising load is left alone');
    load = 100;
    r.check((now += 1_000));
    assert.equal(calls.length, 0, 'the first check that sees the drop waits: sockets are still closing');
    load = 3_000;
    r.check((now += 1_000));
    load = 100;
    r.check((now += 1_000));
    assert.equal(calls.length, 0, 'the load came back in between: start over');
    r.check((now += 1_000));
    assert.deepEqual(calls, [{ type: 'major', execution: 'async' }], 'low on two checks in a row');
    await new Promise((res) => setImmediate(res));
    assert.equal(r.collections, 1);
    load = 0;
    r.check((now += 1_000));
    r.check((now += 1_000));
    assert.equal(calls.length, 1, 'the peak restarted at 100: a drop of 100 is not enough, and it is too soon');
  } finally {
    globalThis.gc = saved;
  }
});

test('MemoryReclaim: without --expose-gc it stays off', () => {
  const saved = globalThis.gc;
  globalThis.gc = undefined;
  try {
    const r = new MemoryReclaim({ load: () => 0 });
    assert.equal(r.enabled, false);
    r.start(); // no timer, nothing to stop
    r.stop();
  } finally {
    globalThis.gc = saved;
  }
});
