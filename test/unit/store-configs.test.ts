// The nats-server and redis-server configs pushctl up writes: who may do what,
// no default or anonymous user, the file readable by its owner only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { natsPermissions, natsServerConfig } from '../../cli/lib/nats-server-config.ts';
import { KLINE_TIER_COMMANDS, redisServerConfig } from '../../cli/lib/redis-server-config.ts';
import { planCluster, portsFromBase } from '../../cli/lib/cluster-plan.ts';
import { writeStoreConfigs } from '../../cli/lib/store-configs.ts';
import { generateSecrets, NATS_USERS } from '../../system/common/secrets.ts';

const secrets = generateSecrets();

/** NATS subject matching: `*` one token, `>` the rest. */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}
const may = (kind: (typeof NATS_USERS)[number], op: 'publish' | 'subscribe', subject: string) => {
  const rules = natsPermissions(kind)[op];
  if (rules.deny?.some((d) => matches(d, subject))) return false;
  return rules.allow?.some((a) => matches(a, subject)) ?? false;
};

test('nats-server config: listen address, JetStream dir, one user per role kind with its password, nothing anonymous', () => {
  const cfg = JSON.parse(natsServerConfig({ host: '127.0.0.1', port: 4999, storeDir: '/d/nats', secrets })) as {
    listen: string;
    jetstream: { store_dir: string };
    authorization: { users: Array<{ user: string; password: string; permissions: unknown }> };
    no_auth_user?: string;
  };
  assert.equal(cfg.listen, '127.0.0.1:4999');
  assert.deepEqual(cfg.jetstream, { store_dir: '/d/nats' });
  assert.equal(cfg.no_auth_user, undefined);
  assert.deepEqual(cfg.authorization.users.map((u) => u.user), NATS_USERS.map((k) => secrets.nats[k].user));
  for (const k of NATS_USERS) {
    const u = cfg.authorization.users.find((x) => x.user === secrets.nats[k].user)!;
    assert.equal(u.password, secrets.nats[k].password);
    assert.deepEqual(u.permissions, natsPermissions(k));
  }
});

test('nats permissions: only the feed publishes md.>, only the router writes the registry bucket', () => {
  for (const k of NATS_USERS) {
    assert.equal(may(k, 'publish', 'md.btcusdt.trade'), k === 'feed', `${k} publishing md.btcusdt.trade`);
    assert.equal(may(k, 'publish', '$KV.push_registry.node.gateway-1'), k === 'router', `${k} writing the registry`);
    // Changing the registry's stream (its subjects, or purging it) is the router's alone too.
    for (const api of ['STREAM.UPDATE', 'STREAM.DELETE', 'STREAM.PURGE', 'STREAM.MSG.DELETE'])
      assert.equal(may(k, 'publish', `$JS.API.${api}.KV_push_registry`), false, `${k}: ${api} on the registry`);
  }
  // Closed klines into JetStream: the feed; the archiver's consumer: servers; market data in: servers.
  assert.ok(may('feed', 'publish', 'kline.closed.btcusdt.1m'));
  assert.ok(!may('gateway', 'publish', 'kline.closed.btcusdt.1m'));
  assert.ok(may('server', 'subscribe', 'md.btcusdt.trade'));
  assert.ok(may('server', 'publish', '$JS.API.CONSUMER.MSG.NEXT.KLINES.kline-archiver'));
  assert.ok(may('server', 'publish', '$JS.ACK.KLINES.kline-archiver.1.2.3.4.5.6.7'));
  assert.ok(!may('gateway', 'subscribe', 'md.btcusdt.trade'), 'gateways take market data from servers, not the bus');
  // Order streams: gateways read ORDERS and write their acks bucket; order updates come from the operator user.
  assert.ok(may('gateway', 'publish', '$JS.API.CONSUMER.CREATE.ORDERS.oc_1.orders.alice'));
  assert.ok(may('gateway', 'publish', '$KV.push_order_acks.u.alice'));
  assert.ok(!may('gateway', 'publish', 'orders.alice'), 'a gateway cannot forge order events');
  assert.ok(may('operator', 'publish', 'orders.alice'));
  assert.ok(!may('router', 'publish', '$KV.push_order_acks.u.alice'));
  // Bench coordination: the operator only.
  assert.ok(may('operator', 'publish', 'pushctl.bench.r1.start') && may('operator', 'subscribe', 'pushctl.agent.a.plan'));
  assert.ok(!may('gateway', 'publish', 'pushctl.bench.r1.start'));
  // The history process (REST host): candles and trades in, nothing out, nothing else in.
  assert.ok(may('history', 'subscribe', 'md.kline_1m.btcusdt') && may('history', 'subscribe', 'md.kline_1d.btcusdt') && may('history', 'subscribe', 'md.trade.btcusdt'));
  assert.ok(!may('history', 'subscribe', 'md.depth.btcusdt') && !may('history', 'subscribe', 'orders.alice') && !may('history', 'subscribe', '$KV.push_registry.node.x'));
  for (const subject of ['md.kline_1m.btcusdt', 'md.trade.btcusdt', 'kline.closed.btcusdt.1m', '$JS.API.INFO', '_INBOX.x']) assert.ok(!may('history', 'publish', subject), subject);
  // Control uses no subject at all.
  assert.ok(!may('control', 'publish', '_INBOX.x') && !may('control', 'subscribe', 'md.x'));
});

