// Issue 12, zero loss at scale, counted from the client side: 100 users ×
// 10,000 order events each published to JetStream at a steady rate while,
// one after another, a gateway is killed -9, a push-server is killed -9,
// nats-server is killed -9 and restarted on its port and store, one gateway's
// client port is partitioned for 10 s (nftables reset) and a few clients go
// away for 30 s and resume from their last ack. Every user receives exactly
// the published sequence (complete, in order, once), and every order stream
// delivers again within 5 s of the bus being back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { create, toBinary } from '@bufbuild/protobuf';
import { connect } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { OrderSchema } from '../../proto/gen/market_pb.js';
import { startCluster, waitFor } from '../helpers/cluster.ts';
import type { RestartableNats } from '../helpers/servers.ts';
import { OrderClient } from '../helpers/order-client.ts';
import { ensureOrdersStream, orderSubject } from '../../system/gateway/orders.ts';
import { resolveProfile } from '../../cli/lib/chaos/profile.ts';
import { applyProfile } from '../../cli/lib/chaos/session.ts';

const USERS = 100;
const EVENTS = 10_000;
/** Events per second per user offered: 100 users × 100/s = 10,000 events/s; a busy 2-core machine confirms 3–5k/s. */
const PER_USER_RATE = 100;
const MAX_IN_FLIGHT = 2_000;
const TICK_MS = 20;
const SECRET = 'zero-loss-test-secret-0123456789abcdef';
const key = new TextEncoder().encode(SECRET);
const token = (sub: string) =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) + 3600).sign(key);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const userName = (u: number) => `zl-${u}`;

/**
 * Publishes every user's events at a steady rate, many in flight at once (at
 * most MAX_IN_FLIGHT). A publish the bus did not confirm is retried with the
 * same msgID until it is: JetStream dedupes it and confirms the stored seq.
 * In flight together, a user's events may be stored in another order than
 * their index: the truth is what JetStream confirmed, (user, n) → seq.
 */
