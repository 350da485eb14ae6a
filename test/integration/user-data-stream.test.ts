// Binance's user-data-stream conventions on real gateways, a real feed with
// simulated users and a real nats-server (with `pushctl up`'s permissions):
// listenKey create / keepalive / delete / expiry (a 3 s test expiry), Binance
// error codes for missing and unknown API keys, a key made on one gateway
// used on another, another user's events never delivered, and the events'
// field names and JSON types.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, DeliverPolicy } from '@nats-io/jetstream';
import { fromBinary } from '@bufbuild/protobuf';
import { OrderSchema } from '../../proto/gen/market_pb.js';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';
import { ORDERS_STREAM } from '../../system/gateway/orders.ts';

const TTL_MS = 3_000;
const KEY1 = 'apikeyuser1AAAAAAAAAAAAAAAAAAAA';
const KEY2 = 'apikeyuser2BBBBBBBBBBBBBBBBBBBB';

type Json = Record<string, any>;

/** A user-data WebSocket: every message kept; closed() resolves with the close code. */
function open(url: string): Promise<{ ws: WebSocket; msgs: Json[]; closed: Promise<number> } | { status: number; body: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const msgs: Json[] = [];
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.on('message', (d: Buffer) => msgs.push(JSON.parse(d.toString()) as Json));
    ws.on('error', () => {});
    ws.once('open', () => resolve({ ws, msgs, closed }));
    ws.once('unexpected-response', (_q, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
  });
}

