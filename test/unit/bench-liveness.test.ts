// The bench agents' liveness watchdog (one scan over every open session) and
// the scenario's `liveness:` key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_LIVENESS_MS, LivenessWatch, type LivenessSubject } from '../../cli/lib/bench/liveness.ts';
import { loadScenario } from '../../cli/lib/bench/scenario.ts';
import { defaults } from '../../system/common/config.ts';

class Subject implements LivenessSubject {
  rx = false;
  expiredAt: number[] = [];
  readonly clock: { t: number };
  constructor(clock: { t: number }) {
    this.clock = clock;
  }
  livenessExpired(): void {
    this.expiredAt.push(this.clock.t);
  }
}

function setup(timeoutMs: number) {
  const clock = { t: 0 };
  const watch = new LivenessWatch<Subject>({ timeoutMs, now: () => clock.t, timer: false });
  /** Advances the clock scan period by scan period, as the watch's own timer would, and runs `each` before each scan. */
  const run = (untilMs: number, each: (t: number) => void = () => {}) => {
    while (clock.t + watch.periodMs <= untilMs) {
      clock.t += watch.periodMs;
      each(clock.t);
      watch.scan();
    }
  };
  return { clock, watch, run };
}

test('a silent subject expires once, no earlier than the timeout and at most two scan periods after it', () => {
  const { clock, watch, run } = setup(1_000);
  assert.equal(watch.periodMs, 250);
  const s = new Subject(clock);
  watch.add(s);
  run(900);
  assert.deepEqual(s.expiredAt, [], 'not before the timeout');
  run(3_000);
  assert.equal(s.expiredAt.length, 1, 'expired exactly once');
  assert.ok(s.expiredAt[0]! >= 1_000 && s.expiredAt[0]! <= 1_000 + 2 * watch.periodMs, `at ${s.expiredAt[0]}`);
  assert.equal(watch.size, 0, 'an expired subject is no longer watched');
});

test('frames keep a subject alive; the silence is measured from its last frame', () => {
  const { clock, watch, run } = setup(1_000);
  const s = new Subject(clock);
  watch.add(s);
  // A frame every 600 ms (a heartbeat interval well inside the timeout) for 5 s.
  let next = 600;
  run(5_000, (t) => {
    if (t >= next) {
      s.rx = true;
      next += 600;
    }
  });
  assert.deepEqual(s.expiredAt, [], 'never silent for the timeout');
  const lastFrame = next - 600;
  run(8_000);
  assert.equal(s.expiredAt.length, 1);
  const silence = s.expiredAt[0]! - lastFrame;
  assert.ok(silence >= 1_000 && silence <= 1_000 + 2 * watch.periodMs, `declared after ${silence} ms of silence`);
});

test('only the silent subject of many expires; deleted ones never do; an expiry may add its subject again', () => {
  const { clock, watch, run } = setup(400);
  const talkers = Array.from({ length: 50 }, () => new Subject(clock));
  const quiet = new Subject(clock);
  const gone = new Subject(clock);
  for (const s of [...talkers, quiet, gone]) watch.add(s);
  watch.delete(gone);
  // The quiet one reconnects on expiry (as a session does): watched again from then on.
  quiet.livenessExpired = function () {
    this.expiredAt.push(clock.t);
    if (this.expiredAt.length < 3) watch.add(this);
  };
  run(3_000, () => {
    for (const s of talkers) s.rx = true;
  });
  assert.ok(talkers.every((s) => s.expiredAt.length === 0));
  assert.deepEqual(gone.expiredAt, []);
  assert.equal(quiet.expiredAt.length, 3, `re-added twice, expired three times: ${quiet.expiredAt}`);
  for (let i = 1; i < 3; i++) assert.ok(quiet.expiredAt[i]! - quiet.expiredAt[i - 1]! >= 400);
  assert.equal(watch.size, 50);
  watch.stop();
  assert.equal(watch.size, 0);
});

test('the watch runs one timer only while something is watched', async () => {
  const watch = new LivenessWatch({ timeoutMs: 100 });
  assert.equal(watch.periodMs, 25);
  let expired = 0;
  const s: LivenessSubject = { rx: false, livenessExpired: () => expired++ };
  watch.add(s);
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(expired, 1);
  assert.equal(watch.size, 0);
  // Nothing watched: no timer keeps the process up (the test would hang otherwise), and adding starts it again.
  watch.add(s);
  watch.delete(s);
  assert.throws(() => new LivenessWatch({ timeoutMs: 0 }), /must be > 0/);
});

test('scenario `liveness:` is a duration, 0 turns it off, absent means 3 gateway heartbeat intervals', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-liveness-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const load = (extra: string) => {
    const f = join(dir, 's.yaml');
    writeFileSync(f, `sessions:\n  - {id: a, ops: [{t: 0, ev: connect, streams: [btcusdt@trade]}]}\n${extra}`);
    return loadScenario(f);
  };
  assert.equal(load('liveness: 10s\n').livenessMs, 10_000);
  assert.equal(load('liveness: 0\n').livenessMs, 0);
  assert.equal(load('').livenessMs, undefined);
  assert.equal(DEFAULT_LIVENESS_MS, 3 * defaults.gateway().pingIntervalMs);
  assert.throws(() => load('liveness: 50ms\n'), /liveness 50ms is too short: 0 \(off\) or at least 100ms/);
  assert.throws(() => load('liveness: soon\n'), /liveness: "soon" is not a duration/);
});
