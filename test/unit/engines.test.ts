// Planning of the clustered engines (NATS cluster, Redis Cluster, Cassandra
// ring): ports, config files, role configs, and the errors bad input gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planCluster, portsFromBase, type PlanInput } from '../../cli/lib/cluster-plan.ts';
import { engineNodePortsFromList, natsNodePortsFromBase, redisNodePortsFromBase } from '../../cli/lib/port-plan.ts';
import { natsClusterBlock, routeCredential } from '../../cli/lib/nats-cluster.ts';
import { redisAdminCredential, redisClusterNodeCount } from '../../cli/lib/redis-cluster.ts';
import { planCassandraNodes } from '../../cli/lib/cassandra-ring.ts';
import { cassandraShape, enginePlanInput } from '../../cli/lib/engine-flags.ts';
import { storeConfigText } from '../../cli/lib/store-configs.ts';
import { parseRedisUrl } from '../../system/history/redis-client.ts';
import { RedisKlineStore } from '../../system/history/redis-store.ts';
import { parseConsistency, parseReplication, replicationCql } from '../../system/history/cassandra-config.ts';
import { ringTokens } from '../../system/history/cassandra-node.ts';
import { generateSecrets } from '../../system/common/secrets.ts';

const secrets = generateSecrets();
const counts = { routers: 1, gateways: 2, servers: 1 };
const input = (over: Partial<PlanInput> = {}): PlanInput => ({
  ...counts, symbols: 2, rate: 1, host: '127.0.0.1', dataDir: '/tmp/eng', ports: portsFromBase(7100, counts),
  bus: { kind: 'spawn', bin: '/usr/bin/nats-server' }, cache: { kind: 'spawn', bin: '/usr/bin/redis-server' }, ...over,
});

test('engine node ports: documented offsets from the base, or free ports keeping the port map\'s first one', () => {
  assert.deepEqual(natsNodePortsFromBase(7100, 3), { client: [7600, 7601, 7602], cluster: [7650, 7651, 7652] });
  assert.deepEqual(redisNodePortsFromBase(7100, 6), { client: [7700, 7701, 7702, 7703, 7704, 7705], cluster: [7750, 7751, 7752, 7753, 7754, 7755] });
  assert.deepEqual(engineNodePortsFromList(9000, [1, 2, 3, 4, 5], 3), { client: [9000, 1, 2], cluster: [3, 4, 5] });
  assert.throws(() => natsNodePortsFromBase(7100, 51), /--nats-cluster must be between/);
  assert.throws(() => engineNodePortsFromList(9000, [1, 2], 3), /need 5 ports/);
});

test('--nats-cluster 3: three nodes, each its config with a route block; every role gets all URLs and 3 replicas', () => {
  const plan = planCluster(input({ natsCluster: natsNodePortsFromBase(7100, 3) }));
  const nats = plan.processes.filter((p) => p.id.startsWith('nats'));
  assert.deepEqual(nats.map((p) => p.id), ['nats-1', 'nats-2', 'nats-3']);
  assert.deepEqual(nats.map((p) => p.ports), [[7600, 7650], [7601, 7651], [7602, 7652]]);
  assert.equal(plan.natsUrl, 'nats://127.0.0.1:7600,nats://127.0.0.1:7601,nats://127.0.0.1:7602');
  for (const r of plan.roles) {
    assert.equal(r.config.nats, plan.natsUrl, r.id);
    assert.equal(r.config.natsReplicas, 3, r.id);
  }
  const conf = JSON.parse(storeConfigText(nats[1]!.configFile!, secrets)) as Record<string, any>;
  assert.equal(conf.server_name, 'nats-2');
  assert.equal(conf.listen, '127.0.0.1:7601');
  assert.equal(conf.cluster.listen, '127.0.0.1:7651');
  const route = routeCredential(secrets);
  assert.deepEqual(conf.cluster.authorization, route);
  assert.equal(conf.cluster.routes.length, 2, 'routes to the two others, not to itself');
  assert.ok(conf.cluster.routes.every((u: string) => u.startsWith(`nats-route://mp-route:${encodeURIComponent(route.password)}@127.0.0.1:765`)));
  assert.ok(!conf.cluster.routes.some((u: string) => u.endsWith(':7651')));
  assert.equal(conf.authorization.users.length, 7, 'the same role users on every node (router, gateway, server, control, feed, history, operator)');
  // The route password is no role's, and follows the cluster token.
  assert.ok(!Object.values(secrets.nats).some((c) => c.password === route.password));
  assert.notEqual(routeCredential(generateSecrets()).password, route.password);
  // The args name only the 0600 file: no password on argv.
  assert.ok(!nats.some((p) => p.args.join(' ').includes(route.password)));
});

