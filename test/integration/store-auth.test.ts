// NATS and Redis of a `pushctl up` cluster take only the cluster's roles,
// tried as an attacker would from outside the credentials: no anonymous NATS
// client, a gateway's password neither publishes market data nor writes the
// router registry, no unauthenticated Redis command. The roles still work
// through their own users (data reaches a WebSocket client, klines REST
// answers, a bench run coordinates over NATS as the operator), and
// `chaos restart redis` and `chaos kill` + `chaos restart` of a gateway bring
// them back. Real nats-server, redis-server and role processes.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { Redis } from 'ioredis';
import { isAlive } from '../../cli/lib/processes.ts';
import type { ClusterState } from '../../cli/lib/state-file.ts';
import type { ClusterSecrets } from '../../system/common/secrets.ts';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { create, toBinary } from '@bufbuild/protobuf';
import { SignJWT } from 'jose';
import { OrderSchema } from '../../proto/gen/market_pb.js';
import { startCluster } from '../helpers/cluster.ts';
import { pushctl as runPushctl } from '../helpers/pushctl.ts';
import { TestClient } from '../helpers/ws-client.ts';

const pushctl = (args: string[], timeoutMs = 90_000) => runPushctl(args, { timeoutMs });

async function until(cond: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function json<T>(url: string, headers: Record<string, string> = {}): Promise<T | undefined> {
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(2_000) });
    return res.ok ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

/** Errors the server reports asynchronously on a connection (permission violations). */
function asyncErrors(nc: NatsConnection): string[] {
  const seen: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error') seen.push(`${s.error.name}: ${s.error.message}`);
  })();
  return seen;
}

/** Sends inline commands over a plain socket, as an attacker would, and returns the first line of each reply. */
function rawRedis(port: number, commands: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const sock = netConnect(port, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => (sock.destroy(), reject(new Error(`redis replies so far: ${buf}`))), 5_000);
    sock.on('error', reject);
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\r\n').filter(Boolean);
      if (lines.length >= commands.length) {
        clearTimeout(timer);
        sock.destroy();
        resolve(lines);
      }
    });
    sock.write(commands.map((c) => `${c}\r\n`).join(''));
  });
}

