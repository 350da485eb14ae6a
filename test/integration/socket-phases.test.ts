// Deadlines and budgets at the gateway's edge, as an outsider would hit them:
// slowloris headers, a silent raw-TCP connection, a client that never reads,
// REST past its budget while streams keep flowing, tokens without exp.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { SignJWT } from 'jose';
import { adminJson, startCluster, waitFor, type TestCluster, type RoleProc } from '../helpers/cluster.ts';
import { TestClient } from '../helpers/ws-client.ts';

const secret = 'socket-phases-secret-0123456789ab';
const socketOf = (c: TestClient) => (c.ws as unknown as { _socket: Socket })._socket;
// Gateway figures are on its admin listener (operator token).
const counters = async (adminUrl: string) => (await adminJson<{ counters: Record<string, number> }>(`${adminUrl}/stats`)).counters;
const hostPort = (url: string) => {
  const u = new URL(url.includes('://') ? url : `tcp://${url}`);
  return { host: u.hostname, port: Number(u.port) };
};

/** Resolves when the peer closes the socket: the ms it took and everything it sent. */
const whenClosed = (s: Socket, since: number) =>
  new Promise<{ ms: number; text: string }>((resolve) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => {});
    s.once('close', () => resolve({ ms: Date.now() - since, text: Buffer.concat(chunks).toString('utf8') }));
  });

