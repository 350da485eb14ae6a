import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeFlagsFor, roleOfScript } from '../../system/common/node-flags.ts';

test('roleOfScript names the role of a system/<role>/main.ts path, and nothing else', () => {
  assert.equal(roleOfScript('system/gateway/main.ts'), 'gateway');
  assert.equal(roleOfScript('/opt/mp/system/server/main.ts'), 'server');
  assert.equal(roleOfScript('bench/fanout.ts'), undefined);
  assert.equal(roleOfScript('system/gateway/gateway.ts'), undefined);
});

test('nodeFlagsFor: the gateway gets a larger young generation and gc() for reclaiming after a load; unknown roles get nothing', () => {
  assert.deepEqual(nodeFlagsFor('gateway'), ['--max-semi-space-size=32', '--expose-gc']);
  assert.deepEqual(nodeFlagsFor('nope'), []);
});