test('--nats-cluster and --redis-cluster refuse an external or embedded store, clearly', () => {
  assert.throws(() => planCluster(input({ bus: { kind: 'external', url: 'nats://x:1' }, natsCluster: natsNodePortsFromBase(7100, 3) })), /--nats-cluster starts nats-servers/);
  assert.throws(() => planCluster(input({ cache: { kind: 'none' }, redisCluster: { replicas: 1, ports: redisNodePortsFromBase(7100, 6) } })), /--redis-cluster starts redis-servers/);
  assert.throws(() => natsClusterBlock({ index: 3, routes: [{ host: 'h', port: 1 }] }, secrets), /no route port/);
});

test('--redis-cluster 3: six nodes with cluster-enabled configs; servers get every node as a seed', () => {
  assert.equal(redisClusterNodeCount(3, 1), 6);
  assert.throws(() => redisClusterNodeCount(2, 1), /at least 3 masters/);
  assert.throws(() => redisClusterNodeCount(3, 3), /--redis-replicas/);
  const plan = planCluster(input({ redisCluster: { replicas: 1, ports: redisNodePortsFromBase(7100, 6) } }));
  const redis = plan.processes.filter((p) => p.id.startsWith('redis'));
  assert.equal(redis.length, 6);
  assert.deepEqual(plan.redisCluster, { nodes: [7700, 7701, 7702, 7703, 7704, 7705].map((p) => `127.0.0.1:${p}`), replicas: 1 });
  const server = plan.roles.find((r) => r.role === 'server')!;
  assert.equal(server.config.redis, 'redis://127.0.0.1:7700,127.0.0.1:7701,127.0.0.1:7702,127.0.0.1:7703,127.0.0.1:7704,127.0.0.1:7705');
  const text = storeConfigText(redis[2]!.configFile!, secrets);
  const admin = redisAdminCredential(secrets);
  assert.match(text, /^cluster-enabled yes$/m);
  assert.match(text, /^cluster-port 7752$/m);
  assert.match(text, /^cluster-require-full-coverage no$/m);
  assert.match(text, new RegExp(`^masteruser ${admin.user}$`, 'm'));
  const appUser = text.split('\n').find((l) => l.startsWith(`user ${secrets.redis.user} `))!;
  assert.ok(appUser.includes('+cluster|slots') && appUser.includes('+cluster|info'));
  assert.ok(!/\+cluster(\s|$)|\+@all/.test(appUser), 'the role user gets no other CLUSTER subcommand');
  assert.ok(!redis.some((p) => p.args.join(' ').includes(admin.password)));
});