describe('socket phases, REST budget and tokens at the gateway edge', () => {
  let cluster: TestCluster;
  let gw: RoleProc;
  const clients: TestClient[] = [];
  const sockets: Socket[] = [];
  before(async () => {
    cluster = await startCluster({
      servers: 1,
      gateways: 0,
      symbols: 3,
      rate: 400,
    });
    gw = await cluster.startGateway(1, {
      httpHeadersTimeoutMs: 1_000,
      httpCheckIntervalMs: 200,
      tcpHelloTimeoutMs: 1_000,
      sendQueueBytes: 64 * 1024,
      slowClientGraceMs: 1_000,
      pongTimeoutMs: 60_000,
      restMaxInFlight: 1,
      restRetryAfterSec: 2,
      auth: { hs256Secret: secret },
    });
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const s of sockets) s.destroy();
    await cluster?.stop();
  });

  test('slowloris: headers sent a byte a second are cut at the header timeout with a 408, and counted', async () => {
    const { host, port } = hostPort(gw.urls.http!);
    const s = connect(port, host);
    sockets.push(s);
    const started = Date.now();
    const closed = whenClosed(s, started);
    const request = `GET /stream?streams=btcusdt@trade HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Slow: ${'a'.repeat(100)}\r\n\r\n`;
    let i = 0;
    const drip = setInterval(() => {
      if (!s.destroyed && i < request.length) s.write(request[i++]!);
    }, 1_000);
    try {
      const { ms, text } = await closed;
      assert.ok(ms < 10_000, `closed after ${ms} ms (Node's defaults: up to 90 s)`);
      assert.ok(i < request.length, 'the headers were never complete');
      assert.match(text, /^HTTP\/1.1 408 /);
      assert.doesNotMatch(text, /HPE_|Parse Error|at .*:\d+/);
    } finally {
      clearInterval(drip);
    }
    assert.ok(((await counters(gw.urls.admin!)).http_timeouts ?? 0) >= 1);
  });

  test('a raw-TCP connection that never says hello is cut at the hello timeout, and counted', async () => {
    const { host, port } = hostPort(gw.urls.tcp!);
    const s = connect(port, host);
    sockets.push(s);
    await new Promise<void>((r) => s.once('connect', () => r()));
    const { ms } = await whenClosed(s, Date.now());
    assert.ok(ms < 10_000, `closed after ${ms} ms (the idle timeout is 60 s)`);
    assert.ok(((await counters(gw.urls.admin!)).hello_timeouts ?? 0) >= 1);
  });

  test('a client that never reads is closed at the grace with 4001, however much the kernel buffers', async () => {
    const everything = 'btcusdt@trade/btcusdt@depth/ethusdt@trade/ethusdt@depth/bnbusdt@trade/bnbusdt@depth';
    const stuck = new TestClient(`${gw.urls.ws}/stream?streams=${everything}`);
    clients.push(stuck);
    stuck.ws.once('open', () => socketOf(stuck).pause());
    await stuck.opened;
    await waitFor(async () => ((await counters(gw.urls.admin!)).overflows ?? 0) >= 1, 30_000, 'the first overflow');
    const overflowSeen = Date.now();
    await waitFor(async () => ((await counters(gw.urls.admin!)).slow_disconnects ?? 0) >= 1, 30_000, 'a slow disconnect');
    const tookMs = Date.now() - overflowSeen;
    // Grace 1 s + one wheel tick (at most 1 s) + polling; it used to take the kernel buffers' fill time on top.
    assert.ok(tookMs < 6_000, `disconnected ${tookMs} ms after the first overflow`);
    socketOf(stuck).resume();
    await stuck.closed;
    assert.equal(stuck.closeCode, 4001);
  });

  test('REST past its budget gets 429 + Retry-After + Binance -1003, and streams keep flowing', async () => {
    const live = new TestClient(`${gw.urls.ws}/stream?streams=btcusdt@trade`);
    clients.push(live);
    await live.opened;
    await live.waitFor(() => (live.seqs.get('btcusdt@trade')?.length ?? 0) >= 5, 10_000, 'first trades');
    const answers = await Promise.all(
      Array.from({ length: 30 }, async () => {
        const r = await fetch(`${gw.urls.http}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=500`);
        return { status: r.status, retryAfter: r.headers.get('retry-after'), body: (await r.json()) as { code?: number; msg?: string } };
      }),
    );
    const refused = answers.filter((a) => a.status === 429);
    assert.ok(refused.length >= 1, `statuses: ${answers.map((a) => a.status).join(',')}`);
    assert.ok(answers.some((a) => a.status !== 429), 'the budget still serves one at a time');
    for (const a of refused) {
      assert.equal(a.retryAfter, '2');
      assert.equal(a.body.code, -1003);
      assert.match(a.body.msg!, /Too many requests/);
    }
    const restStats = (await adminJson<{ rest: { refused: number } }>(`${gw.urls.admin}/stats`)).rest;
    assert.ok(restStats.refused >= refused.length, 'refusals are counted in /stats');
    const seen = live.seqs.get('btcusdt@trade')!.length;
    await live.waitFor(() => live.seqs.get('btcusdt@trade')!.length >= seen + 20, 10_000, 'trades keep flowing');
    // Once the burst is over, the budget is free again.
    const again = await fetch(`${gw.urls.http}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=5`);
    await again.arrayBuffer();
    assert.notEqual(again.status, 429);
  });

  test('a token without exp is refused with a clean 401; a garbage token too; allowNoExp accepts it', async () => {
    const noExp = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('erin').sign(new TextEncoder().encode(secret));
    // A raw upgrade request: the refusal's status and body as the client gets them.
    const upgrade = async (base: string, token: string) => {
      const { host, port } = hostPort(base);
      const s = connect(port, host);
      sockets.push(s);
      const closed = whenClosed(s, Date.now());
      s.write(
        `GET /ws/btcusdt@trade?token=${encodeURIComponent(token)} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
      );
      const { text } = await closed;
      return { status: Number(/^HTTP\/1.1 (\d+)/.exec(text)?.[1]), text: text.slice(text.indexOf('\r\n\r\n') + 4) };
    };
    const refused = await upgrade(gw.urls.ws!, noExp);
    assert.equal(refused.status, 401);
    assert.equal(JSON.parse(refused.text).error.msg, 'Unauthorized: the token has no expiry (exp)');
    for (const garbage of ['garbage', 'eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln', 'eyJhbGci.e30.x']) {
      const r = await upgrade(gw.urls.ws!, garbage);
      assert.equal(r.status, 401);
      assert.doesNotMatch(r.text, /JSON|Unexpected token|position \d|at .*:\d+/, r.text);
    }
    const lenient = await cluster.startGateway(2, { auth: { hs256Secret: secret, allowNoExp: true } });
    const c = new TestClient(`${lenient.urls.ws}/ws/btcusdt@trade?token=${noExp}`);
    clients.push(c);
    await c.opened;
    await c.waitFor(() => (c.seqs.get('btcusdt@trade')?.length ?? 0) >= 1, 10_000, 'data for the accepted token');
  });
});
