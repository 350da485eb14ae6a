// ACK on the private order stream is checked against the stream: an ack
// beyond the user's last order event is refused with a clear error and does
// not move the stored ack, so a later SUBSCRIBE without `after` still
// delivers everything after the last real ack.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { SignJWT } from 'jose';
import { create, toBinary } from '@bufbuild/protobuf';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { OrderSchema } from '../../proto/gen/market_pb.js';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';
import { ACKS_BUCKET, ensureOrdersStream, orderSubject } from '../../system/gateway/orders.ts';

const SECRET = 'order-acks-test-secret-0123456789';
const key = new TextEncoder().encode(SECRET);
const token = (sub: string) =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) + 3600).sign(key);

interface Msg { e?: string; seq?: number; id?: number | null; result?: unknown; error?: { code: number; msg: string } }

/** A WebSocket JSON session of one user: every message it got, in order. */
async function session(wsBase: string, user: string): Promise<{ ws: WebSocket; msgs: Msg[]; orders: () => number[]; reply: (id: number) => Promise<Msg> }> {
  const ws = new WebSocket(`${wsBase}/ws?token=${await token(user)}`, { perMessageDeflate: false });
  const msgs: Msg[] = [];
  ws.on('error', () => {});
  ws.on('message', (d: Buffer) => msgs.push(JSON.parse(d.toString()) as Msg));
  await new Promise((r) => ws.once('open', r));
  return {
    ws,
    msgs,
    orders: () => msgs.filter((m) => m.e === 'executionReport').map((m) => m.seq!),
    reply: async (id) => {
      await waitFor(() => msgs.some((m) => m.id === id), 5_000, `reply to request ${id}`);
      return msgs.find((m) => m.id === id)!;
    },
  };
}

describe('order stream ACK validation', () => {
  let cluster: TestCluster;
  let nc: NatsConnection;
  let js: JetStreamClient;
  const closers: Array<() => void> = [];

  before(async () => {
    cluster = await startCluster({ servers: 1, gateways: 1, symbols: 1, rate: 5, gateway: { auth: { hs256Secret: SECRET } } });
    nc = await connect({ servers: cluster.nats.url });
    await ensureOrdersStream(nc);
    js = jetstream(nc);
  });
  after(async () => {
    for (const c of closers) c();
    await nc?.close();
    await cluster?.stop();
  });

  const publish = async (user: string, n: number) =>
    (await js.publish(orderSubject(user), toBinary(OrderSchema, create(OrderSchema, { user, id: `${user}-${n}`, symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', status: 'NEW', price: '1', qty: '1', filledQty: '0', updateTime: 1n })))).seq;

  test('an ACK beyond the last order event is refused, the stored ack stays, and a later SUBSCRIBE still delivers', async () => {
    const gw = cluster.gateways[0]!.urls.ws!;
    const user = 'acker';
    const seqs = [await publish(user, 1), await publish(user, 2), await publish(user, 3)];
    const a = await session(gw, user);
    closers.push(() => a.ws.terminate());
    a.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['orders'], id: 1, after: 0 }));
    await waitFor(() => a.orders().length === 3, 5_000, 'the three orders');
    assert.deepEqual(a.orders(), seqs);

    a.ws.send(JSON.stringify({ method: 'ACK', params: [seqs[1]], id: 2 }));
    assert.equal((await a.reply(2)).result, null, 'an ACK of a delivered event is accepted');
    a.ws.send(JSON.stringify({ method: 'ACK', params: [999_999_999], id: 3 }));
    const refused = await a.reply(3);
    assert.equal(refused.error?.code, 2);
    assert.match(refused.error!.msg, new RegExp(`ACK 999999999 is beyond this user's last order event \\(${seqs[2]}\\)`));

    // The same from a connection that never subscribed: checked against the stream itself.
    const b = await session(gw, user);
    closers.push(() => b.ws.terminate());
    b.ws.send(JSON.stringify({ method: 'ACK', params: [seqs[2]! + 1], id: 4 }));
    assert.match((await b.reply(4)).error?.msg ?? '', /beyond this user's last order event/);

    // The stored ack is the accepted one, not the refused ones.
    const kv = await new Kvm(nc).open(ACKS_BUCKET);
    await waitFor(async () => (await kv.get(`u.${user}`))?.string() === String(seqs[1]), 5_000, 'the accepted ack stored');
    await new Promise((r) => setTimeout(r, 300)); // past the 100 ms ack write-behind
    assert.equal((await kv.get(`u.${user}`))?.string(), String(seqs[1]));

    // A later SUBSCRIBE without `after` resumes after the stored ack: the third order and the new one.
    const s4 = await publish(user, 4);
    a.ws.terminate();
    const c = await session(gw, user);
    closers.push(() => c.ws.terminate());
    c.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['orders'], id: 5 }));
    await waitFor(() => c.orders().length >= 2, 5_000, 'orders after the stored ack');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(c.orders(), [seqs[2], s4]);
  });
});
