// The feed role as its own process on a real nats-server: what reaches the
// bus, live rate changes over the admin API, and a clean stop on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { fromBinary } from '@bufbuild/protobuf';
import { connect } from '@nats-io/transport-node';
import { EventSchema, type Event } from '../../proto/gen/market_pb.js';
import { subjectTopic, symbolTopics } from '../../system/common/topics.ts';
import { startNats } from '../helpers/servers.ts';
import { adminHeaders, testSecrets } from '../helpers/cluster.ts';

const MAIN = fileURLToPath(new URL('../../system/feed/main.ts', import.meta.url));

interface Received {
  subject: string;
  event: Event;
  atUs: number;
}

function waitForReady(proc: ChildProcess, timeoutMs = 15_000): Promise<{ urls: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout! });
    const timer = setTimeout(() => reject(new Error('feed did not become ready')), timeoutMs);
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line) as { urls: Record<string, string> });
      } catch (err) {
        reject(err as Error);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`feed exited early with ${code}`));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('feed process publishes sequenced events on md.> and follows live rate changes', async (t) => {
  const nats = await startNats();
  t.after(() => nats.stop());
  const nc = await connect({ servers: nats.url });
  t.after(() => nc.close());

  const received: Received[] = [];
  const sub = nc.subscribe('md.>', {
    callback: (err, msg) => {
      if (err) throw err;
      received.push({ subject: msg.subject, event: fromBinary(EventSchema, msg.data), atUs: Date.now() * 1000 });
    },
  });
  await nc.flush();

  const config = {
    id: 'feed-it',
    nats: nats.url,
    adminPort: 0,
    symbols: 3,
    rate: 50,
    tickerMs: 250,
    klineMs: 250,
    depthSnapshotMs: 250,
    depthLevels: 10,
    seed: 7,
    routers: [],
    secretsFile: testSecrets().file,
  };
  const feed = spawn(process.execPath, [MAIN, '--config', JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  feed.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => feed.once('exit', (code) => resolve(code)));
  t.after(async () => {
    if (feed.exitCode === null && feed.signalCode === null) {
      feed.kill('SIGKILL');
      await exited;
    }
  });

  const ready = await waitForReady(feed);
  const admin = ready.urls.admin!;
  assert.match(admin, /^http:\/\/127\.0\.0\.1:\d+$/);
  const health = (await (await fetch(`${admin}/healthz`)).json()) as { ok: boolean };
  assert.equal(health.ok, true);

  await sleep(1500);
  const changedAtUs = Date.now() * 1000;
  const res = await fetch(`${admin}/admin/config`, { method: 'POST', headers: adminHeaders(), body: JSON.stringify({ rate: 200 }) });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true, rate: 200 });
  const bad = await fetch(`${admin}/admin/config`, { method: 'POST', headers: adminHeaders(), body: JSON.stringify({ rate: 'fast' }) });
  assert.equal(bad.status, 400);
  const unknown = await fetch(`${admin}/admin/config`, { method: 'POST', headers: adminHeaders(), body: JSON.stringify({ rate: 5, symbols: 9 }) });
  assert.equal(unknown.status, 400, 'an unknown field is refused, not ignored');
  assert.equal((await fetch(`${admin}/admin/config`, { method: 'POST', body: JSON.stringify({ rate: 1 }) })).status, 401, 'no token, no change');
  assert.equal(bad.status, 400);
  await sleep(1500);

  const stats = (await (await fetch(`${admin}/stats`, { headers: adminHeaders() })).json()) as Record<string, number>;
  assert.equal(stats.rate, 200);
  assert.equal(stats.symbols, 3);
  assert.ok(stats.eventsPublished > 0);
  assert.equal(typeof stats.lagMs, 'number');
  const drain = await fetch(`${admin}/admin/drain`, { method: 'POST', headers: adminHeaders() });
  assert.equal(drain.status, 200);

  feed.kill('SIGTERM');
  assert.equal(await exited, 0, `feed exit code; stderr:\n${stderr}`);
  await nc.flush();
  sub.unsubscribe();

  // Subjects and topics agree; every topic of every symbol showed up.
  assert.ok(received.length > 500, `only ${received.length} events received`);
  const topics = new Set<string>();
  const lastSeq = new Map<string, bigint>();
  const epochs = new Set<bigint>();
  for (const { subject, event, atUs } of received) {
    epochs.add(event.epoch);
    if (event.payload.case === 'depthSnapshot') {
      assert.equal(subject, `md.depthsnap.${event.topic.slice(0, event.topic.indexOf('@'))}`);
    } else {
      assert.equal(subjectTopic(subject), event.topic);
      topics.add(event.topic);
      // Subscribed before the feed started: every topic runs 1, 2, 3, … with no gaps.
      assert.equal(event.seq, (lastSeq.get(event.topic) ?? 0n) + 1n, `seq on ${event.topic}`);
      lastSeq.set(event.topic, event.seq);
    }
    // Intended publish time: never after receipt, and close to it.
    const pub = Number(event.publishTimeUs);
    assert.ok(pub <= atUs + 1000, `${event.topic} published in the future by ${pub - atUs} µs`);
    assert.ok(atUs - pub < 5_000_000, `${event.topic} arrived ${(atUs - pub) / 1000} ms after its intended time`);
  }
  assert.equal(epochs.size, 1);
  assert.equal([...epochs][0], BigInt(stats.epoch!));
  const symbols = ['btcusdt', 'ethusdt', 'bnbusdt'];
  assert.deepEqual([...topics].sort(), symbols.flatMap(symbolTopics).sort());

  // The rate change shows in the trades: count them per second of intended time.
  const trades = received.filter((r) => r.event.payload.case === 'trade').map((r) => Number(r.event.publishTimeUs));
  const perSec = (fromUs: number) => trades.filter((us) => us >= fromUs && us < fromUs + 1_000_000).length / symbols.length;
  const lastTradeUs = Math.max(...trades);
  const before = perSec(changedAtUs - 1_100_000);
  const after = perSec(lastTradeUs - 1_000_000);
  assert.ok(Math.abs(before - 50) <= 2, `${before} trades/s per symbol before the change`);
  assert.ok(Math.abs(after - 200) <= 2, `${after} trades/s per symbol after the change`);
});

