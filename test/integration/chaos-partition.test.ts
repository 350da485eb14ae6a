// Partitions through the chaos proxy between a WebSocket client and a real
// gateway (real router, server, feed, nats-server): a short "drop" cut stalls
// the subscription and then resumes it on the same connection with no
// sequence gap; a "reset" cut closes it, the client reconnects through the
// proxy, and sequence numbers show what it missed, covered by the snapshot it
// is resynced from. Needs no root: the proxy is userspace.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseProfileText } from '../../cli/lib/chaos/profile.ts';
import { applyProfile, type ActiveSession } from '../../cli/lib/chaos/session.ts';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';
import { contiguous, TestClient } from '../helpers/ws-client.ts';

// The 100 ms diff stream: ten events a second per symbol (@depth carries one a second, as on Binance).
const TOPIC = 'btcusdt@depth@100ms';

async function cluster(t: TestContext): Promise<TestCluster> {
  const c = await startCluster({ gateways: 1, symbols: 2, rate: 20 });
  t.after(() => c.stop());
  return c;
}

async function proxied(t: TestContext, c: TestCluster, yaml: string): Promise<{ session: ActiveSession; url: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pushctl-chaos-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const port = new URL(c.gateways[0]!.urls.ws!).port;
  const session = await applyProfile({
    dataDir,
    profile: parseProfileText(yaml, 'test-partition'),
    target: `tcp:127.0.0.1:${port}`,
    backend: 'auto',
    dryRun: false,
    ports: [],
    print: () => {},
  });
  t.after(() => session.revert());
  assert.equal(session.session.proxies.length, 1);
  return { session, url: `ws://${session.session.proxies[0]!.listen}` };
}

test('a 1.5 s drop partition stalls a depth subscription, which then resumes on the same connection without a gap', async (t) => {
  const c = await cluster(t);
  const { session, url } = await proxied(t, c, 'source: test\npartition: {mode: drop, schedule: {up: 1500ms, down: 1500ms}}\n');
  assert.deepEqual(session.plan.report.map((r) => [r.field, r.backend]), [['partition', 'proxy']]);
  const client = new TestClient(`${url}/stream?streams=${TOPIC}`);
  t.after(() => client.close());
  await client.opened;
  const arrivals: number[] = [];
  client.ws.on('message', () => arrivals.push(performance.now()));
  // Wait for the cut (a stall of over a second between two messages) and 20 messages after it.
  const stallEnd = () => arrivals.findIndex((a, i) => i > 0 && a - arrivals[i - 1]! > 1_000);
  await client
    .waitFor(() => stallEnd() > 0 && arrivals.length - stallEnd() >= 20, 20_000, 'a stall and 20 messages after it')
    .catch((err: Error) => {
      throw new Error(`${err.message}; ${arrivals.length} messages; proxy ${JSON.stringify(session.session.proxies)}`);
    });
  await session.revert();
  const seqs = client.seqs.get(TOPIC)!;
  assert.ok(contiguous(seqs), `no gap across the stall: ${seqs.join(',')}`);
  assert.equal(client.closeCode, undefined, 'the same connection survived');
  assert.equal(client.resyncs.length, 0);
});

test('a reset partition cuts the subscription; the client reconnects through the proxy and is resynced from a snapshot', async (t) => {
  const c = await cluster(t);
  const { session, url } = await proxied(t, c, 'source: test\npartition: {mode: reset, schedule: {up: 1500ms, down: 1s}}\n');
  // A client as an application writes one: reconnect with a short back-off, resubscribe, follow seq per connection.
  const connections: TestClient[] = [];
  let stopped = false;
  let refused = 0;
  const run = async () => {
    while (!stopped) {
      const cl = new TestClient(`${url}/stream?streams=${TOPIC}`);
      try {
        await cl.opened;
      } catch {
        refused++;
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      connections.push(cl);
      await cl.closed;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const loop = run();
  t.after(async () => {
    stopped = true;
    for (const cl of connections) cl.close();
    await loop;
  });
  // A connection lives 1.5 s between cuts: at ten diffs a second, 8 events show it resumed from the snapshot.
  await waitFor(() => connections.length >= 2 && (connections[1]!.seqs.get(TOPIC)?.length ?? 0) >= 8, 20_000, 'a reconnect and 8 events on it');
  stopped = true;
  await session.revert();
  const [before, after] = [connections[0]!, connections[1]!];
  assert.ok(before.closeCode !== undefined, 'the first connection was cut');
  const a = before.seqs.get(TOPIC)!;
  const b = after.seqs.get(TOPIC)!;
  assert.ok(contiguous(a), 'contiguous before the cut');
  assert.ok(contiguous(b), 'contiguous from the snapshot on');
  // The reconnect starts with a snapshot whose seq is past everything the first connection saw:
  // the client knows exactly how many diffs it missed, and the snapshot covers them.
  const snap = after.json.find((m) => (m.data ?? m).e === 'depthSnapshot');
  assert.ok(snap, 'a depth snapshot on reconnect');
  const missed = b[0]! - a.at(-1)!;
  assert.ok(missed >= 1, `the snapshot (seq ${b[0]}) is after the last seq seen (${a.at(-1)})`);
  t.diagnostic(`missed ${missed - 1} diffs during the cut, covered by the snapshot; reconnect attempts refused during the cut: ${refused}`);
  assert.ok(session.session.report.some((r) => r.field === 'partition' && r.backend === 'proxy'));
});
