// JWT auth over gRPC-web, on a gateway that checks tokens: a bad token on
// Subscribe is refused with unauthenticated, a session without one gets public
// data but not the private orders channel (error 7), and a valid
// `Authorization: Bearer` header on Subscribe opens the user's order stream;
// at the token's expiry the stream ends with unauthenticated. And draining:
// open streams end with unavailable after a 4002 frame, new ones are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { create, toBinary } from '@bufbuild/protobuf';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { OrderSchema } from '../../proto/gen/market_pb.js';
import { adminHeaders, startCluster } from '../helpers/cluster.ts';
import { GrpcWebClient } from '../helpers/proto-clients.ts';
import { ensureOrdersStream, orderSubject } from '../../system/gateway/orders.ts';

const SECRET = 'grpc-web-auth-secret-0123456789abcdef';
const sign = (sub: string, secret = SECRET, expiresInSec = 3600) =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSec).sign(new TextEncoder().encode(secret));

test('gRPC-web: tokens on Subscribe, the private orders channel only with a valid one, expiry and drain end the stream with a status', async (t) => {
  const cluster = await startCluster({ servers: 1, gateways: 1, symbols: 2, rate: 20, gateway: { auth: { hs256Secret: SECRET }, drainSpreadMs: 200 } });
  t.after(() => cluster.stop());
  const nc = await connect({ servers: cluster.nats.url });
  t.after(() => nc.close());
  await ensureOrdersStream(nc);
  const base = cluster.gateways[0]!.urls['grpc-web']!;
  const clients: GrpcWebClient[] = [];
  t.after(() => clients.forEach((c) => c.close()));
  const client = (headers: Record<string, string> = {}) => {
    const c = new GrpcWebClient(base, true, 'grpc-web', headers);
    clients.push(c);
    return c;
  };

  const forged = client({ authorization: `Bearer ${await sign('mallory', 'not-the-secret-0123456789abcdef')}` });
  await assert.rejects(forged.open(), /refused: Unauthenticated .*signature/);

  const anonymous = client();
  await anonymous.open();
  anonymous.send({ kind: 'subscribe', id: 1, topics: ['orders'] });
  await anonymous.waitFor(() => anonymous.r.errors.some((e) => e.code === 7), 5_000, 'unauthorized error');
  assert.match(anonymous.r.errors.find((e) => e.code === 7)!.msg, /needs a valid token/);
  anonymous.send({ kind: 'subscribe', id: 2, topics: ['btcusdt@trade'] });
  await anonymous.waitFor(() => anonymous.seqs('btcusdt@trade').length >= 2, 10_000, 'public data without a token');

  const alice = client({ authorization: `Bearer ${await sign('web-alice')}` });
  await alice.open();
  alice.send({ kind: 'subscribe', id: 3, topics: ['orders'] });
  await alice.waitFor(() => alice.r.results.has(3), 5_000, 'the orders subscription');
  const js = jetstream(nc);
  const order = (user: string) =>
    toBinary(OrderSchema, create(OrderSchema, { user, id: `${user}-1`, symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', status: 'NEW', price: '1', qty: '1', filledQty: '0', updateTime: BigInt(Date.now()) }));
  await js.publish(orderSubject('web-bob'), order('web-bob'));
  await js.publish(orderSubject('web-alice'), order('web-alice'));
  await alice.waitFor(() => alice.r.events.length >= 1, 10_000, "alice's order");
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(alice.r.events.length, 1, `only alice's own order: ${JSON.stringify(alice.r.events)}`);
  assert.deepEqual(alice.r.errors, []);

  const brief = client({ authorization: `Bearer ${await sign('web-brief', SECRET, 2)}` });
  await brief.open();
  brief.send({ kind: 'subscribe', id: 4, topics: ['btcusdt@ticker'] });
  await brief.waitFor(() => brief.closed, 10_000, 'the stream to end at expiry');
  assert.match(brief.closeInfo, /^Unauthenticated/, brief.closeInfo);
  assert.ok(brief.r.errors.some((e) => e.code === 4003), JSON.stringify(brief.r.errors));

  // Draining: the open session is told (4002) and its stream ends with unavailable; new ones are refused.
  const res = await fetch(`${cluster.gateways[0]!.urls.admin}/admin/drain`, { method: 'POST', headers: adminHeaders(), body: '{}' });
  assert.equal(res.status, 200);
  await anonymous.waitFor(() => anonymous.closed, 10_000, 'the stream to end on drain');
  assert.match(anonymous.closeInfo, /^Unavailable .*draining/, anonymous.closeInfo);
  assert.ok(anonymous.r.errors.some((e) => e.code === 4002), JSON.stringify(anonymous.r.errors));
  await assert.rejects(client().open(), /refused: Unavailable .*draining/);
});