class Publisher {
  /** Stream seq JetStream confirmed for (user, n), at u * EVENTS + n. */
  readonly seqs = new Float64Array(USERS * EVENTS);
  /** Events issued so far, round by round: event n of every user, then n + 1. */
  issued = 0;
  confirmed = 0;
  retries = 0;
  inFlight = 0;
  #stop = false;
  #done: Promise<void> | undefined;
  #pending = new Set<Promise<void>>();
  #js: JetStreamClient;
  constructor(js: JetStreamClient) {
    this.#js = js;
  }
  start(): void {
    this.#done = this.#run();
  }
  async #run(): Promise<void> {
    const t0 = performance.now();
    while (!this.#stop && this.issued < USERS * EVENTS) {
      const due = Math.min(USERS * EVENTS, Math.floor(((performance.now() - t0) / 1000) * PER_USER_RATE * USERS));
      while (this.issued < due && this.inFlight < MAX_IN_FLIGHT) {
        const u = this.issued % USERS;
        const n = Math.floor(this.issued / USERS);
        this.issued++;
        const p = this.#publish(u, n);
        this.#pending.add(p);
        void p.then(() => this.#pending.delete(p));
      }
      await sleep(TICK_MS);
    }
    await Promise.all(this.#pending);
  }
  async #publish(u: number, n: number): Promise<void> {
    this.inFlight++;
    const user = userName(u);
    const bytes = toBinary(OrderSchema, create(OrderSchema, { user, id: `${user}-${n}`, symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', status: 'NEW', price: '1', qty: '1', filledQty: '0', updateTime: BigInt(Date.now()) }));
    try {
      while (!this.#stop) {
        try {
          const ack = await this.#js.publish(orderSubject(user), bytes, { msgID: `${user}-${n}`, timeout: 2_000 });
          this.seqs[u * EVENTS + n] = ack.seq;
          this.confirmed++;
          return;
        } catch {
          this.retries++;
          await sleep(100); // the bus is down or busy: the same event again
        }
      }
    } finally {
      this.inFlight--;
    }
  }
  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
  }
}

test('100 users × 10,000 order events through gateway, server and bus kill -9, a 10 s partition and a 30 s client absence: every user exactly the published sequence; streams back within 5 s of the bus', { timeout: 900_000 }, async (t) => {
  const started = performance.now();
  const cluster = await startCluster({
    servers: 2,
    gateways: 2,
    symbols: 2,
    rate: 5,
    restartableNats: true,
    gateway: { auth: { hs256Secret: SECRET }, pingIntervalMs: 1_000 },
  });
  // Undone in reverse order of creation: clients and publisher, the partition, the bus connection, the cluster.
  const undo: Array<() => unknown> = [() => cluster.stop()];
  t.after(async () => {
    const errors: unknown[] = [];
    for (const f of undo.reverse()) await Promise.resolve().then(f).catch((e: unknown) => errors.push(e));
    if (errors.length) throw new AggregateError(errors, 'cleanup failed');
  });
  const nats = cluster.nats as RestartableNats;
  const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  undo.push(() => nc.close());
  await ensureOrdersStream(nc);

  // Client-side counting, cheap: per user the events received and the last seq; per (user, n) the seq it came with.
  const count = new Int32Array(USERS);
  const lastSeq = new Float64Array(USERS);
  const received = new Float64Array(USERS * EVENTS);
  const mismatches: string[] = [];
  const mismatch = (m: string) => void (mismatches.length < 10 && mismatches.push(m));
  let recoveryMark = -1; // events with a higher index than this were first published after the bus crash
  let busBackAt = 0;
  // Per user: ms from nats-server ready again to the first order event delivered (the gateway's recovery), and to
  // the first event published after the crash (end to end, the publisher's own reconnect and retries included).
  const recoveryMs = new Float64Array(USERS).fill(-1);
  const endToEndMs = new Float64Array(USERS).fill(-1);
  const total = () => count.reduce((a, b) => a + b, 0);
  const clients = Array.from({ length: USERS }, (_, u) => new OrderClient({
    router: cluster.routerUrl,
    user: userName(u),
    token,
    maxAttempts: 300,
    onOrder: (seq, id) => {
      const n = Number(id.slice(id.lastIndexOf('-') + 1));
      if (!id.startsWith(`${userName(u)}-`) || !(n >= 0 && n < EVENTS)) return mismatch(`${userName(u)}: got ${id} (seq ${seq}), not one of this user's events`);
      if (seq <= lastSeq[u]!) return mismatch(`${userName(u)}: got ${id} with seq ${seq} after seq ${lastSeq[u]} (out of order or a duplicate)`);
      if (received[u * EVENTS + n] !== 0) return mismatch(`${userName(u)}: got ${id} twice (seqs ${received[u * EVENTS + n]} and ${seq})`);
      received[u * EVENTS + n] = seq;
      lastSeq[u] = seq;
      count[u]++;
      if (busBackAt > 0 && recoveryMs[u]! < 0) recoveryMs[u] = performance.now() - busBackAt;
      if (busBackAt > 0 && endToEndMs[u]! < 0 && n > recoveryMark) endToEndMs[u] = performance.now() - busBackAt;
    },
  }));
  undo.push(() => clients.forEach((c) => c.stop()));
  await Promise.all(clients.map((c) => c.start()));

  const publisher = new Publisher(jetstream(nc));
  undo.push(() => publisher.stop());
  publisher.start();
  const log = (what: string) => t.diagnostic(`${((performance.now() - started) / 1000).toFixed(1)} s: ${what} (confirmed ${publisher.confirmed}, received ${total()}, publish retries ${publisher.retries}, in flight ${publisher.inFlight})`);
  log('cluster up, publishing');

  // 1. kill -9 of a gateway, and a replacement started.
  await sleep(8_000);
  const [gw1] = cluster.gateways;
  await gw1!.kill('SIGKILL');
  log('gateway-1 killed -9');
  const gw3 = cluster.startGateway(3);
  await sleep(10_000);
  await gw3;

  // 2. kill -9 of a push-server, and a replacement started.
  await cluster.servers[0]!.kill('SIGKILL');
  log('server-1 killed -9');
  await cluster.startServer(3);
  await sleep(8_000);

  // 3. kill -9 of nats-server, restarted 2 s later on the same port and store.
  await nats.crash();
  // Issued round by round: an index above the current round is published after the crash.
  recoveryMark = Math.floor(publisher.issued / USERS);
  log('nats-server killed -9');
  await sleep(2_000);
  await nats.restart();
  busBackAt = performance.now();
  log('nats-server back');
  // Asserted at the end, with the distribution: here only wait (bounded) for the streams to come back.
  await waitFor(() => endToEndMs.every((ms) => ms >= 0), 60_000).then(() => log('every order stream delivering again'), () => log('some order streams still silent 60 s after the bus came back'));
  await sleep(8_000);

  // 4. a 10 s partition (connections reset, new ones refused) of the gateway's client port that has the clients now.
  const victim = cluster.gateways.find((g) => g.id === 'gateway-2')!;
  const dataDir = mkdtempSync(join(tmpdir(), 'zl-chaos-'));
  undo.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const port = new URL(victim.urls.ws!).port;
  const cut = await applyProfile({ dataDir, profile: resolveProfile('partition-reset'), target: `tcp:127.0.0.1:${port}`, iface: 'lo', backend: 'nft', dryRun: false, ports: [], print: () => {} });
  let healed = false;
  undo.push(() => (healed ? undefined : cut.revert()));
  log(`gateway-2 client port ${port} partitioned`);
  await sleep(10_000);
  await cut.revert();
  healed = true;
  log('partition healed');
  await sleep(6_000);

  // 5. five clients go away for 30 s and resume from their last ack.
  const away = [0, 1, 2, 3, 4].map((u) => clients[u * 20]!);
  await Promise.all(away.map((c) => c.pause()));
  log(`${away.length} clients closed for 30 s`);
  await sleep(30_000);
  await Promise.all(away.map((c) => c.resume()));
  log('they resumed from their last ack');

  await waitFor(() => publisher.confirmed === USERS * EVENTS, 480_000, 'every event published');
  log('every event published');
  const complete = await waitFor(() => count.every((n) => n === EVENTS) || mismatches.length > 0, 120_000).then(() => true, () => false);
  await sleep(1_000); // a duplicate would arrive now
  log(complete ? 'every event received' : 'still missing events after 120 s');

  assert.deepEqual(mismatches, [], 'every user: complete, in order, no duplicate');
  const short = [...count.keys()].filter((u) => count[u] !== EVENTS);
  const firstMissing = (u: number) => received.subarray(u * EVENTS, (u + 1) * EVENTS).indexOf(0);
  assert.deepEqual(short.slice(0, 5).map((u) => `${userName(u)}: ${count[u]} of ${EVENTS}, first missing event ${firstMissing(u)}`), [], 'every user has every event');
  for (let u = 0; u < USERS; u++) {
    for (let n = 0; n < EVENTS; n++) {
      const got = received[u * EVENTS + n];
      const sent = publisher.seqs[u * EVENTS + n];
      if (got !== sent) assert.fail(`${userName(u)} event ${n}: received stream seq ${got}, JetStream confirmed ${sent}`);
    }
  }
  assert.ok(clients.filter((c) => c.reconnects > 0).length >= 50, 'the kills and the partition moved clients');

  const dist = (a: Float64Array) => {
    const sorted = Array.from(a).sort((x, y) => x - y);
    const pct = (p: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!);
    return `min ${pct(0)} p50 ${pct(50)} p90 ${pct(90)} p99 ${pct(99)} max ${pct(100)}`;
  };
  t.diagnostic(`recovery after the bus restart, ms per user, nats-server ready → first order event delivered: ${dist(recoveryMs)}`);
  t.diagnostic(`… → first order event published after the crash (publisher's reconnect included): ${dist(endToEndMs)}`);
  t.diagnostic(`duration ${((performance.now() - started) / 1000).toFixed(1)} s; reconnects ${clients.reduce((a, c) => a + c.reconnects, 0)}; publish retries ${publisher.retries}`);
  for (let u = 0; u < USERS; u++) {
    assert.ok(recoveryMs[u]! >= 0 && recoveryMs[u]! <= 5_000, `${userName(u)}: order stream delivering ${Math.round(recoveryMs[u]!)} ms after the bus was back (promise: ≤ 5 s)`);
    assert.ok(endToEndMs[u]! >= 0 && endToEndMs[u]! <= 5_000, `${userName(u)}: first order published after the crash delivered ${Math.round(endToEndMs[u]!)} ms after the bus was back (promise: ≤ 5 s)`);
  }
});
