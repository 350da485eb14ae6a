import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT_LOOP_TICK_MS, IDLE_EVENT_LOOP_TICK_MS, IDLE_SAMPLES, ProcessStats } from '../../system/common/process-stats.ts';

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

test('event-loop delay reads what lies beyond the sampling tick: near 0 when idle, the block when blocked', async () => {
  const stats = new ProcessStats();
  try {
    // Idle: before, this read the tick itself (never under 10 ms). The least of two intervals rules out a noisy one
    // (a third quiet one would switch to the idle tick, tested below).
    const idle: number[] = [];
    for (let i = 0; i < IDLE_SAMPLES - 1; i++) {
      await new Promise((r) => setTimeout(r, 200));
      stats.sample();
      idle.push(stats.eventLoopP99Ms);
    }
    assert.ok(Math.min(...idle) < EVENT_LOOP_TICK_MS, `idle loop delay ${idle.join(', ')} ms`);
    assert.equal(stats.eventLoopTickMs, EVENT_LOOP_TICK_MS);
    await new Promise((r) => setTimeout(r, 50));
    const until = performance.now() + 120;
    while (performance.now() < until); // block the loop
    await new Promise((r) => setTimeout(r, 30));
    stats.sample();
    assert.ok(stats.eventLoopP99Ms >= 90, `a 120 ms block reads ${stats.eventLoopP99Ms} ms`);
  } finally {
    stats.stop();
  }
});

test('an idle loop is sampled at the coarse tick, a block still shows, and work brings the fine tick back', async () => {
  const stats = new ProcessStats();
  try {
    assert.equal(stats.eventLoopTickMs, EVENT_LOOP_TICK_MS);
    for (let i = 0; i < 6 && stats.eventLoopTickMs === EVENT_LOOP_TICK_MS; i++) {
      await new Promise((r) => setTimeout(r, 200));
      stats.sample();
    }
    assert.equal(stats.eventLoopTickMs, IDLE_EVENT_LOOP_TICK_MS, 'three quiet intervals switch to the idle tick');
    await new Promise((r) => setTimeout(r, 250));
    stats.sample();
    assert.ok(stats.eventLoopP99Ms < IDLE_EVENT_LOOP_TICK_MS, `idle at the coarse tick reads ${stats.eventLoopP99Ms} ms`);
    // The histogram's first tick after a reset only starts its clock: the block comes after one.
    await new Promise((r) => setTimeout(r, IDLE_EVENT_LOOP_TICK_MS + 30));
    const until = performance.now() + 150;
    while (performance.now() < until); // block the loop
    await new Promise((r) => setTimeout(r, 2 * IDLE_EVENT_LOOP_TICK_MS + 20));
    stats.sample();
    // The tick due during the block fired at least 50 ms late, whatever its phase.
    assert.ok(stats.eventLoopP99Ms >= 40, `a 150 ms block at the idle tick reads ${stats.eventLoopP99Ms} ms`);
    assert.equal(stats.eventLoopTickMs, EVENT_LOOP_TICK_MS, 'a busy interval brings the fine tick back at once');
  } finally {
    stats.stop();
  }
});
