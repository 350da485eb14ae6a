import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFromCompressedBase64 } from 'hdr-histogram-js';
import { StageLatency } from '../../system/gateway/stage-latency.ts';

const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

test('StageLatency: events handed over count only once flushed, each once, as now − pt', () => {
  const e = new StageLatency();
  const t = nowUs();
  e.handedOver(t - 5_000);
  e.handedOver(t - 50_000);
  assert.equal(e.snapshot(false).count, 0, 'nothing is out before the flush');
  e.flushed();
  e.flushed(); // a second flush records nothing twice
  const s = e.snapshot(false);
  assert.equal(s.count, 2);
  assert.ok(s.p50Ms >= 5 && s.p50Ms < 40, `p50 ${s.p50Ms}`);
  assert.ok(s.maxMs >= 50 && s.maxMs < 100, `max ${s.maxMs}`);
  const h = decodeFromCompressedBase64(s.hist);
  assert.equal(h.totalCount, 2, 'the encoded histogram carries the same counts');
  h.destroy();
  e.stop();
});

test('StageLatency: a pt in the future counts as 0 and is reported; unstamped events are ignored; reset starts a window', () => {
  const e = new StageLatency();
  e.recordNow(nowUs() + 1_000_000);
  e.recordNow(0);
  e.handedOver(0);
  e.flushed();
  let s = e.snapshot(true);
  assert.equal(s.count, 1);
  assert.equal(s.negative, 1);
  assert.equal(s.maxMs, 0);
  s = e.snapshot(false);
  assert.equal(s.count, 0, 'reset emptied the window');
  assert.equal(s.negative, 0);
  e.recordNow(nowUs() - 2_000);
  e.sample();
  assert.ok(e.intervalP99Ms >= 2, `interval p99 ${e.intervalP99Ms}`);
  e.sample();
  assert.equal(e.intervalP99Ms, 0, 'an empty interval reads 0');
  e.stop();
});
