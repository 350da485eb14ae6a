// Binance's WebSocket API (/ws-api/v3) on a real gateway, a real feed with
// simulated users and a real nats-server: ccxt.pro.binance, unchanged but for
// its URLs and an API key + secret from `ensureApiKey`, gets the user's own
// orders (watchOrders) and balances (watchBalance) — checked against the
// bus; then a client without the secrets tries its way in: a bad signature,
// an unknown key, a replayed (stale) request, another user's key on a signed
// request, and what one user's subscription carries of another user's data.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import ccxt from 'ccxt';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, DeliverPolicy } from '@nats-io/jetstream';
import { fromBinary } from '@bufbuild/protobuf';
import { OrderSchema } from '../../proto/gen/market_pb.js';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';
import { ORDERS_STREAM } from '../../system/gateway/orders.ts';
import { ensureApiKey, readApiKeys, writeApiKeys, type ApiKeyEntry } from '../../system/common/api-keys.ts';
import { hmacHex, signaturePayload } from '../../system/gateway/ws-api-sign.ts';

type Json = Record<string, any>;

/** A raw WS-API client: replies by id, events (with a subscriptionId) in order. */
async function wsApi(url: string) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const replies = new Map<string, Json>();
  const events: Json[] = [];
  ws.on('message', (d: Buffer) => {
    const m = JSON.parse(d.toString()) as Json;
    if ('event' in m) events.push(m);
    else replies.set(String(m.id), m);
  });
  ws.on('error', () => {});
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  let n = 0;
  const call = async (method: string, params?: Json): Promise<Json> => {
    const id = `r${++n}`;
    ws.send(JSON.stringify({ id, method, ...(params ? { params } : {}) }));
    await waitFor(() => replies.has(id), 10_000, `reply to ${method}`);
    return replies.get(id)!;
  };
  /** A frame that is not a request: its answer has id null. */
  const raw = async (text: string): Promise<Json> => {
    replies.delete('null');
    ws.send(text);
    await waitFor(() => replies.has('null'), 10_000, 'reply to a raw frame');
    return replies.get('null')!;
  };
  return { ws, call, raw, events };
}

const signed = (e: ApiKeyEntry, extra: Json = {}, secret = e.secret!) => {
  const p = { apiKey: e.apiKey, timestamp: Date.now(), recvWindow: 5_000, ...extra };
  return { ...p, signature: hmacHex(secret, signaturePayload(p)) };
};

