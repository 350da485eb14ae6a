import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chooseBackends,
  planCluster,
  plannedPorts,
  portCount,
  portsFromBase,
  portsFromList,
  type PlanInput,
} from '../../cli/lib/cluster-plan.ts';

const counts = { routers: 2, gateways: 2, servers: 3 };

function input(over: Partial<PlanInput> = {}): PlanInput {
  return {
    ...counts,
    symbols: 5,
    rate: 7,
    host: '127.0.0.1',
    dataDir: '/tmp/pc',
    bus: { kind: 'spawn', bin: '/usr/bin/nats-server' },
    cache: { kind: 'spawn', bin: '/usr/bin/redis-server' },
    ports: portsFromBase(7100, counts),
    ...over,
  };
}

test('port plan from a base follows the documented offsets', () => {
  const p = portsFromBase(8000, counts);
  assert.deepEqual(p, {
    routers: [8000, 8001],
    control: 8090,
    gateways: [8100, 8101],
    serverGrpc: [8200, 8201, 8202],
    serverAdmin: [8300, 8301, 8302],
    feedAdmin: 8400,
    nats: 8500,
    redis: 8600,
  });
});

test('port plan rejects counts and bases that do not fit the layout', () => {
  assert.throws(() => portsFromBase(7100, { ...counts, routers: 91 }), /--routers/);
  assert.throws(() => portsFromBase(7100, { ...counts, gateways: 0 }), /--gateways/);
  assert.throws(() => portsFromBase(65000, counts), /--port-base/);
});

test('port plan from a list of free ports uses each port once', () => {
  const list = Array.from({ length: portCount(counts) }, (_, i) => 20000 + i * 3);
  const p = portsFromList(list, counts);
  const used = [...p.routers, p.control, ...p.gateways, ...p.serverGrpc, ...p.serverAdmin, p.feedAdmin, p.nats, p.redis];
  assert.deepEqual(used.sort((a, b) => a - b), list);
  assert.throws(() => portsFromList(list.slice(1), counts), /need/);
});

test('backends: flags first, then binaries on PATH, then embedded', () => {
  const found = { natsServer: '/bin/nats-server', redisServer: '/bin/redis-server' };
  assert.deepEqual(chooseBackends({}, found), {
    bus: { kind: 'spawn', bin: '/bin/nats-server' },
    cache: { kind: 'spawn', bin: '/bin/redis-server' },
  });
  assert.deepEqual(chooseBackends({ nats: 'nats://x:1', redis: 'redis://y:2' }, found), {
    bus: { kind: 'external', url: 'nats://x:1' },
    cache: { kind: 'external', url: 'redis://y:2' },
  });
  assert.deepEqual(chooseBackends({}, {}), { bus: { kind: 'embedded' }, cache: { kind: 'none' } });
  // Forced embedded spawns nothing, but still honours an explicit Redis.
  assert.deepEqual(chooseBackends({ embedded: true }, found), { bus: { kind: 'embedded' }, cache: { kind: 'none' } });
  assert.deepEqual(chooseBackends({ embedded: true, redis: 'redis://y:2' }, found).cache, { kind: 'external', url: 'redis://y:2' });
  assert.throws(() => chooseBackends({ embedded: true, nats: 'nats://x:1' }, found), /--embedded/);
});

