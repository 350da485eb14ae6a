// The bundled private-orders scenario, scaled down, against a real `pushctl up
// --auth hs256 --users 2` (nats-server with JetStream, the order-flow
// simulator): the bench mints the users' tokens from the cluster's key, 2
// users × 5 connections follow their order streams and ack, and the report
// has order events with latency figures, answered acks, and no duplicates or gaps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushctl } from '../helpers/pushctl.ts';
import type { PrivateFigures } from '../../cli/lib/bench/private-run.ts';

const SMALL = ['--port-base', '0', '--servers', '1', '--gateways', '1', '--symbols', '2', '--rate', '5'];

test('pushctl bench private-orders (2 users × 5 connections) against pushctl up --auth hs256 --users 2', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-bench-private-'));
  t.after(async () => {
    if (existsSync(join(dir, 'cluster.json'))) await pushctl(['down', '--data-dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const up = await pushctl(['up', '--detach', '--json', ...SMALL, '--auth', 'hs256', '--users', '2', '--order-rate', '20', '--data-dir', dir], { timeoutMs: 150_000 });
  assert.equal(up.code, 0, `up failed:\n${up.out}`);

  const r = await pushctl(
    ['bench', 'private-orders', '--users', '2', '--per-user', '5', '--duration', '6s', '--data-dir', dir, '--no-dashboard', '--json', '--out', join(dir, 'reports')],
    { timeoutMs: 90_000 },
  );
  assert.equal(r.code, 0, `bench failed:\n${r.out}`);
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    report: string;
    results: { latencyMs: { count: number; p50Ms: number; p99Ms: number }; counters: { errors: number; gaps: number } };
    private: PrivateFigures;
  };
  const p = summary.private;
  assert.equal(p.connections, 10);
  assert.equal(p.opened, 10);
  assert.equal(p.subscribed, 10);
  assert.ok(p.connectRate > 0, `connect rate ${p.connectRate}`);
  assert.ok(p.orders > 0, 'no order events received');
  assert.ok(summary.results.latencyMs.count > 0, 'no order latency samples');
  assert.ok(summary.results.latencyMs.p99Ms >= summary.results.latencyMs.p50Ms);
  assert.equal(p.duplicates, 0);
  assert.equal(p.gaps, 0);
  assert.ok(p.fromBus.count > 0 && p.fromBus.p50Ms <= summary.results.latencyMs.p99Ms, 'no bus latency samples');
  assert.equal(summary.results.counters.gaps, 0);
  assert.equal(summary.results.counters.errors, 0);
  assert.ok(p.ackReplies > 0 && p.ackRtt.count === p.ackReplies, `acks: ${p.ackReplies} answered, ${p.ackRtt.count} timed`);
  assert.deepEqual(Object.keys(p.byUser).sort(), ['user1', 'user2']);
  for (const [u, f] of Object.entries(p.byUser)) assert.ok(f.events > 0 && f.duplicates === 0 && f.gaps === 0, `${u}: ${JSON.stringify(f)}`);
  assert.ok(p.memory && p.memory.connections > 0, 'no gateway memory sample');
  // The report files say the same.
  const onDisk = JSON.parse(readFileSync(join(summary.report, 'summary.json'), 'utf8')) as { private: PrivateFigures };
  assert.equal(onDisk.private.orders, p.orders);
  assert.match(readFileSync(join(summary.report, 'report.html'), 'utf8'), /Private order streams/);
});