describe('Binance WebSocket API (/ws-api/v3): user data', () => {
  let cluster: TestCluster;
  let dir: string;
  let keyFile: string;
  let nc: NatsConnection;
  let user1: ApiKeyEntry;
  let user2: ApiKeyEntry;
  let wsApiUrl: string;
  const orderIds = { user1: new Set<number>(), user2: new Set<number>() };
  /** Every free amount the bus published per user and asset. */
  const frees = { user1: new Map<string, Set<string>>(), user2: new Map<string, Set<string>>() };
  const clients: WebSocket[] = [];
  let ex: InstanceType<typeof ccxt.pro.binance> | undefined;
  /** Whose order an id is, by the bus (which our own consumer may read a moment after the gateway). */
  const ownerOf = async (id: number) => {
    await waitFor(() => orderIds.user1.has(id) || orderIds.user2.has(id), 10_000, `order ${id} on the bus`);
    return orderIds.user1.has(id) ? 'user1' : 'user2';
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mp-wsapi-'));
    const file = (keyFile = join(dir, 'api-keys.json'));
    user1 = ensureApiKey(file, 'user1').entry;
    user2 = ensureApiKey(file, 'user2').entry;
    cluster = await startCluster({ servers: 1, gateways: 1, symbols: 2, rate: 20, storeAuth: true, gateway: { apiKeysFile: file }, feed: { users: 2, orderRate: 5, seed: 7 } });
    wsApiUrl = `${cluster.gateways[0]!.urls.ws!}/ws-api/v3`;
    const s = cluster.secrets!;
    nc = await connect({ servers: cluster.nats.url, user: s.nats.gateway.user, pass: s.nats.gateway.password });
    const messages = await (await jetstream(nc).consumers.get(ORDERS_STREAM, { filter_subjects: 'orders.>', deliver_policy: DeliverPolicy.All })).consume();
    void (async () => {
      for await (const m of messages) {
        const o = fromBinary(OrderSchema, m.data);
        const u = o.user as 'user1' | 'user2';
        if (!(u in orderIds)) continue;
        if (o.orderId > 0n) orderIds[u].add(Number(o.orderId));
        for (const b of o.balances) {
          const seen = frees[u].get(b.asset) ?? new Set<string>();
          seen.add(b.free);
          frees[u].set(b.asset, seen);
        }
      }
    })();
  });
  after(async () => {
    for (const ws of clients) ws.terminate();
    await ex?.close();
    await nc?.close();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("ccxt watchOrders / watchBalance: the user's own orders and balances, as the bus has them", { timeout: 40_000 }, async () => {
    const binance = new ccxt.pro.binance({
      apiKey: user1.apiKey,
      secret: user1.secret!,
      options: { defaultType: 'spot', fetchMarkets: { types: ['spot'] }, fetchCurrencies: false, fetchMargins: false },
    });
    ex = binance;
    const api = binance.urls.api as Record<string, any>;
    const http = cluster.gateways[0]!.urls.http!;
    const ws = cluster.gateways[0]!.urls.ws!;
    api.public = `${http}/api/v3`;
    api.ws.spot = `${ws}/ws`;
    api.ws['ws-api'].spot = wsApiUrl;
    await binance.loadHttpProxyAgent();

    const seen = new Map<string, { status: string; symbol: string; filled: number }>();
    const balanceP = binance.watchBalance();
    // Until 3 orders and a fill (ccxt then folds trades and fees into the order).
    const enough = () => seen.size >= 3 && [...seen.values()].some((o) => o.filled > 0);
    for (let i = 0; i < 300 && !enough(); i++) {
      for (const o of await binance.watchOrders()) seen.set(String(o.id), { status: o.status!, symbol: o.symbol!, filled: o.filled ?? 0 });
    }
    assert.ok(enough(), `only ${JSON.stringify([...seen.values()])}`);
    for (const [id, o] of seen) {
      assert.equal(await ownerOf(Number(id)), 'user1', `order ${id}`);
      assert.match(o.symbol, /^[A-Z]+\/USDT$/);
      assert.ok(['open', 'closed', 'canceled', 'expired', 'rejected'].includes(o.status), o.status);
    }
    const balance = (await balanceP) as unknown as Record<string, { free?: number; used?: number; total?: number }>;
    const assets = Object.keys(balance).filter((a) => /^[A-Z]+$/.test(a) && typeof balance[a]?.free === 'number');
    assert.ok(assets.length > 0, `no asset in ${JSON.stringify(Object.keys(balance))}`);
    for (const a of assets) {
      const b = balance[a]!;
      const published = () => [...(frees.user1.get(a) ?? [])].some((f) => Number(f) === b.free);
      await waitFor(published, 10_000, `${a} free ${b.free} among user1's amounts on the bus`);
      assert.ok(Math.abs(b.total! - (b.free! + b.used!)) < 1e-9, `${a}: total ${b.total} ≠ free ${b.free} + used ${b.used}`);
    }
  });

  test('ping, time, session.logon → userDataStream.subscribe → unsubscribe; errors for the rest', { timeout: 30_000 }, async () => {
    const c = await wsApi(wsApiUrl);
    clients.push(c.ws);
    const ping = await c.call('ping');
    assert.deepEqual([ping.status, ping.result], [200, {}]);
    assert.equal(ping.rateLimits[0].rateLimitType, 'REQUEST_WEIGHT');
    const time = await c.call('v3/time');
    assert.equal(typeof time.result.serverTime, 'number');
    assert.equal((await c.call('order.place', { symbol: 'BTCUSDT' })).error.code, -1020, 'unknown methods are answered');
    assert.equal((await c.call('constructor')).error.code, -1020);
    assert.equal((await c.raw('{not json')).error.code, -1135);
    assert.equal((await c.call('userDataStream.subscribe')).error.code, -1002, 'subscribe needs a logon');
    const logon = await c.call('session.logon', signed(user2));
    assert.equal(logon.status, 200, JSON.stringify(logon));
    assert.equal(logon.result.apiKey, user2.apiKey);
    const sub = await c.call('userDataStream.subscribe');
    assert.equal(sub.result.subscriptionId, 0);
    assert.equal((await c.call('userDataStream.subscribe.signature', signed(user2))).error.code, -2035, 'one subscription per account and connection');
    assert.equal((await c.call('session.status')).result.userDataStream, true);
    await waitFor(() => c.events.some((e) => e.event.e === 'executionReport'), 20_000, "user2's events");
    for (const e of c.events) {
      assert.equal(e.subscriptionId, 0);
      if (e.event.e === 'executionReport') assert.equal(await ownerOf(e.event.i), 'user2', `order ${e.event.i} on user2's subscription`);
    }
    assert.equal((await c.call('userDataStream.unsubscribe', { subscriptionId: 5 })).error.code, -2036);
    assert.deepEqual((await c.call('userDataStream.unsubscribe', { subscriptionId: 0 })).result, {});
    assert.deepEqual(c.events.at(-1)!.event.e, 'eventStreamTerminated');
    assert.deepEqual((await c.call('session.subscriptions')).result, []);
  });

  test('no way in without the secret: bad signature, unknown key, replayed request, a key swapped into a signed request', { timeout: 20_000 }, async () => {
    const c = await wsApi(wsApiUrl);
    clients.push(c.ws);
    const fail = async (params: Json) => {
      const r = await c.call('userDataStream.subscribe.signature', params);
      assert.equal(r.result, undefined, `accepted: ${JSON.stringify(params)}`);
      return [r.status, r.error.code];
    };
    assert.deepEqual(await fail(signed(user1, {}, 'guessedSecret0000000000')), [400, -1022]);
    assert.deepEqual(await fail(signed({ ...user1, apiKey: 'unknownKey00000000000000' })), [401, -2015]);
    // A captured good request replayed 61 s later (the longest recvWindow is 60 s).
    assert.deepEqual(await fail(signed(user1, { timestamp: Date.now() - 61_000, recvWindow: 60_000 })), [400, -1021]);
    assert.deepEqual(await fail({ ...signed(user1), apiKey: user2.apiKey }), [400, -1022]);
    assert.deepEqual(await fail({ ...signed(user1), signature: undefined }), [400, -1102]);
    assert.deepEqual(await fail(signed(user1, { recvWindow: 70_000 })), [400, -1130]);
    assert.equal((await c.call('session.logon', signed(user1, {}, 'guessedSecret0000000000'))).error.code, -1022);
    assert.equal((await c.call('session.status')).result.apiKey, null);
    assert.deepEqual((await c.call('session.subscriptions')).result, []);
    // Nothing was subscribed: no events reach this connection while orders flow.
    const before = orderIds.user1.size + orderIds.user2.size;
    await waitFor(() => orderIds.user1.size + orderIds.user2.size > before + 4, 20_000, 'more orders on the bus');
    const ping = await c.call('ping');
    assert.equal(ping.status, 200);
    assert.deepEqual(c.events, []);
  });

  test("a key removed from the file loses its subscription and its logon: eventStreamTerminated, then -2015", { timeout: 20_000 }, async () => {
    const c = await wsApi(wsApiUrl);
    clients.push(c.ws);
    assert.equal((await c.call('session.logon', signed(user2))).status, 200);
    const sub = await c.call('userDataStream.subscribe.signature', signed(user2));
    assert.equal(sub.status, 200, JSON.stringify(sub));
    writeApiKeys(keyFile, readApiKeys(keyFile).filter((k) => k.user !== 'user2'));
    await waitFor(() => c.events.some((e) => e.event.e === 'eventStreamTerminated'), 10_000, 'eventStreamTerminated after the key was removed');
    assert.equal(c.events.at(-1)!.subscriptionId, sub.result.subscriptionId);
    assert.equal((await c.call('session.status')).result.apiKey, null, 'the logon is gone too');
    assert.deepEqual((await c.call('session.subscriptions')).result, []);
    assert.equal((await c.call('userDataStream.subscribe.signature', signed(user2))).error.code, -2015);
  });
});