async function upCluster(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-store-auth-'));
  const closers: Array<() => Promise<unknown> | void> = [];
  t.after(async () => {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => {});
    if (existsSync(join(dir, 'cluster.json'))) await pushctl(['down', '--data-dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const up = await pushctl(['up', '--detach', '--port-base', '0', '--servers', '1', '--gateways', '2', '--symbols', '3', '--data-dir', dir], 120_000);
  assert.equal(up.code, 0, up.out);
  const state = () => JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as ClusterState;
  const secrets = JSON.parse(readFileSync(join(dir, 'secrets.json'), 'utf8')) as ClusterSecrets;
  return { dir, state, secrets, closers };
}

test('NATS and Redis refuse everyone but the cluster roles; the roles work; chaos restarts redis and a killed gateway', { timeout: 300_000 }, async (t) => {
  const { dir, state, secrets, closers } = await upCluster(t);
  const natsUrl = state().endpoints.nats!;
  const redisUrl = state().endpoints.redis!;
  assert.ok(natsUrl && redisUrl, 'the cluster started its own nats-server and redis-server');
  // No credential on any command line (they are readable by every local user).
  for (const p of state().processes) {
    const cmdline = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8');
    for (const c of [...Object.values(secrets.nats), secrets.redis]) assert.ok(!cmdline.includes(c.password), `${p.id}'s command line`);
  }

  // --- NATS: anonymous clients cannot connect at all.
  await assert.rejects(connect({ servers: natsUrl, reconnect: false }), (err: Error) => {
    assert.match(err.message, /Authorization Violation/);
    return true;
  });

  // --- The gateway user: no market data, no registry writes (the server refuses and says so).
  const gw = await connect({ servers: natsUrl, user: secrets.nats.gateway.user, pass: secrets.nats.gateway.password, name: 'probe-gateway' });
  closers.push(() => gw.close());
  const gwErrors = asyncErrors(gw);
  gw.publish('md.btcusdt.trade', new TextEncoder().encode('fake trade'));
  await gw.flush();
  await until(() => gwErrors.some((e) => /PermissionViolation/.test(e) && /md\.btcusdt\.trade/.test(e)), 5_000, 'the md.> publish to be refused');
  const registry = await new Kvm(gw).open('push_registry');
  await assert.rejects(registry.put('node.gateway-evil', JSON.stringify({ id: 'gateway-evil', role: 'gateway', urls: { ws: 'ws://203.0.113.1:1' } })), (err: Error) => {
    assert.match(err.message, /Permissions Violation for Publish to "\$KV\.push_registry\.node\.gateway-evil"/);
    return true;
  });
  // The registry is on the router's admin listener, for the operator's token.
  const adminToken = (JSON.parse(readFileSync(join(dir, 'secrets.json'), 'utf8')) as { adminToken: string }).adminToken;
  const nodes = await json<{ nodes: Array<{ id: string }> }>(`${state().endpoints.routerAdmins![0]}/v1/nodes`, { authorization: `Bearer ${adminToken}` });
  assert.ok(nodes && !nodes.nodes.some((n) => n.id === 'gateway-evil'), 'the router lists no forged node');

  // --- The feed user publishes md.>; the operator user may watch it.
  const op = await connect({ servers: natsUrl, user: secrets.nats.operator.user, pass: secrets.nats.operator.password, name: 'probe-operator' });
  closers.push(() => op.close());
  const seen: string[] = [];
  op.subscribe('md.probe.trade', { callback: (_e, m) => void seen.push(m.string()) });
  await op.flush();
  const feed = await connect({ servers: natsUrl, user: secrets.nats.feed.user, pass: secrets.nats.feed.password, name: 'probe-feed' });
  closers.push(() => feed.close());
  const feedErrors = asyncErrors(feed);
  feed.publish('md.probe.trade', new TextEncoder().encode('from the feed user'));
  await feed.flush();
  await until(() => seen.includes('from the feed user'), 5_000, 'the feed user\'s md.> message');
  assert.deepEqual(feedErrors, []);

  // --- The roles connected with their users: data flows end to end, klines REST answers from the Redis-backed server.
  const g1 = state().endpoints.gateways[0]!;
  const client = new TestClient(`${g1.ws}/stream?streams=btcusdt@trade`);
  closers.push(() => client.ws.terminate());
  await client.opened;
  await client.waitFor(() => (client.seqs.get('btcusdt@trade')?.length ?? 0) >= 3, 15_000, 'trades on a WebSocket');
  const server = state().endpoints.servers[0]!;
  assert.equal((await json<{ redis?: string }>(`${server.admin}/healthz`))?.redis, 'up', 'server-1 reached Redis with its ACL user');
  const klines = await json<unknown[]>(`${g1.http}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=5`);
  assert.ok(Array.isArray(klines) && klines.length > 0, `klines REST: ${JSON.stringify(klines)}`);

  // --- Redis: no command without authenticating; the ACL user runs only the kline tier's commands on its keys.
  const redisPort = Number(new URL(redisUrl).port);
  const anon = await rawRedis(redisPort, ['GET kl:BTCUSDT:1m', 'KEYS *', 'AUTH default x']);
  assert.match(anon[0]!, /^-NOAUTH/);
  assert.match(anon[1]!, /^-NOAUTH/);
  assert.match(anon[2]!, /^-WRONGPASS/);
  const user = new Redis(redisUrl, { username: secrets.redis.user, password: secrets.redis.password, lazyConnect: true, maxRetriesPerRequest: 0 });
  user.on('error', () => {});
  closers.push(() => user.disconnect());
  await user.connect();
  await assert.rejects(user.flushall(), /NOPERM/);
  await assert.rejects(user.zadd('other:key', 1, 'x'), /NOPERM/);

  // --- A bench run coordinates its agents over the cluster's NATS as the operator user.
  const bench = await pushctl(['bench', 'hot-symbol', '--data-dir', dir, '--agents', '1', '--amplify', '1', '--jitter', '0s', '--duration', '3s', '--no-dashboard', '--json', '--out', join(dir, 'reports'), '--threshold', 'msgs>0'], 90_000);
  assert.equal(bench.code, 0, bench.out);

  // `pushctl history import` writes into the cluster's Redis as the ACL user too.
  const hour = 3_600_000;
  const t0 = Math.floor(Date.now() / hour) * hour - 3 * hour;
  const csv = join(dir, 'XIMPUSDT-1h-import.csv');
  writeFileSync(csv, [0, 1, 2].map((i) => `${t0 + i * hour},1.0,2.0,0.5,1.5,10,${t0 + (i + 1) * hour - 1},15,7,5,7.5,0`).join('\n') + '\n');
  const imported = await pushctl(['history', 'import', csv, '--data-dir', dir]);
  assert.equal(imported.code, 0, imported.out);
  assert.equal((await user.zrangebyscore('kl:{XIMPUSDT}:1h', '-inf', '+inf')).length, 3, 'imported klines in Redis');

  // The archiver wrote closed klines (one a minute boundary) with its ACL user.
  await until(async () => (await user.zrangebyscore('kl:{BTCUSDT}:1m', '-inf', '+inf')).length > 0, 70_000, 'a closed kline in Redis');
  user.disconnect();

  // --- chaos restart redis: the same argv again (redis-server rewrites its /proc cmdline, so it comes from the state file).
  const redisBefore = state().processes.find((p) => p.id === 'redis')!;
  const restartRedis = await pushctl(['chaos', 'restart', 'redis', '--data-dir', dir]);
  assert.equal(restartRedis.code, 0, restartRedis.out);
  const redisAfter = state().processes.find((p) => p.id === 'redis')!;
  assert.notEqual(redisAfter.pid, redisBefore.pid);
  assert.equal(isAlive(redisBefore.pid, redisBefore.startTime), false);
  assert.ok(isAlive(redisAfter.pid, redisAfter.startTime), 'the new redis-server runs');
  const again = new Redis(redisUrl, { username: secrets.redis.user, password: secrets.redis.password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: (n) => (n > 50 ? null : 100) });
  again.on('error', () => {});
  closers.push(() => again.disconnect());
  await until(async () => (await again.connect().then(() => again.ping(), () => '')) === 'PONG', 10_000, 'the restarted Redis to answer its ACL user');
  assert.match((await rawRedis(redisPort, ['GET kl:BTCUSDT:1m']))[0]!, /^-NOAUTH/, 'the restarted Redis still refuses anonymous commands');
  // The server's history reconnects to it on its own.
  await until(async () => (await json<{ redis?: string }>(`${server.admin}/healthz`))?.redis === 'up', 20_000, 'server-1 back on Redis');

  // --- chaos kill, then chaos restart of the killed gateway starts it again.
  const g2 = state().roles.find((r) => r.id === 'gateway-2')!;
  const kill = await pushctl(['chaos', 'kill', 'gateway-2', '--data-dir', dir]);
  assert.equal(kill.code, 0, kill.out);
  const killed = state().processes.find((p) => p.id === 'gateway-2')!;
  assert.equal(isAlive(killed.pid, killed.startTime), false);
  const restartGw = await pushctl(['chaos', 'restart', 'gateway-2', '--data-dir', dir]);
  assert.equal(restartGw.code, 0, restartGw.out);
  assert.match(restartGw.out, /started gateway-2 again/);
  const revived = state().processes.find((p) => p.id === 'gateway-2')!;
  assert.notEqual(revived.pid, killed.pid);
  await until(async () => (await json<{ ok?: boolean }>(g2.healthUrl))?.ok === true, 30_000, 'the restarted gateway-2 to answer on its port');
  await until(async () => ((await json<{ nodes: Array<{ id: string }> }>(`${state().endpoints.routerAdmins![0]}/v1/nodes`, { authorization: `Bearer ${adminToken}` }))?.nodes ?? []).some((n) => n.id === 'gateway-2'), 20_000, 'gateway-2 registered again');
  const c2 = new TestClient(`${state().endpoints.gateways[1]!.ws}/stream?streams=btcusdt@trade`);
  closers.push(() => c2.ws.terminate());
  await c2.opened;
  await c2.waitFor(() => (c2.seqs.get('btcusdt@trade')?.length ?? 0) >= 2, 15_000, 'trades through the restarted gateway');

  // No role was refused anything it needs: the only violations nats-server logged are the probes above.
  const violations = readFileSync(join(dir, 'logs', 'nats.log'), 'utf8').split('\n').filter((l) => /Violation/.test(l));
  assert.ok(violations.length >= 2, 'the refused probes were logged');
  assert.deepEqual(violations.filter((l) => !l.includes('probe-')), [], 'no role hit a permission violation');
});

test('order streams under the role users: the operator publishes orders, a gateway delivers them and stores acks; a gateway cannot forge one', { timeout: 120_000 }, async (t) => {
  const SECRET = 'store-auth-orders-secret-0123456789';
  const cluster = await startCluster({ servers: 1, gateways: 1, symbols: 1, rate: 5, storeAuth: true, gateway: { auth: { hs256Secret: SECRET } } });
  const closers: Array<() => Promise<unknown> | void> = [() => cluster.stop()];
  t.after(async () => {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => {});
  });
  const secrets = cluster.secrets!;
  const op = await connect({ servers: cluster.nats.url, user: secrets.nats.operator.user, pass: secrets.nats.operator.password, name: 'probe-operator' });
  closers.push(() => op.close());
  const js = jetstream(op);
  const order = (n: number) => toBinary(OrderSchema, create(OrderSchema, { user: 'alice', id: `alice-${n}`, symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', status: 'NEW', price: '1.00', qty: '1', filledQty: '0', updateTime: BigInt(Date.now()) }));
  const published: number[] = [];
  for (let n = 1; n <= 5; n++) published.push((await js.publish('orders.alice', order(n))).seq);

  const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
  const client = new TestClient(`${cluster.gateways[0]!.urls.ws}/ws?token=${jwt}`);
  closers.push(() => client.ws.terminate());
  await client.opened;
  client.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['orders'], id: 1, after: 0 }));
  const reports = () => client.json.filter((m) => m.e === 'executionReport').map((m) => m.seq as number);
  await client.waitFor(() => reports().length >= 5, 15_000, 'five order events');
  assert.deepEqual(reports(), published);
  client.ws.send(JSON.stringify({ method: 'ACK', params: [published.at(-1)], id: null }));

  // The gateway wrote the ack into its bucket with its own user.
  const gw = await connect({ servers: cluster.nats.url, user: secrets.nats.gateway.user, pass: secrets.nats.gateway.password, name: 'probe-gateway' });
  closers.push(() => gw.close());
  const acks = await new Kvm(gw).open('push_order_acks');
  await until(async () => (await acks.get('u.alice'))?.string() === String(published.at(-1)), 10_000, 'the stored ack');
  // …but cannot publish order events itself.
  const errors = asyncErrors(gw);
  gw.publish('orders.alice', order(99));
  await gw.flush();
  await until(() => errors.some((e) => /PermissionViolation/.test(e)), 5_000, 'the forged order to be refused');
  const info = await (await jetstreamManager(op)).streams.info('ORDERS').catch(() => undefined);
  assert.equal(info?.state.messages ?? published.length, published.length, 'no forged order in the stream');
});
