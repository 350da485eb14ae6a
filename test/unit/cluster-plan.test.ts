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
    routerAdmin: [9000, 9001],
    control: 8090,
    gateways: [8100, 8101],
    gatewayTcp: [8700, 8701],
    gatewayGrpc: [8800, 8801],
    gatewayAdmin: [8900, 8901],
    serverGrpc: [8200, 8201, 8202],
    serverAdmin: [8300, 8301, 8302],
    feedAdmin: 8400,
    nats: 8500,
    redis: 8600,
    history: [9100],
  });
  assert.deepEqual(portsFromBase(8000, { ...counts, historyProcs: 3 }).history, [9100, 9101, 9102]);
  assert.deepEqual(portsFromBase(8000, { ...counts, historyProcs: 0 }).history, []);
});

test('port plan rejects counts and bases that do not fit the layout', () => {
  assert.throws(() => portsFromBase(7100, { ...counts, routers: 91 }), /--routers/);
  assert.throws(() => portsFromBase(7100, { ...counts, gateways: 0 }), /--gateways/);
  assert.throws(() => portsFromBase(65000, counts), /--port-base/);
  assert.throws(() => portsFromBase(7100, { ...counts, historyProcs: -1 }), /--history-procs/);
  assert.throws(() => portsFromBase(7100, { ...counts, historyProcs: 101 }), /--history-procs/);
  assert.throws(() => portsFromBase(65535 - 1199 + 1, counts), /--port-base/, 'history ports would pass 65535');
  assert.equal(portsFromBase(65535 - 1199, counts).history[0], 65535 - 99);
});

