// What happens when things go wrong: slow clients, and roles killed or
// drained mid-stream, with real processes.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { adminHeaders, startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';
import { TestClient, contiguous, connectViaRouter } from '../helpers/ws-client.ts';

const socketOf = (c: TestClient) => (c.ws as unknown as { _socket: Socket })._socket;
const gatewayStats = async (admin: string) => (await (await fetch(`${admin}/stats`, { headers: adminHeaders() })).json()) as {
  counters: Record<string, number>;
  assignments: Record<string, number>;
  serverFailovers: number;
  connections: number;
};

describe('slow clients cost only themselves', () => {
  let cluster: TestCluster;
  const clients: TestClient[] = [];
  before(async () => {
    cluster = await startCluster({
      servers: 1,
      gateways: 1,
      symbols: 3,
      rate: 400,
      // Room for a busy test machine to stall the fast reader for seconds without it overflowing too.
      gateway: { sendQueueBytes: 512 * 1024, slowClientGraceMs: 60_000 },
    });
  });
  after(async () => {
    for (const c of clients) c.close();
    await cluster?.stop();
  });

  const everything = 'btcusdt@trade/btcusdt@depth/ethusdt@trade/ethusdt@depth/bnbusdt@trade/bnbusdt@depth/btcusdt@ticker';

  test('a client that stops reading is dropped to a resync while the others keep every message', async () => {
    const gw = cluster.gateways[0]!.urls;
    const fast = new TestClient(`${gw.ws}/stream?streams=btcusdt@trade/ethusdt@trade/btcusdt@ticker`);
    const slow = new TestClient(`${gw.ws}/stream?streams=${everything}`);
    clients.push(fast, slow);
    // Stop reading from the start, before TCP autotuning grows the receive window to tens of MB:
    // the kernel buffers fill, then the gateway's queue.
    slow.ws.once('open', () => socketOf(slow).pause());
    await Promise.all([fast.opened, slow.opened]);
    await waitFor(async () => ((await gatewayStats(gw.admin!)).counters.overflows ?? 0) >= 1, 30_000, 'the slow client to overflow its queue');
    const fastBefore = fast.seqs.get('btcusdt@trade')!.length;
    await fast.waitFor(() => fast.seqs.get('btcusdt@trade')!.length > fastBefore + 200, 10_000, 'fast client keeps receiving');
    socketOf(slow).resume();
    await slow.waitFor(() => slow.resyncs.length > 0, 30_000, 'a resync notice');
    const notice = slow.resyncs[0]!;
    assert.equal(notice.reason, 'slow_client');
    assert.ok(everything.split('/').includes(notice.stream as string));
    // After the notice the slow client gets fresh data again (a newer depth snapshot first).
    const at = slow.json.indexOf(notice);
    await slow.waitFor(() => (slow.snapshotAt.at(-1) ?? -1) > at, 10_000, 'a fresh snapshot');
    // The fast client was never told to resync and missed nothing.
    assert.equal(fast.resyncs.length, 0);
    for (const [topic, seqs] of fast.seqs) assert.ok(contiguous(seqs), `fast client ${topic} contiguous`);
    const stats = await gatewayStats(gw.admin!);
    assert.equal(stats.connections, 2, 'both clients are still connected');
  });

  test('a client reading far behind (its heartbeat answer comes back late) is disconnected with 4001', async () => {
    // A queue cap this large is never reached: only the heartbeat round trip can tell.
    const gw = await cluster.startGateway(3, { sendQueueBytes: 256 * 1024 * 1024, maxClientLagMs: 1_000, pingIntervalMs: 300, pongTimeoutMs: 60_000 });
    const lagging = new TestClient(`${gw.urls.ws}/stream?streams=${everything}`);
    clients.push(lagging);
    lagging.ws.once('open', () => socketOf(lagging).pause());
    await lagging.opened;
    await new Promise((r) => setTimeout(r, 2_500));
    socketOf(lagging).resume(); // it catches up and answers the queued pings, 2.5 s late
    await lagging.closed;
    assert.equal(lagging.closeCode, 4001);
    assert.match(lagging.closeReason, /ms behind/);
    const stats = await gatewayStats(gw.urls.admin!);
    assert.equal(stats.counters.lag_disconnects, 1);
    assert.equal(stats.counters.overflows ?? 0, 0, 'the byte cap never triggered');
  });

  test('a client stuck past the grace period is disconnected with 4001', async () => {
    const gw = await cluster.startGateway(2, { sendQueueBytes: 64 * 1024, slowClientGraceMs: 500, pingIntervalMs: 200, pongTimeoutMs: 60_000 });
    const stuck = new TestClient(`${gw.urls.ws}/stream?streams=${everything}`);
    clients.push(stuck);
    stuck.ws.once('open', () => socketOf(stuck).pause());
    await stuck.opened;
    await waitFor(async () => ((await gatewayStats(gw.urls.admin!)).counters.slow_disconnects ?? 0) >= 1, 30_000, 'a slow disconnect');
    socketOf(stuck).resume();
    await stuck.closed;
    assert.equal(stuck.closeCode, 4001);
  });
});

