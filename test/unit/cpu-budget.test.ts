import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuBudget, cpusFromCgroupMax, defaultRoleCounts } from '../../cli/lib/cpu-budget.ts';

test('cpusFromCgroupMax reads a cgroup v2 quota, and "max" as no limit', () => {
  assert.equal(cpusFromCgroupMax('max 100000\n'), undefined);
  assert.equal(cpusFromCgroupMax('200000 100000\n'), 2);
  assert.equal(cpusFromCgroupMax('150000 100000'), 1.5);
  assert.equal(cpusFromCgroupMax('garbage'), undefined);
  assert.equal(cpusFromCgroupMax(''), undefined);
});

test('cpuBudget: a quota below the listed CPUs wins and says so; none, or a larger one, leaves the listed count', () => {
  assert.deepEqual(cpuBudget(() => '150000 100000', 8), { cpus: 1, source: 'cgroup quota 1.50 of 8 CPUs' });
  assert.deepEqual(cpuBudget(() => '400000 100000', 8), { cpus: 4, source: 'cgroup quota 4.00 of 8 CPUs' });
  assert.deepEqual(cpuBudget(() => 'max 100000', 8), { cpus: 8, source: '8 CPUs' });
  assert.deepEqual(cpuBudget(() => undefined, 2), { cpus: 2, source: '2 CPUs' });
  assert.deepEqual(cpuBudget(() => '1600000 100000', 8), { cpus: 8, source: '8 CPUs' });
});

test('defaultRoleCounts: about a gateway per 2 CPUs and a server per 4, never fewer than 2 of each, bounded', () => {
  assert.deepEqual(defaultRoleCounts(1), { gateways: 2, servers: 2 });
  assert.deepEqual(defaultRoleCounts(2), { gateways: 2, servers: 2 });
  assert.deepEqual(defaultRoleCounts(8), { gateways: 4, servers: 2 });
  assert.deepEqual(defaultRoleCounts(16), { gateways: 8, servers: 4 });
  assert.deepEqual(defaultRoleCounts(128), { gateways: 16, servers: 8 });
});
