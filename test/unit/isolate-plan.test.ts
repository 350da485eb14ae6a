// `pushctl up --isolate` planning, without a kernel: names and addresses of
// the namespaces, the choice of a free /24, and the cluster plan binding and
// advertising each process on its own address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertIsolatable, cidrRange, isolationLayout, pickIsolationPrefix } from '../../cli/lib/chaos/isolate.ts';
import { planCluster, portsFromBase, type PlanInput } from '../../cli/lib/cluster-plan.ts';

const counts = { routers: 1, gateways: 2, servers: 1 };
const base: PlanInput = {
  ...counts,
  symbols: 2,
  rate: 5,
  host: '127.0.0.1',
  dataDir: '/tmp/iso',
  bus: { kind: 'spawn', bin: '/usr/bin/nats-server' },
  cache: { kind: 'spawn', bin: '/usr/bin/redis-server' },
  ports: portsFromBase(7100, counts),
};

test('layout: a hub, the host end on .1, one namespace per process with its own address and veth names', () => {
  const l = isolationLayout('abc123', '10.201.4', ['nats', 'router-1', 'gateway-1', 'a-very-long-role-id']);
  assert.equal(l.hub, 'mpiso-abc123');
  assert.equal(l.hostDev, 'mpiabc123h');
  assert.ok(l.hostDev.length <= 15, 'an interface name has at most 15 characters');
  assert.equal(l.hostAddr, '10.201.4.1');
  assert.equal(l.cidr, '10.201.4.0/24');
  assert.deepEqual(
    l.roles.map((r) => [r.id, r.netns, r.addr, r.hubDev, r.dev]),
    [
      ['nats', 'mpiso-abc123-nats', '10.201.4.2', 'nats', 'eth0'],
      ['router-1', 'mpiso-abc123-router-1', '10.201.4.3', 'router-1', 'eth0'],
      ['gateway-1', 'mpiso-abc123-gateway-1', '10.201.4.4', 'gateway-1', 'eth0'],
      ['a-very-long-role-id', 'mpiso-abc123-a-very-long-role-id', '10.201.4.5', 'r3', 'eth0'],
    ],
  );
  assert.throws(() => isolationLayout('x', '10.201.0', Array.from({ length: 251 }, (_, i) => `r${i}`)), /at most 250 processes/);
});

test('a /24 is picked that overlaps no route or address of the host', () => {
  assert.deepEqual(cidrRange('10.201.0.0/24'), [(10 << 24) + (201 << 16), (10 << 24) + (201 << 16) + 255]);
  assert.equal(pickIsolationPrefix(['192.0.2.0/24', '127.0.0.0/8']), '10.201.0');
  assert.equal(pickIsolationPrefix(['10.201.0.0/24', '10.201.1.7/32']), '10.201.2');
  // A wide route (a VPN's 10.0.0.0/8) covers them all: no silent overlap.
  assert.throws(() => pickIsolationPrefix(['10.0.0.0/8']), /no free/);
  assert.equal(pickIsolationPrefix(['10.201.0.0/16']), '10.202.0');
});

test('--isolate refuses what cannot run in namespaces, saying why', () => {
  assert.throws(() => assertIsolatable({ bus: 'embedded', cache: 'none', history: 'embedded' }), /needs nats-server/);
  assert.throws(() => assertIsolatable({ bus: 'external', cache: 'spawn', history: 'embedded' }), /--nats URL is not reachable/);
  assert.throws(() => assertIsolatable({ bus: 'spawn', cache: 'external', history: 'embedded' }), /--redis URL/);
  assert.throws(() => assertIsolatable({ bus: 'spawn', cache: 'spawn', history: 'spawn' }), /Cassandra/);
  assert.doesNotThrow(() => assertIsolatable({ bus: 'spawn', cache: 'none', history: 'embedded' }));
});

test('an isolated plan: each process in its namespace, binding and advertising its own address; URLs between roles use them', () => {
  const ids = planCluster(base).processes.map((p) => p.id);
  assert.deepEqual(ids, ['nats', 'redis', 'router-1', 'control-1', 'server-1', 'gateway-1', 'gateway-2', 'history-1', 'feed-1']);
  const layout = isolationLayout('abc123', '10.201.9', ids);
  const plan = planCluster({ ...base, isolate: Object.fromEntries(layout.roles.map((r) => [r.id, { netns: r.netns, addr: r.addr }])) });
  assert.equal(plan.isolated, true);
  const addr = (id: string) => layout.roles.find((r) => r.id === id)!.addr;
  for (const p of plan.processes) {
    assert.equal(p.netns, `mpiso-abc123-${p.id}`);
    assert.equal(p.host, addr(p.id));
  }
  const nats = plan.processes.find((p) => p.id === 'nats')!;
  // Their listen addresses are in the config files pushctl writes (with the credentials) before starting them.
  assert.equal(nats.configFile?.host, addr('nats'));
  const redis = plan.processes.find((p) => p.id === 'redis')!;
  assert.equal(redis.configFile?.host, addr('redis'));
  assert.equal(plan.natsUrl, `nats://${addr('nats')}:7600`);
  assert.equal(plan.redisUrl, `redis://${addr('redis')}:7700`);
  const gw = plan.roles.find((r) => r.id === 'gateway-2')!;
  assert.equal(gw.config.host, addr('gateway-2'));
  assert.deepEqual(gw.config.routers, [`http://${addr('router-1')}:8100`]);
  assert.deepEqual(gw.config.clientRouters, [`http://${addr('router-1')}:7100`]);
  assert.equal(gw.config.nats, plan.natsUrl);
  assert.equal(gw.urls.ws, `ws://${addr('gateway-2')}:7201`);
  assert.equal(gw.healthUrl, `http://${addr('gateway-2')}:7201/healthz`);
  assert.equal(plan.roles.find((r) => r.id === 'server-1')!.urls.grpc, `${addr('server-1')}:7300`);
  // Not isolated: unchanged, everything on the one host address.
  const plain = planCluster(base);
  assert.equal(plain.isolated, false);
  assert.ok(plain.processes.every((p) => p.netns === undefined));
  assert.ok(!plain.processes.find((p) => p.id === 'redis')!.args.includes('--protected-mode'));
  assert.throws(() => planCluster({ ...base, bus: { kind: 'embedded' }, isolate: {} }), /--isolate needs/);
});
