// `pushctl up --tls`: the plan gives routers and gateways the pair, every
// role the CA to trust, and advertises https:// and wss://.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planCluster, portsFromBase, type PlanInput } from '../../cli/lib/cluster-plan.ts';

const counts = { routers: 2, gateways: 2, servers: 1 };
const input = (over: Partial<PlanInput> = {}): PlanInput => ({
  ...counts, symbols: 5, rate: 7, host: '127.0.0.1', dataDir: '/tmp/pc',
  bus: { kind: 'spawn', bin: '/usr/bin/nats-server' }, cache: { kind: 'none' }, ports: portsFromBase(7100, counts), ...over,
});
const pair = { certFile: '/tmp/pc/tls/cert.pem', keyFile: '/tmp/pc/tls/key.pem', caFile: '/tmp/pc/tls/cert.pem' };

test('with tls: router and gateway configs carry the pair, urls are https/wss, every role trusts the certificate', () => {
  const plan = planCluster(input({ tls: pair }));
  const byRole = (r: string) => plan.roles.filter((x) => x.role === r);
  for (const r of [...byRole('router'), ...byRole('gateway')]) {
    assert.deepEqual(r.config.tls, { certFile: pair.certFile, keyFile: pair.keyFile }, r.id);
    assert.match(r.healthUrl, /^https:\/\//, r.id);
    assert.match(r.urls.http!, /^https:\/\//, r.id);
  }
  for (const g of byRole('gateway')) {
    assert.match(g.urls.ws!, /^wss:\/\//);
    assert.deepEqual(g.config.clientRouters, ['https://127.0.0.1:7100', 'https://127.0.0.1:7101'], 'the demo page asks the https client ports');
  }
  for (const r of plan.roles) {
    assert.equal(r.config.tlsCaFile, pair.caFile, `${r.id} trusts the certificate`);
    // Roles call the routers' admin listeners, plain http on the cluster's own address; clients get the https client ports.
    assert.deepEqual(r.config.routers, ['http://127.0.0.1:8100', 'http://127.0.0.1:8101'], `${r.id} calls the routers' admin listeners`);
  }
  // Only the client ports: the servers', control's and feed's admin ports stay plain (loopback).
  for (const r of [...byRole('server'), ...byRole('control'), ...byRole('feed')]) {
    assert.equal(r.config.tls, undefined, r.id);
    assert.match(r.healthUrl, /^http:\/\//, r.id);
  }
  assert.deepEqual(plan.tls, pair);
});

test('without tls: plain http/ws and no TLS fields', () => {
  const plan = planCluster(input());
  for (const r of plan.roles) {
    assert.equal(r.config.tls, undefined);
    assert.equal(r.config.tlsCaFile, undefined);
    assert.match(r.healthUrl, /^http:\/\//);
  }
  assert.match(plan.roles.find((r) => r.role === 'gateway')!.urls.ws!, /^ws:\/\//);
  assert.equal(plan.tls, undefined);
});
