// bench/lib/cpu-cgroup.ts on the real cgroup filesystem (root, as CI runs):
// a quota is written, a process moves in, and remove() leaves nothing even
// with the process still running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCpuGroups } from '../../bench/lib/cpu-cgroup.ts';

const why = process.getuid?.() !== 0 ? 'needs root (cgroups); CI runs as root' : undefined;

test('createCpuGroups: a child group with a quota holds a process; remove() hands it back and deletes the groups', { skip: why, timeout: 30_000 }, async (t) => {
  const groups = createCpuGroups(`mp-test-cgroup-${process.pid}`);
  t.after(() => groups.remove());
  // A bounded busy loop: something for the quota to hold.
  const busy = spawn(process.execPath, ['-e', 'const end = Date.now() + 20000; while (Date.now() < end) {}'], { stdio: 'ignore' });
  const exited = new Promise((r) => busy.once('exit', r));
  t.after(async () => {
    if (busy.exitCode === null && busy.signalCode === null) {
      busy.kill('SIGKILL');
      await exited;
    }
  });
  const g = groups.child('gw-1', 0.25);
  const quota = groups.version === 2 ? readFileSync(join(g.dir, 'cpu.max'), 'utf8').trim() : readFileSync(join(g.dir, 'cpu.cfs_quota_us'), 'utf8').trim();
  assert.equal(quota, groups.version === 2 ? '25000 100000' : '25000');
  g.add([busy.pid!]);
  assert.deepEqual(readFileSync(join(g.dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean), [String(busy.pid)]);
  // Wait (bounded) until the group has run a CFS period: cpu.stat is the group's own.
  for (let i = 0; i < 100 && g.throttled().periods === 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(g.throttled().periods > 0, 'the group ran in CFS periods');
  assert.throws(() => groups.child('bad', 0), /CPU share 0 is not in/);
  assert.throws(() => g.add([2 ** 22 + 12345]), /cannot move pid/);
  groups.remove();
  assert.equal(existsSync(groups.root), false);
  assert.equal(busy.exitCode, null, 'the process outlives its group');
});

test('createCpuGroups refuses a name that is not a plain directory name', { skip: why }, () => {
  assert.throws(() => createCpuGroups('../escape'), /characters other than/);
});