describe('failover: roles killed or drained mid-stream', () => {
  let cluster: TestCluster;
  const clients: TestClient[] = [];
  before(async () => {
    cluster = await startCluster({ servers: 2, gateways: 2, symbols: 3, rate: 50 });
  });
  after(async () => {
    for (const c of clients) c.close();
    await cluster?.stop();
  });

  const topics = ['btcusdt@trade', 'ethusdt@trade', 'bnbusdt@trade', 'btcusdt@depth', 'ethusdt@ticker', 'bnbusdt@kline_1m'];

  test('kill -9 of a push-server: its topics move to the other server and resume with no gap', async () => {
    const gw = cluster.gateways[0]!.urls;
    const c = new TestClient(`${gw.ws}/stream?streams=${topics.join('/')}`);
    clients.push(c);
    await c.opened;
    await c.waitFor(() => topics.every((t) => (c.seqs.get(t)?.length ?? 0) >= 3), 15_000, 'data on every topic');
    const before = await gatewayStats(gw.admin!);
    // Kill the server that serves most of this gateway's topics.
    const victimId = Object.entries(before.assignments).sort((a, b) => b[1] - a[1])[0]![0];
    const victim = cluster.servers.find((s) => s.id === victimId)!;
    const seen = new Map(topics.map((t) => [t, c.seqs.get(t)!.length]));
    await victim.kill('SIGKILL');
    await waitFor(async () => Object.keys((await gatewayStats(gw.admin!)).assignments).every((s) => s !== victimId), 10_000, 'topics moved off the dead server');
    await c.waitFor(() => topics.filter((t) => !t.includes('kline')).every((t) => c.seqs.get(t)!.length >= seen.get(t)! + 10), 20_000, 'data flowing again');
    const after = await gatewayStats(gw.admin!);
    assert.ok(after.serverFailovers >= 1, 'the gateway saw the link fail');
    for (const t of ['btcusdt@trade', 'ethusdt@trade', 'bnbusdt@trade', 'btcusdt@depth']) {
      assert.ok(contiguous(c.seqs.get(t)!), `${t}: no sequence gap across the failover (${c.seqs.get(t)!.join(',')})`);
    }
    assert.equal(c.resyncs.length, 0, 'nothing had to be resynced');
    await cluster.startServer(3); // keep two servers for the next test
  });

  test('kill -9 of a gateway: its clients get another gateway from the router and resubscribe', async () => {
    const path = '/stream?streams=btcusdt@trade/ethusdt@ticker';
    const c = await connectViaRouter(cluster.routerUrl, path);
    clients.push(c);
    await c.waitFor(() => (c.seqs.get('btcusdt@trade')?.length ?? 0) >= 3, 10_000, 'first data');
    const url = c.ws.url;
    const victim = cluster.gateways.find((g) => url.startsWith(g.urls.ws!))!;
    const lastSeq = c.seqs.get('btcusdt@trade')!.at(-1)!;
    await victim.kill('SIGKILL');
    await c.closed;
    // A real client backs off with jitter, then asks the router again; the dead gateway may still be listed.
    let again: TestClient | undefined;
    await waitFor(async () => {
      again = await connectViaRouter(cluster.routerUrl, path);
      return true;
    }, 15_000, 'a gateway from the router');
    clients.push(again!);
    assert.ok(!again!.ws.url.startsWith(victim.urls.ws!), 'connected to another gateway');
    await again!.waitFor(() => (again!.seqs.get('btcusdt@trade')?.length ?? 0) >= 3 && (again!.seqs.get('ethusdt@ticker')?.length ?? 0) >= 1, 10_000, 'data after reconnect');
    // Sequence numbers tell the client exactly what it missed while it was away.
    assert.ok(again!.seqs.get('btcusdt@trade')![0]! > lastSeq);
  });

  test('draining a server moves its topics without a gap; draining a gateway hands its clients over', async () => {
    const gw = cluster.gateways.find((g) => g.proc.exitCode === null && g.proc.signalCode === null)!.urls;
    const c = new TestClient(`${gw.ws}/stream?streams=${topics.join('/')}`);
    clients.push(c);
    await c.opened;
    await c.waitFor(() => topics.every((t) => (c.seqs.get(t)?.length ?? 0) >= 2), 15_000, 'data on every topic');
    const stats = await gatewayStats(gw.admin!);
    const busiest = Object.entries(stats.assignments).sort((a, b) => b[1] - a[1])[0]![0];
    const server = cluster.servers.find((s) => s.id === busiest)!;
    const drained = await fetch(`${server.urls.admin}/admin/drain`, { method: 'POST', headers: adminHeaders(), body: '{"draining":true}' });
    assert.equal(drained.status, 200);
    await waitFor(async () => !Object.keys((await gatewayStats(gw.admin!)).assignments).includes(busiest), 10_000, 'topics moved off the draining server');
    const seen = c.seqs.get('btcusdt@trade')!.length;
    await c.waitFor(() => c.seqs.get('btcusdt@trade')!.length >= seen + 10, 10_000, 'data after the move');
    for (const t of ['btcusdt@trade', 'ethusdt@trade', 'bnbusdt@trade', 'btcusdt@depth']) assert.ok(contiguous(c.seqs.get(t)!), `${t} has no gap`);

    // Gateway drain: its clients are closed with 4002 and the router stops offering it.
    const gwId = cluster.gateways.find((g) => g.urls.ws === gw.ws)!.id;
    const res = await fetch(`${gw.admin}/admin/drain`, { method: 'POST', headers: adminHeaders(), body: '{"draining":true}' });
    assert.equal(res.status, 200);
    await c.closed;
    assert.equal(c.closeCode, 4002);
    await waitFor(async () => {
      const list = (await (await fetch(`${cluster.routerUrl}/v1/gateways?protocol=ws`)).json()) as { gateways?: { id: string }[] };
      return !(list.gateways ?? []).some((g) => g.id === gwId);
    }, 5_000, 'the router to stop listing the draining gateway');
  });
});