test('process plan: binaries, then routers, control and servers, gateways, feed; each role its own process', () => {
  const plan = planCluster(input());
  assert.equal(plan.mode, 'processes');
  assert.equal(plan.natsUrl, 'nats://127.0.0.1:7600');
  assert.equal(plan.redisUrl, 'redis://127.0.0.1:7700');
  assert.deepEqual(
    plan.processes.map((p) => `${p.tier}:${p.id}`),
    ['0:nats', '0:redis', '1:router-1', '1:router-2', '2:control-1', '2:server-1', '2:server-2', '2:server-3', '3:gateway-1', '3:gateway-2', '4:feed-1'],
  );
  const nats = plan.processes.find((p) => p.id === 'nats')!;
  assert.deepEqual(nats.args, ['-a', '127.0.0.1', '-p', '7600', '-js', '-sd', '/tmp/pc/nats']);
  const redis = plan.processes.find((p) => p.id === 'redis')!;
  assert.deepEqual(redis.args, ['--port', '7700', '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', '/tmp/pc/redis']);

  const gw2 = plan.processes.find((p) => p.id === 'gateway-2')!;
  assert.equal(gw2.command, 'system/gateway/main.ts');
  assert.equal(gw2.args[0], '--config');
  const cfg = JSON.parse(gw2.args[1]!);
  assert.deepEqual(cfg, {
    id: 'gateway-2',
    host: '127.0.0.1',
    routers: ['http://127.0.0.1:7100', 'http://127.0.0.1:7101'],
    logFile: '/tmp/pc/logs/gateway-2.log',
    nats: 'nats://127.0.0.1:7600',
    port: 7201,
  });
  assert.equal(gw2.logFile, '/tmp/pc/logs/gateway-2.log');
  assert.deepEqual(gw2.healthUrls, ['http://127.0.0.1:7201/healthz']);

  const server3 = plan.roles.find((r) => r.id === 'server-3')!;
  assert.equal(server3.config.grpcPort, 7302);
  assert.equal(server3.config.adminPort, 7402);
  assert.equal(server3.config.redis, 'redis://127.0.0.1:7700');
  assert.equal(server3.healthUrl, 'http://127.0.0.1:7402/healthz');
  const feed = plan.roles.find((r) => r.role === 'feed')!;
  assert.deepEqual([feed.config.adminPort, feed.config.symbols, feed.config.rate], [7500, 5, 7]);
  assert.equal(plan.roles.find((r) => r.role === 'control')!.config.port, 7190);
  // Gateways never get Redis; only servers cache.
  assert.equal(plan.roles.find((r) => r.id === 'gateway-1')!.config.redis, undefined);

  assert.deepEqual(plan.registeredIds, ['server-1', 'server-2', 'server-3', 'gateway-1', 'gateway-2']);
  assert.equal(plan.stateFile, '/tmp/pc/cluster.json');
  assert.deepEqual(plan.embeddedParts, []);
  const ports = plannedPorts(plan).map((p) => p.port);
  assert.equal(new Set(ports).size, ports.length, 'no port is planned twice');
  assert.equal(ports.length, portCount(counts));
});

test('external NATS and no Redis: nothing spawned but the roles, servers get no redis URL', () => {
  const plan = planCluster(input({ bus: { kind: 'external', url: 'nats://10.0.0.5:4222' }, cache: { kind: 'none' } }));
  assert.equal(plan.processes.some((p) => p.kind === 'binary'), false);
  assert.equal(plan.roles.find((r) => r.id === 'server-1')!.config.redis, undefined);
  assert.equal(plan.roles.find((r) => r.id === 'router-1')!.config.nats, 'nats://10.0.0.5:4222');
  assert.deepEqual(plan.embeddedParts, ['cache (in-memory)']);
  assert.equal(plannedPorts(plan).some((p) => p.port === 7600 || p.port === 7700), false);
});

test('embedded plan: one process carrying every role config, no NATS URL, health of every role awaited', () => {
  const plan = planCluster(input({ bus: { kind: 'embedded' }, cache: { kind: 'none' } }));
  assert.equal(plan.mode, 'embedded');
  assert.equal(plan.natsUrl, undefined);
  assert.deepEqual(plan.processes.map((p) => p.id), ['embedded']);
  const p = plan.processes[0]!;
  assert.equal(p.command, 'system/embedded.ts');
  assert.deepEqual(p.readyIds, ['embedded']);
  const cfg = JSON.parse(p.args[1]!);
  assert.equal(cfg.logFile, '/tmp/pc/logs/embedded.log');
  assert.deepEqual(
    cfg.roles.map((r: { role: string; config: { id: string } }) => `${r.role}:${r.config.id}`),
    ['router:router-1', 'router:router-2', 'control:control-1', 'server:server-1', 'server:server-2', 'server:server-3', 'gateway:gateway-1', 'gateway:gateway-2', 'feed:feed-1'],
  );
  for (const r of cfg.roles) assert.equal(r.config.nats, undefined);
  assert.equal(p.healthUrls.length, plan.roles.length);
  assert.deepEqual(plan.embeddedParts, ['bus (in-memory)', 'registry (in-memory)', 'cache (in-memory)']);
  // Every role still on its own port, all checked before start.
  assert.deepEqual(
    plannedPorts(plan).map((x) => x.owner),
    plan.roles.flatMap((r) => r.ports.map(() => r.id)),
  );
});

test('--flush-ms and --publish-ms reach every gateway and the feed; unset, the roles keep their defaults', () => {
  const tuned = planCluster(input({ flushMs: 4, publishMs: 2 }));
  const gateways = tuned.roles.filter((r) => r.role === 'gateway');
  assert.ok(gateways.length >= 2);
  for (const g of gateways) assert.equal(g.config.flushIntervalMs, 4);
  assert.equal(tuned.roles.find((r) => r.role === 'feed')!.config.publishIntervalMs, 2);
  const plain = planCluster(input());
  for (const r of plain.roles) {
    assert.equal('flushIntervalMs' in r.config, false, r.id);
    assert.equal('publishIntervalMs' in r.config, false, r.id);
  }
});