test('the feed refuses to start without a bus', async () => {
  const { startFeed } = await import('../../system/feed/feed.ts');
  const { defaults } = await import('../../system/common/config.ts');
  const { createLogger } = await import('../../system/common/logger.ts');
  const log = createLogger('feed-test');
  await assert.rejects(startFeed({ ...defaults.feed(), adminPort: 0 }, { log }), /needs a bus/);
});

test('embedded: the feed publishes on an in-memory bus and stops cleanly', async () => {
  const { startFeed } = await import('../../system/feed/feed.ts');
  const { defaults } = await import('../../system/common/config.ts');
  const { createLogger } = await import('../../system/common/logger.ts');
  const { MemoryBus } = await import('../../system/common/bus.ts');
  const bus = new MemoryBus();
  const subjects = new Set<string>();
  bus.subscribe('md.>', (subject, data) => {
    subjects.add(subject);
    assert.equal(fromBinary(EventSchema, data).topic.split('@')[0], subject.split('.')[2]);
  });
  const handle = await startFeed(
    { ...defaults.feed(), adminPort: 0, symbols: ['solusdt'], rate: 100, tickerMs: 100, klineMs: 100, depthSnapshotMs: 100 },
    { log: createLogger('feed-embedded'), bus },
  );
  try {
    await sleep(400);
    const symbols = (await (await fetch(`${handle.urls.admin}/symbols`)).json()) as { symbols: Array<{ symbol: string; tickSize: string }> };
    assert.deepEqual(symbols.symbols.map((s) => [s.symbol, s.tickSize]), [['SOLUSDT', '0.01']]);
  } finally {
    await handle.stop();
    await bus.close();
  }
  assert.ok(subjects.has('md.trade.solusdt') && subjects.has('md.depthsnap.solusdt') && subjects.has('md.kline_1m.solusdt'), [...subjects].join(' '));
  await assert.rejects(fetch(`${handle.urls.admin}/healthz`), 'admin port closed after stop');
});