test('redis URLs: one host is one server, several hosts or redis+cluster:// a cluster; bad ones say why', () => {
  assert.deepEqual(parseRedisUrl('redis://127.0.0.1:6379'), { cluster: false, nodes: [{ host: '127.0.0.1', port: 6379 }] });
  assert.equal(parseRedisUrl('redis://a:1,b:2').cluster, true);
  assert.deepEqual(parseRedisUrl('redis+cluster://u:p@a:7000').nodes, [{ host: 'a', port: 7000 }]);
  assert.throws(() => parseRedisUrl('http://a:1'), /expected redis:\/\//);
  assert.throws(() => parseRedisUrl('redis://a:1,b:x'), /"b:x" is not host:port/);
});

test('kline keys carry the symbol as a hash tag and parse back', () => {
  assert.equal(RedisKlineStore.key('btcusdt', '1m'), 'kl:{BTCUSDT}:1m');
  assert.deepEqual(RedisKlineStore.parseKey('kl:{ETHUSDT}:1h'), { symbol: 'ETHUSDT', interval: '1h' });
  assert.equal(RedisKlineStore.parseKey('kl:ETHUSDT:1h'), undefined);
});

test('Cassandra shape: replication and consistency parse, with clear errors', () => {
  assert.equal(replicationCql(parseReplication('SimpleStrategy:2')), "{'class': 'SimpleStrategy', 'replication_factor': 2}");
  assert.equal(replicationCql(parseReplication('NetworkTopologyStrategy:dc1=3,dc2=2')), "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}");
  assert.throws(() => parseReplication('Simple:2'), /expected SimpleStrategy:RF/);
  assert.throws(() => parseReplication('SimpleStrategy:0'), /whole number from 1 to 10/);
  assert.throws(() => parseReplication("NetworkTopologyStrategy:dc1'=3"), /is not DC=RF/);
  assert.equal(typeof parseConsistency('local_quorum', 'read'), 'number');
  assert.throws(() => parseConsistency('TWICE', 'read'), /one of ANY, ONE/);
  assert.throws(() => parseConsistency('ANY', 'read'), /writes only/);
});

test('Cassandra ring: one token per node evenly spread, every node a seed; flags checked against the history choice', async () => {
  const t = ringTokens(2).map(BigInt);
  assert.deepEqual(t, [-(2n ** 63n), 0n]);
  const nodes = planCassandraNodes('/d', { port: 9001, ring: { cqlPorts: [9001, 9002], storagePorts: [9101, 9102] }, heapMb: 384 });
  assert.deepEqual(nodes.map((n) => n.id), ['cassandra-1', 'cassandra-2']);
  assert.deepEqual(nodes[1]!.args, ['--port', '9002', '--data', '/d/cassandra-2', '--storage-port', '9102', '--seeds', '127.0.0.1:9101,127.0.0.1:9102', '--token', '0', '--heap-mb', '384']);
  assert.deepEqual(planCassandraNodes('/d', { port: 9001 }).map((n) => n.id), ['cassandra'], 'one node keeps its id');
  const spawn = { kind: 'spawn' as const, port: 9001, ring: { cqlPorts: [9001, 9002], storagePorts: [9101, 9102] } };
  const base = { 'port-base': 7100 };
  assert.deepEqual(cassandraShape(base, spawn), { replication: 'SimpleStrategy:2' });
  assert.deepEqual(cassandraShape({ ...base, 'cassandra-read-cl': 'ONE' }, { kind: 'external', contactPoints: 'h:1' }), { readConsistency: 'ONE' });
  assert.throws(() => cassandraShape({ ...base, 'cassandra-replication': 'SimpleStrategy:3' }, spawn), /more replicas than the 2 node/);
  assert.throws(() => cassandraShape({ ...base, 'cassandra-write-cl': 'MOST' }, spawn), /write consistency "MOST"/);
  assert.throws(() => cassandraShape({ ...base, 'cassandra-nodes': 2 }, { kind: 'embedded' }), /need --history cassandra/);
  assert.throws(() => cassandraShape({ ...base, 'cassandra-nodes': 2 }, { kind: 'external', contactPoints: 'h:1' }), /not --cassandra HOSTS/);
  await assert.rejects(enginePlanInput({ ...base, 'redis-replicas': 2 }, portsFromBase(7100, counts), '127.0.0.1'), /--redis-replicas goes with --redis-cluster/);
});