test('redis-server config: default user off, one ACL user with the kline commands on kl:* keys only', () => {
  const text = redisServerConfig({ host: '127.0.0.1', port: 6999, dir: '/d/redis', user: secrets.redis });
  const lines = text.trim().split('\n');
  assert.ok(lines.includes('port 6999') && lines.includes('bind 127.0.0.1') && lines.includes('dir "/d/redis"'));
  assert.ok(lines.includes('protected-mode yes'));
  assert.ok(lines.includes('save ""') && lines.includes('appendonly no'));
  const users = lines.filter((l) => l.startsWith('user '));
  assert.equal(users.length, 2);
  assert.match(users[0]!, /^user default off resetpass /);
  assert.doesNotMatch(users[0]!, /\bon\b|nopass|>/);
  const mine = users[1]!.split(' ');
  assert.deepEqual(mine.slice(0, 3), ['user', secrets.redis.user, 'on']);
  assert.ok(mine.includes(`>${secrets.redis.password}`));
  assert.deepEqual(mine.filter((t) => t.startsWith('~')), ['~kl:*']);
  assert.ok(mine.includes('-@all'));
  assert.deepEqual(mine.filter((t) => t.startsWith('+')), KLINE_TIER_COMMANDS.map((c) => `+${c}`));
  assert.ok(!mine.some((t) => /^\+(@all|flushall|flushdb|config|keys|del|acl|eval)/.test(t)));
  assert.throws(() => redisServerConfig({ host: 'h', port: 1, dir: '/d', user: { user: 'a b', password: 'x'.repeat(20) } }), /redis user/);
  assert.throws(() => redisServerConfig({ host: 'h', port: 1, dir: '/d', user: { user: 'ab', password: 'x y'.repeat(9) } }), /password/);
});

test('pushctl up writes both store configs, mode 0600, with the cluster credentials', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mp-storecfg-'));
  try {
    const counts = { routers: 1, gateways: 1, servers: 1 };
    const plan = planCluster({
      ...counts, symbols: 1, rate: 1, host: '127.0.0.1', dataDir: dir, ports: portsFromBase(7100, counts),
      bus: { kind: 'spawn', bin: '/usr/bin/nats-server' }, cache: { kind: 'spawn', bin: '/usr/bin/redis-server' },
    });
    const paths = writeStoreConfigs(plan, secrets);
    assert.deepEqual(paths, [join(dir, 'nats-server.conf'), join(dir, 'redis-server.conf')]);
    for (const p of paths) assert.equal(statSync(p).mode & 0o777, 0o600, p);
    assert.ok(readFileSync(paths[0]!, 'utf8').includes(secrets.nats.feed.password));
    assert.ok(readFileSync(paths[1]!, 'utf8').includes(`>${secrets.redis.password}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
