import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findBottleneck } from '../../bench/lib/bottleneck.ts';

test('a load-client process at a full core is named first, even when the server is at a core too', () => {
  const b = findBottleneck({ 'raw-server': 0.95, 'load-clients-1': 0.98, 'load-clients-2': 0.4 }, 1.99, 2);
  assert.equal(b.limitedBy, 'load-clients');
  assert.equal(b.process, 'load-clients-1');
  assert.equal(b.cores, 0.98);
  assert.match(b.note, /lower bound/);
  assert.equal(b.ownCores, 2.33);
});

test('a system process at a full core, load clients below it', () => {
  const b = findBottleneck({ gateway: 0.97, server: 0.3, 'load-clients-1': 0.5 }, 1.8, 2);
  assert.equal(b.limitedBy, 'process');
  assert.equal(b.process, 'gateway');
});

test('no process at a core but every CPU busy: the machine, with what others took', () => {
  const b = findBottleneck({ 'raw-server': 0.6, 'load-clients-1': 0.4 }, 1.9, 2);
  assert.equal(b.limitedBy, 'machine');
  assert.match(b.note, /95 % busy/);
  assert.match(b.note, /everything else 0.9/);
});

test('idle CPU and no process at a core: not CPU; unknown host CPU is said as such', () => {
  const b = findBottleneck({ 'raw-server': 0.5, 'load-clients-1': 0.45 }, 1.0, 2);
  assert.equal(b.limitedBy, 'none');
  assert.match(b.note, /idle CPU/);
  const u = findBottleneck({ 'raw-server': null, 'load-clients-1': 0.2 }, null, 2);
  assert.equal(u.limitedBy, 'none');
  assert.equal(u.hostCores, null);
  assert.equal(u.ownCores, 0.2);
});
