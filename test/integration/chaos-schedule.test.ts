import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFaults, startFaultSchedule } from '../../cli/lib/chaos/schedule.ts';
import { readChaosState } from '../../cli/lib/chaos/state.ts';

test('parseFaults: process faults and timed profiles, with clear errors', () => {
  assert.deepEqual(parseFaults([{ at: '30s', kill: 'gateway-2' }, { at: '10s', profile: 'flapping-partition', for: '20s' }]), [
    { atMs: 30_000, fault: 'kill', role: 'gateway-2' },
    { atMs: 10_000, profile: 'flapping-partition', target: 'clients', backend: 'auto', forMs: 20_000 },
  ]);
  assert.deepEqual(parseFaults(undefined), []);
  assert.throws(() => parseFaults([{ at: '1s', kill: 'gateway-1', pause: 'gateway-2' }]), /faults\[0\]: exactly one of kill/);
  assert.throws(() => parseFaults([{ at: '1s', profile: 'nope' }]), /no profile named nope/);
  assert.throws(() => parseFaults([{ at: 'soon', kill: 'g' }]), /faults\[0\].at: expected a duration/);
  assert.throws(() => parseFaults([{ profile: 'rtt-100ms', backend: 'netem' }]), /faults\[0\].backend: one of auto/);
});

test('a schedule applies a profile at its time, undoes it after `for`, records when; stop undoes the rest', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pushctl-sched-'));
  const server = createServer((s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(() => {
    server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const port = (server.address() as { port: number }).port;
  const run = startFaultSchedule(
    parseFaults([
      { at: '100ms', profile: 'rtt-100ms', target: `tcp:127.0.0.1:${port}`, for: '300ms' },
      { at: '200ms', profile: 'partition-reset', target: `tcp:127.0.0.1:${port}` },
      { at: '120s', profile: 'rtt-100ms', target: `tcp:127.0.0.1:${port}` },
    ]),
    { dataDir },
  );
  // Polled, not slept: a loaded machine runs the schedule late, never early (the times are checked below).
  const until = async (what: string, ok: () => boolean) => {
    const deadline = Date.now() + 30_000;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`${what} within 30 s; events ${JSON.stringify(run.events)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const [a, b, c] = run.events;
  await until('both applied', () => a!.ok && b!.ok);
  await until('the timed one is undone', () => a!.endedMs !== undefined);
  assert.equal(readChaosState(dataDir).sessions.length, 1, 'the timed one is undone, the other still held');
  assert.ok(a!.ok && a!.startedMs! >= 90 && a!.endedMs! >= a!.startedMs! + 290, JSON.stringify(a));
  assert.ok(b!.ok && b!.endedMs === undefined);
  await run.stop();
  await run.settled;
  assert.equal(readChaosState(dataDir).sessions.length, 0, 'stop undid the open one');
  assert.ok(b!.endedMs! >= b!.startedMs!);
  assert.equal(c!.startedMs, undefined, 'the one not due yet never started');
});