describe('Binance user-data streams (listenKey)', () => {
  let cluster: TestCluster;
  let dir: string;
  let keyFile: string;
  let nc: NatsConnection;
  const user2OrderIds = new Set<number>();
  const user1OrderIds = new Set<number>();
  const closers: WebSocket[] = [];
  let http1: string;
  let http2: string;
  let ws2: string;

  const call = async (base: string, method: string, apiKey: string | undefined, query = '') => {
    const res = await fetch(`${base}/api/v3/userDataStream${query}`, { method, headers: apiKey ? { 'X-MBX-APIKEY': apiKey } : {}, signal: AbortSignal.timeout(5_000) });
    return { status: res.status, body: (await res.json()) as Json };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mp-apikeys-'));
    const file = (keyFile = join(dir, 'api-keys.json'));
    writeFileSync(file, JSON.stringify({ keys: [{ apiKey: KEY1, user: 'user1', created: new Date().toISOString() }, { apiKey: KEY2, user: 'user2', created: new Date().toISOString() }] }), { mode: 0o600 });
    cluster = await startCluster({ servers: 1, gateways: 2, symbols: 2, rate: 20, storeAuth: true, gateway: { apiKeysFile: file, listenKeyTtlMs: TTL_MS }, feed: { users: 2, orderRate: 5, seed: 3 } });
    http1 = cluster.gateways[0]!.urls.http!;
    http2 = cluster.gateways[1]!.urls.http!;
    ws2 = cluster.gateways[1]!.urls.ws!;
    const s = cluster.secrets!;
    nc = await connect({ servers: cluster.nats.url, user: s.nats.gateway.user, pass: s.nats.gateway.password });
    const consumer = await jetstream(nc).consumers.get(ORDERS_STREAM, { filter_subjects: 'orders.>', deliver_policy: DeliverPolicy.All });
    const messages = await consumer.consume();
    void (async () => {
      for await (const m of messages) {
        const o = fromBinary(OrderSchema, m.data);
        if (o.orderId > 0n) (o.user === 'user2' ? user2OrderIds : user1OrderIds).add(Number(o.orderId));
      }
    })();
  });
  after(async () => {
    for (const ws of closers) ws.terminate();
    await nc?.close();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a missing or unknown API key gets Binance\'s error and 401', async () => {
    const none = await call(http1, 'POST', undefined);
    assert.equal(none.status, 401);
    assert.equal(none.body.code, -2014);
    const unknown = await call(http1, 'POST', 'nosuchkeyCCCCCCCCCCCCCCCCCCCC');
    assert.equal(unknown.status, 401);
    assert.equal(unknown.body.code, -2015);
    assert.equal(typeof unknown.body.msg, 'string');
    // A key the operator adds later works without a restart; a broken file refuses everyone, and loses nothing once fixed.
    const KEY3 = 'apikeyuser3DDDDDDDDDDDDDDDDDDDD';
    const created = new Date().toISOString();
    const good = JSON.stringify({ keys: [{ apiKey: KEY1, user: 'user1', created }, { apiKey: KEY2, user: 'user2', created }, { apiKey: KEY3, user: 'user3', created }] });
    writeFileSync(keyFile, good);
    assert.equal((await call(http1, 'POST', KEY3)).status, 200);
    writeFileSync(keyFile, '{"keys": [ broken');
    const broken = await call(http1, 'POST', KEY1);
    assert.equal(broken.status, 401);
    assert.equal(broken.body.code, -2015);
    writeFileSync(keyFile, good + ' ');
    assert.equal((await call(http1, 'POST', KEY1)).status, 200);
  });

  test('POST makes one listenKey per user, used on another gateway; events are Binance\'s, and only this user\'s', async () => {
    const a = await call(http1, 'POST', KEY1);
    assert.equal(a.status, 200);
    assert.match(a.body.listenKey, /^[A-Za-z0-9]{64}$/);
    const again = await call(http1, 'POST', KEY1);
    assert.equal(again.body.listenKey, a.body.listenKey, 'an active key is returned again (Binance)');
    const key = a.body.listenKey as string;
    // Kept alive by a PUT every second (the TTL is 3 s) while events are collected.
    const keep = setInterval(() => void call(http2, 'PUT', KEY1, `?listenKey=${key}`).catch(() => {}), 500);
    try {
      const s = await open(`${ws2}/ws/${key}`);
      assert.ok('ws' in s, `upgrade refused: ${JSON.stringify(s)}`);
      closers.push(s.ws);
      const combined = await open(`${ws2}/stream?streams=${key}`);
      assert.ok('ws' in combined);
      closers.push(combined.ws);
      await waitFor(() => s.msgs.filter((m) => m.e === 'executionReport' && m.x === 'TRADE').length >= 3 && s.msgs.some((m) => m.e === 'outboundAccountPosition'), 60_000, 'fills on the listenKey stream');
      const reports = s.msgs.filter((m) => m.e === 'executionReport');
      for (const r of reports) {
        for (const f of ['E', 'i', 'T', 't', 'I', 'O', 'g']) assert.equal(typeof r[f], 'number', `executionReport.${f} is a number`);
        for (const f of ['s', 'c', 'S', 'o', 'f', 'q', 'p', 'P', 'F', 'C', 'x', 'X', 'r', 'l', 'z', 'L', 'n', 'Z', 'Y', 'Q', 'V']) assert.equal(typeof r[f], 'string', `executionReport.${f} is a string`);
        for (const f of ['w', 'm', 'M']) assert.equal(typeof r[f], 'boolean', `executionReport.${f} is a boolean`);
        // The commission asset: the asset received on a fill (Binance's default, no commission here), null otherwise.
        if (r.x === 'TRADE') assert.equal(r.N, r.S === 'BUY' ? r.s.replace(/USDT$/, '') : 'USDT');
        else assert.equal(r.N, null);
        assert.ok(!user2OrderIds.has(r.i), `order ${r.i} belongs to user2: another user's data reached user1`);
        if (r.x === 'TRADE') assert.ok(r.t > 0);
        else assert.equal(r.t, -1);
      }
      const pos = s.msgs.find((m) => m.e === 'outboundAccountPosition')!;
      assert.equal(typeof pos.E, 'number');
      assert.equal(typeof pos.u, 'number');
      assert.ok(Array.isArray(pos.B) && pos.B.length > 0);
      for (const b of pos.B as Json[]) assert.deepEqual(Object.keys(b).sort(), ['a', 'f', 'l']);
      await waitFor(() => combined.msgs.length > 0, 30_000, 'combined stream events');
      assert.equal(combined.msgs[0]!.stream, key);
      assert.equal(typeof combined.msgs[0]!.data.e, 'string');
      // Kept alive past two TTLs: still open, no listenKeyExpired.
      await new Promise((r) => setTimeout(r, 2 * TTL_MS + 500));
      assert.ok(!s.msgs.some((m) => m.e === 'listenKeyExpired'));
      assert.equal(s.ws.readyState, WebSocket.OPEN);
      s.ws.close();
      combined.ws.close();
    } finally {
      clearInterval(keep);
    }
  });

  test('another user\'s key cannot keep alive or delete a listenKey; PUT and DELETE need the key', async () => {
    const { body } = await call(http1, 'POST', KEY1);
    const key = body.listenKey as string;
    const put2 = await call(http1, 'PUT', KEY2, `?listenKey=${key}`);
    assert.equal(put2.status, 400);
    assert.equal(put2.body.code, -1125);
    const del2 = await call(http2, 'DELETE', KEY2, `?listenKey=${key}`);
    assert.equal(del2.body.code, -1125);
    const missing = await call(http1, 'PUT', KEY1);
    assert.equal(missing.status, 400);
    assert.equal(missing.body.code, -1102);
    const ok = await call(http2, 'PUT', KEY1, `?listenKey=${key}`);
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, {});
    const bogus = await open(`${ws2}/ws/${'x'.repeat(64)}`);
    assert.ok('status' in bogus);
    assert.equal(bogus.status, 400);
    assert.equal(JSON.parse(bogus.body).code, -1125);
  });

  test('DELETE closes the stream on another gateway at once; the key is then refused', async () => {
    const { body } = await call(http1, 'POST', KEY2);
    const key = body.listenKey as string;
    const s = await open(`${ws2}/ws/${key}`);
    assert.ok('ws' in s);
    closers.push(s.ws);
    const del = await call(http1, 'DELETE', KEY2, `?listenKey=${key}`);
    assert.equal(del.status, 200);
    assert.equal(await s.closed, 1000);
    const again = await open(`${ws2}/ws/${key}`);
    assert.ok('status' in again && again.status === 400);
    const put = await call(http1, 'PUT', KEY2, `?listenKey=${key}`);
    assert.equal(put.body.code, -1125);
  });

  test('without a keepalive the key expires: listenKeyExpired, then the stream closes and the key is refused', async () => {
    const first = await call(http1, 'POST', KEY2);
    const key = first.body.listenKey as string;
    const s = await open(`${ws2}/ws/${key}`);
    assert.ok('ws' in s);
    closers.push(s.ws);
    const code = await s.closed;
    assert.equal(code, 1000);
    const expired = s.msgs.find((m) => m.e === 'listenKeyExpired');
    assert.ok(expired, `no listenKeyExpired in ${s.msgs.length} messages`);
    assert.equal(expired.listenKey, key);
    assert.equal(typeof expired.E, 'number');
    assert.equal(s.msgs.at(-1)!.e, 'listenKeyExpired', 'nothing after listenKeyExpired');
    const again = await open(`${ws2}/ws/${key}`);
    assert.ok('status' in again && again.status === 400);
    // A new POST gives a new key once the old one expired.
    const next = await call(http1, 'POST', KEY2);
    assert.notEqual(next.body.listenKey, key);
  });
});
