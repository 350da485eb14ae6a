import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessStats } from '../../system/common/process-stats.ts';

test('ProcessStats reports garbage-collection pauses: total since start, longest of the last interval', async () => {
  const stats = new ProcessStats();
  try {
    // Enough short-lived garbage to force young-generation collections.
    let keep = 0;
    for (let i = 0; i < 2_000_000; i++) keep += [i, i + 1, { i }].length;
    assert.ok(keep > 0);
    await new Promise((r) => setTimeout(r, 50)); // GC entries arrive asynchronously
    stats.sample();
    assert.ok(stats.gcPauseTotalMs > 0, `GC time seen: ${stats.gcPauseTotalMs}`);
    assert.ok(stats.gcMaxPauseMs > 0 && stats.gcMaxPauseMs <= stats.gcPauseTotalMs);
    stats.sample();
    assert.equal(stats.gcMaxPauseMs, 0, 'an interval without collections reads 0');
  } finally {
    stats.stop();
  }
});