test('silent: the feed publishes nothing, while the same feed not silent publishes at once; its admin API still answers', async () => {
  const { startFeed } = await import('../../system/feed/feed.ts');
  const { defaults } = await import('../../system/common/config.ts');
  const { createLogger } = await import('../../system/common/logger.ts');
  const { MemoryBus } = await import('../../system/common/bus.ts');
  const [quietBus, loudBus] = [new MemoryBus(), new MemoryBus()];
  let quiet = 0;
  let loud = 0;
  quietBus.subscribe('>', () => void quiet++);
  loudBus.subscribe('>', () => void loud++);
  const cfg = { ...defaults.feed(), adminPort: 0, symbols: 2, rate: 0, tickerMs: 50, klineMs: 50, depthSnapshotMs: 100 };
  const silent = await startFeed({ ...cfg, silent: true }, { log: createLogger('feed-silent'), bus: quietBus });
  const plain = await startFeed(cfg, { log: createLogger('feed-plain'), bus: loudBus });
  try {
    // Rate 0 alone still sends tickers, klines and snapshots: the plain feed is the control.
    for (let i = 0; i < 200 && loud < 50; i++) await sleep(20);
    assert.ok(loud >= 50, `the plain feed published only ${loud} events`);
    assert.equal(quiet, 0, 'the silent feed published');
    assert.equal((await fetch(`${silent.urls.admin}/healthz`)).status, 200);
  } finally {
    await silent.stop();
    await plain.stop();
    await quietBus.close();
    await loudBus.close();
  }
});

test('publishIntervalMs: events due between turns go out together and keep their own intended times', async () => {
  const { startFeed } = await import('../../system/feed/feed.ts');
  const { defaults } = await import('../../system/common/config.ts');
  const { createLogger } = await import('../../system/common/logger.ts');
  const { MemoryBus } = await import('../../system/common/bus.ts');
  const bus = new MemoryBus();
  const arrivals: Array<{ atMs: number; ptUs: number }> = [];
  bus.subscribe('md.trade.>', (_subject, data) => {
    arrivals.push({ atMs: performance.now(), ptUs: Number(fromBinary(EventSchema, data).publishTimeUs) });
  });
  const handle = await startFeed(
    { ...defaults.feed(), adminPort: 0, symbols: 3, rate: 200, publishIntervalMs: 100 },
    { log: createLogger('feed-batched'), bus },
  );
  const startedMs = performance.now();
  try {
    await sleep(1_000);
  } finally {
    await handle.stop();
    await bus.close();
  }
  const elapsedMs = performance.now() - startedMs;
  assert.ok(arrivals.length >= 300, `only ${arrivals.length} trades`);
  // Bursts: arrivals more than 20 ms apart belong to different publish turns.
  const bursts: Array<typeof arrivals> = [];
  for (const a of arrivals) {
    const last = bursts.at(-1);
    if (last && a.atMs - last.at(-1)!.atMs <= 20) last.push(a);
    else bursts.push([a]);
  }
  // At 600 trades/s a turn per millisecond would make hundreds of bursts; one per 100 ms makes about ten.
  assert.ok(bursts.length <= Math.ceil(elapsedMs / 100) + 2 && bursts.length >= 4, `${bursts.length} bursts in ${Math.round(elapsedMs)} ms`);
  // A full burst spans most of the interval in intended time (each trade keeps its own pt), and no more than a late turn would.
  const spansMs = bursts.map((b) => (Math.max(...b.map((a) => a.ptUs)) - Math.min(...b.map((a) => a.ptUs))) / 1000);
  assert.ok(Math.max(...spansMs) >= 50 && Math.max(...spansMs) <= 400, `burst spans ${spansMs.map(Math.round).join(', ')} ms of intended time`);
  // Sequence order within a topic is unchanged by batching (checked by pt order per burst).
  for (const b of bursts) for (let i = 1; i < b.length; i++) assert.ok(b[i]!.ptUs >= b[i - 1]!.ptUs, 'events leave in intended-time order');
});