test('port plan from a list of free ports uses each port once', () => {
  const list = Array.from({ length: portCount(counts) }, (_, i) => 20000 + i * 3);
  const p = portsFromList(list, counts);
  const used = [
    ...p.routers, ...p.routerAdmin, p.control, ...p.gateways, ...p.gatewayTcp, ...p.gatewayGrpc, ...p.gatewayAdmin,
    ...p.serverGrpc, ...p.serverAdmin, p.feedAdmin, p.nats, p.redis, ...p.history,
  ];
  assert.deepEqual(used.sort((a, b) => a - b), list);
  // History ports are taken last: the ones before keep their place in the list.
  assert.deepEqual(p.history, [list.at(-1)]);
  assert.equal(portCount({ ...counts, historyProcs: 0 }), portCount(counts) - 1);
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

test('process plan: binaries, then routers, control, servers and the feed, gateways; each role its own process', () => {
  const plan = planCluster(input({ secretsFile: '/tmp/pc/secrets.json' }));
  assert.equal(plan.mode, 'processes');
  assert.equal(plan.natsUrl, 'nats://127.0.0.1:7600');
  assert.equal(plan.redisUrl, 'redis://127.0.0.1:7700');
  assert.deepEqual(
    plan.processes.map((p) => `${p.tier}:${p.id}`),
    ['0:nats', '0:redis', '1:router-1', '1:router-2', '2:control-1', '2:server-1', '2:server-2', '2:server-3', '3:gateway-1', '3:gateway-2', '3:history-1', '2:feed-1'],
  );
  const nats = plan.processes.find((p) => p.id === 'nats')!;
  // Address, JetStream dir and users in a config file (credentials never on argv).
  assert.deepEqual(nats.args, ['-c', '/tmp/pc/nats-server.conf']);
  assert.deepEqual(nats.configFile, { kind: 'nats-server', path: '/tmp/pc/nats-server.conf', host: '127.0.0.1', port: 7600, dir: '/tmp/pc/nats' });
  const redis = plan.processes.find((p) => p.id === 'redis')!;
  assert.deepEqual(redis.args, ['/tmp/pc/redis-server.conf']);
  assert.deepEqual(redis.configFile, { kind: 'redis-server', path: '/tmp/pc/redis-server.conf', host: '127.0.0.1', port: 7700, dir: '/tmp/pc/redis' });
  assert.ok(!plan.processes.some((p) => p.args.join(' ').includes('password')), 'no credential on any command line');

  const gw2 = plan.processes.find((p) => p.id === 'gateway-2')!;
  assert.equal(gw2.command, 'system/gateway/main.ts');
  assert.equal(gw2.args[0], '--config');
  const cfg = JSON.parse(gw2.args[1]!);
  // Roles talk to the routers' admin listeners (the registry); the demo page gets their client ports.
  assert.deepEqual(cfg, {
    id: 'gateway-2',
    host: '127.0.0.1',
    routers: ['http://127.0.0.1:8100', 'http://127.0.0.1:8101'],
    logFile: '/tmp/pc/logs/gateway-2.log',
    nats: 'nats://127.0.0.1:7600',
    natsAuth: true,
    secretsFile: '/tmp/pc/secrets.json',
    port: 7201,
    tcpPort: 7801,
    grpcPort: 7901,
    adminPort: 8001,
    clientRouters: ['http://127.0.0.1:7100', 'http://127.0.0.1:7101'],
    apiKeysFile: '/tmp/pc/api-keys.json',
  });
  assert.deepEqual(plan.roles.find((r) => r.id === 'gateway-2')!.urls, {
    ws: 'ws://127.0.0.1:7201', http: 'http://127.0.0.1:7201', tcp: '127.0.0.1:7801', grpc: '127.0.0.1:7901', admin: 'http://127.0.0.1:8001',
  });
  assert.deepEqual(plan.roles.find((r) => r.id === 'router-2')!.urls, { http: 'http://127.0.0.1:7101', admin: 'http://127.0.0.1:8101' });
  assert.equal(gw2.logFile, '/tmp/pc/logs/gateway-2.log');
  assert.deepEqual(gw2.healthUrls, ['http://127.0.0.1:7201/healthz']);

  const server3 = plan.roles.find((r) => r.id === 'server-3')!;
  assert.equal(server3.config.grpcPort, 7302);
  assert.equal(server3.config.adminPort, 7402);
  assert.equal(server3.config.redis, 'redis://127.0.0.1:7700');
  assert.equal(server3.config.redisAuth, true);
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
  assert.ok(ports.every((port) => port >= 7100 && port < 7100 + 1200), 'every port within base … base+1199');
});

test('secrets: every role (and the embedded process) gets the secrets file path, never the secrets', () => {
  const plan = planCluster(input({ secretsFile: '/tmp/pc/secrets.json' }));
  assert.equal(plan.secretsFile, '/tmp/pc/secrets.json');
  for (const r of plan.roles) assert.equal(r.config.secretsFile, '/tmp/pc/secrets.json', r.id);
  const embedded = planCluster(input({ bus: { kind: 'embedded' }, secretsFile: '/tmp/pc/secrets.json' }));
  const cfg = JSON.parse(embedded.processes.find((p) => p.kind === 'embedded')!.args[1]!) as { roles: Array<{ config: Record<string, unknown> }> };
  assert.ok(cfg.roles.every((r) => r.config.secretsFile === '/tmp/pc/secrets.json'));
});

test('external NATS and no Redis: nothing spawned but the roles, servers get no redis URL', () => {
  const plan = planCluster(input({ bus: { kind: 'external', url: 'nats://10.0.0.5:4222' }, cache: { kind: 'none' } }));
  assert.equal(plan.processes.some((p) => p.kind === 'binary'), false);
  assert.equal(plan.roles.find((r) => r.id === 'server-1')!.config.redis, undefined);
  assert.equal(plan.roles.find((r) => r.id === 'router-1')!.config.nats, 'nats://10.0.0.5:4222');
  // An external NATS is taken as it is: roles connect without the cluster's users.
  assert.equal(plan.roles.find((r) => r.id === 'router-1')!.config.natsAuth, undefined);
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
    ['router:router-1', 'router:router-2', 'control:control-1', 'server:server-1', 'server:server-2', 'server:server-3', 'gateway:gateway-1', 'gateway:gateway-2', 'history:history-1', 'feed:feed-1'],
  );
  for (const r of cfg.roles) assert.equal(r.config.nats, undefined);
  // Sharing the one process with the streams, the history role must not lower the whole process's priority.
  assert.equal(cfg.roles.find((r: { role: string }) => r.role === 'history').config.nice, -1);
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

test('--silent-feed reaches the feed config only; unset, the feed has no silent key', () => {
  const silent = planCluster(input({ silentFeed: true }));
  for (const r of silent.roles) assert.equal(r.config.silent === true, r.role === 'feed', r.id);
  assert.equal('silent' in planCluster(input()).roles.find((r) => r.role === 'feed')!.config, false);
});

test('history process: the REST host on B+1100+i, its own NATS user, the servers\' history tiers, the routers to forward through', () => {
  const plan = planCluster(input({ secretsFile: '/tmp/pc/secrets.json', historyProcs: 2, ports: portsFromBase(7100, { ...counts, historyProcs: 2 }) }));
  const h = plan.roles.filter((r) => r.role === 'history');
  assert.deepEqual(h.map((r) => r.id), ['history-1', 'history-2']);
  const [h2] = [h[1]!];
  assert.deepEqual(h2.urls, { http: 'http://127.0.0.1:8201' });
  assert.equal(h2.healthUrl, 'http://127.0.0.1:8201/healthz');
  assert.equal(h2.tier, 3, 'after the servers and routers it forwards to');
  assert.deepEqual(h2.config, {
    id: 'history-2',
    host: '127.0.0.1',
    routers: ['http://127.0.0.1:8100', 'http://127.0.0.1:8101'],
    logFile: '/tmp/pc/logs/history-2.log',
    nats: 'nats://127.0.0.1:7600',
    natsAuth: true,
    secretsFile: '/tmp/pc/secrets.json',
    port: 8201,
    history: { embeddedPath: '/tmp/pc/history.sqlite' },
    redis: 'redis://127.0.0.1:7700',
    redisAuth: true,
  });
  assert.equal(plan.processes.find((p) => p.id === 'history-2')!.command, 'system/history/main.ts');
  // Every router lists the REST hosts to clients (GET /v1/rest).
  for (const r of plan.roles.filter((x) => x.role === 'router')) assert.deepEqual(r.config.restUrls, ['http://127.0.0.1:8200', 'http://127.0.0.1:8201']);
  // Not registered with the router (it takes no streams): the start waits on its /healthz instead.
  assert.ok(!plan.registeredIds.includes('history-1'));
  const none = planCluster(input({ historyProcs: 0, ports: portsFromBase(7100, { ...counts, historyProcs: 0 }) }));
  assert.equal(none.roles.some((r) => r.role === 'history'), false);
  assert.deepEqual(none.roles.find((r) => r.role === 'router')!.config.restUrls, []);
});
