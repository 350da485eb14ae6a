// What the bench needs of the fault schedule: `for` on pause only, times
// counted from a given origin (the start barrier), client profiles handed to
// the run's own client link, and stop() undoing what is applied.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeFault, parseFaults, startFaultSchedule, type ClientShaper } from '../../cli/lib/chaos/schedule.ts';
import type { Profile } from '../../cli/lib/chaos/profile.ts';

test('parseFaults: `for` on pause (the schedule resumes it), refused on other process faults', () => {
  assert.deepEqual(parseFaults([{ at: '2s', pause: 'server-1', for: '1500ms' }]), [{ atMs: 2_000, fault: 'pause', role: 'server-1', forMs: 1_500 }]);
  assert.throws(() => parseFaults([{ at: '2s', kill: 'gateway-2', for: '1s' }]), /faults\[0\]\.for: unknown field for a process fault \(only pause takes `for`/);
  assert.equal(describeFault({ atMs: 0, profile: 'rtt-100ms', target: 'clients', backend: 'auto', forMs: 5_000 }), 'rtt-100ms on clients for 5 s');
  assert.equal(describeFault({ atMs: 0, fault: 'kill', role: 'gateway-2' }), 'kill gateway-2');
});

test('client profiles go to the given link; times count from the origin; stop() undoes what is still applied', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pushctl-sched-unit-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const log: string[] = [];
  const clients: ClientShaper = {
    shape: async (p: Profile, backend) => {
      log.push(`shape ${p.name} ${backend}`);
      return { message: 'delay→proxy', revert: async () => void log.push(`revert ${p.name}`) };
    },
  };
  // The origin was 1 s ago: a fault at 500 ms is already due, one at 1.2 s comes 200 ms from now.
  const run = startFaultSchedule(
    parseFaults([
      { at: '500ms', profile: 'rtt-100ms', target: 'clients', for: '150ms' },
      { at: '1200ms', profile: 'loss-10pct', target: 'clients', backend: 'nft' },
    ]),
    { dataDir, origin: Date.now() - 1_000, clients },
  );
  await new Promise((r) => setTimeout(r, 100));
  const [a, b] = run.events;
  assert.ok(a!.ok && a!.startedMs! >= 1_000 && a!.startedMs! < 1_100, JSON.stringify(a));
  assert.match(a!.message, /rtt-100ms on the bench's clients: delay→proxy/);
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(a!.endedMs! >= a!.startedMs! + 150, JSON.stringify(a));
  assert.ok(b!.ok && b!.startedMs! >= 1_200 && b!.endedMs === undefined, JSON.stringify(b));
  await run.stop();
  assert.ok(b!.endedMs! >= b!.startedMs!);
  assert.deepEqual(log, ['shape rtt-100ms auto', 'revert rtt-100ms', 'shape loss-10pct nft', 'revert loss-10pct']);
});
