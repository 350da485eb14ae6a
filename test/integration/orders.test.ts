// Private order streams and JWT auth, with real NATS JetStream and real
// gateway/server processes: refused tokens on every protocol, one user never
// sees another's orders, expiry enforced mid-connection, and resume after a
// crash with nothing lost and nothing delivered twice.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { SignJWT } from 'jose';
import * as grpc from '@grpc/grpc-js';
import { create, toBinary } from '@bufbuild/protobuf';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { OrderSchema } from '../../proto/gen/market_pb.js';
import { ClientFrameSchema } from '../../proto/gen/client_pb.js';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';
import { OrderClient } from '../helpers/order-client.ts';
import { GrpcClient, TcpClient, WsJsonClient } from '../helpers/proto-clients.ts';
import { ensureOrdersStream, orderSubject } from '../../system/gateway/orders.ts';

const SECRET = 'orders-test-secret-0123456789abcdef';
const key = new TextEncoder().encode(SECRET);
const token = (sub: string, expiresInSec = 3600) =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSec).sign(key);

const orderBytes = (user: string, n: number) =>
  toBinary(OrderSchema, create(OrderSchema, { user, id: `${user}-${n}`, symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', status: 'NEW', price: '60000.00', qty: '0.01', filledQty: '0', updateTime: BigInt(Date.now()) }));

describe('private order streams and JWT auth', () => {
  let cluster: TestCluster;
  let nc: NatsConnection;
  let js: JetStreamClient;
  const closers: Array<() => void> = [];

  before(async () => {
    cluster = await startCluster({
      servers: 2,
      gateways: 2,
      symbols: 2,
      rate: 20,
      gateway: { auth: { hs256Secret: SECRET }, pingIntervalMs: 200 },
    });
    nc = await connect({ servers: cluster.nats.url });
    await ensureOrdersStream(nc);
    js = jetstream(nc);
  });
  after(async () => {
    for (const c of closers) c();
    await nc?.close();
    await cluster?.stop();
  });

  test('a bad, expired or missing token is refused with a clear error on every protocol', async () => {
    const gw = cluster.gateways[0]!.urls;
    const forged = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('mallory').sign(new TextEncoder().encode('not-the-secret'));
    const expired = await token('alice', -10);
    // WebSocket: a bad token at connect is refused before the upgrade.
    for (const [t, why] of [[forged, /bad token signature/], [expired, /expired/], ['garbage', /invalid token/]] as const) {
      const status = await new Promise<{ code: number; body: string }>((resolve) => {
        const ws = new WebSocket(`${gw.ws}/ws?token=${t}`);
        ws.on('error', () => {});
        ws.on('unexpected-response', (_q, res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d));
          res.on('end', () => resolve({ code: res.statusCode ?? 0, body }));
        });
      });
      assert.equal(status.code, 401);
      assert.match(status.body, why);
    }
    // Missing token: public data works, the private channel is refused (code 7), on each protocol.
    const ws = new WsJsonClient(gw.ws!);
    const tcp = new TcpClient(gw.tcp!);
    const g = new GrpcClient(gw.grpc!);
    for (const c of [ws, tcp, g]) {
      closers.push(() => c.close());
      await c.open();
      c.send({ kind: 'subscribe', id: 1, topics: ['orders'] });
      await c.waitFor(() => c.r.errors.some((e) => e.code === 7), 5_000, `${c.name} unauthorized error`);
      assert.match(c.r.errors.find((e) => e.code === 7)!.msg, /needs a valid token/);
    }
    // TCP: an AUTH request with a forged token gets code 7 and no identity.
    tcp.writeFrame(Buffer.from(toBinary(ClientFrameSchema, create(ClientFrameSchema, { id: 2n, kind: { case: 'auth', value: { token: forged } } }))));
    await tcp.waitFor(() => tcp.r.errors.some((e) => e.id === 2 && e.code === 7 && /signature/.test(e.msg)), 5_000, 'tcp AUTH refused');
    // gRPC: a forged token in the metadata fails the call with UNAUTHENTICATED.
    const client = new (grpc.makeGenericClientConstructor({}, 'x'))(gw.grpc!, grpc.credentials.createInsecure());
    closers.push(() => client.close());
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${forged}`);
    const status = await new Promise<grpc.StatusObject>((resolve) => {
      const call = client.makeBidiStreamRequest('/marketpush.v1.PushService/Stream', (b: Buffer) => b, (b: Buffer) => b, md);
      call.on('error', () => {});
      call.on('data', () => {});
      call.on('status', resolve);
    });
    assert.equal(status.code, grpc.status.UNAUTHENTICATED);
    assert.match(status.details, /signature/);
  });

  test('one user never receives another user\'s orders', async () => {
    const a = new OrderClient({ router: cluster.routerUrl, user: 'iso-alice', token: (u) => token(u) });
    const b = new OrderClient({ router: cluster.routerUrl, user: 'iso-bob', token: (u) => token(u) });
    closers.push(() => a.stop(), () => b.stop());
    await Promise.all([a.start(), b.start()]);
    await new Promise((r) => setTimeout(r, 300));
    const mine = { 'iso-alice': [] as number[], 'iso-bob': [] as number[] };
    for (let i = 0; i < 20; i++) {
      for (const u of ['iso-alice', 'iso-bob'] as const) mine[u].push((await js.publish(orderSubject(u), orderBytes(u, i))).seq);
    }
    await waitFor(() => a.seqs.length >= 20 && b.seqs.length >= 20, 10_000, 'both users\' orders');
    assert.deepEqual(a.seqs, mine['iso-alice']);
    assert.deepEqual(b.seqs, mine['iso-bob']);
  });

  test('an expiring token ends the connection when it expires (4003), not only at connect', async () => {
    const short = await token('brief', 2);
    const ws = new WebSocket(`${cluster.gateways[0]!.urls.ws}/ws?token=${short}`);
    closers.push(() => ws.terminate());
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.on('error', () => {});
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['orders'], id: 1 }));
    assert.equal(await closed, 4003);
  });

  test('kill -9 of a gateway and a server while 10,000 order events flow to 100 users: every user complete, in order, no duplicate', async () => {
    const users = Array.from({ length: 100 }, (_, i) => `user-${i}`);
    const clients = users.map((u) => new OrderClient({ router: cluster.routerUrl, user: u, token: (x) => token(x) }));
    closers.push(...clients.map((c) => () => c.stop()));
    await Promise.all(clients.map((c) => c.start()));
    await new Promise((r) => setTimeout(r, 500));
    const expected = new Map(users.map((u) => [u, [] as number[]]));
    const gatewayVictim = cluster.gateways.find((g) => g.proc.exitCode === null)!;
    const serverVictim = cluster.servers[0]!;
    for (let round = 0; round < 100; round++) {
      const acks = await Promise.all(users.map((u) => js.publish(orderSubject(u), orderBytes(u, round))));
      acks.forEach((pa, i) => expected.get(users[i]!)!.push(pa.seq));
      if (round === 30) await gatewayVictim.kill('SIGKILL');
      if (round === 60) await serverVictim.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 10));
    }
    await waitFor(() => clients.every((c) => c.seqs.length >= 100), 60_000, 'every user to have all 100 events');
    await new Promise((r) => setTimeout(r, 500)); // anything extra (a duplicate) would arrive now
    const moved = clients.filter((c) => c.reconnects > 0).length;
    assert.ok(moved > 0, 'some clients were on the killed gateway and reconnected');
    for (const c of clients) assert.deepEqual(c.seqs, expected.get(c.user), `${c.user}: complete, in order, no duplicate`);
  });
});
