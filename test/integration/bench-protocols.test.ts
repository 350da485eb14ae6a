// pushctl bench agents on gRPC (PushService.Stream) and gRPC-web
// (Subscribe + Update) against a real cluster: sessions connect through the
// router, subscribe and unsubscribe mid-run, answer heartbeats, are refused
// by admission control and retry, and reconnect through the router when
// their gateway is killed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adminHeaders, adminJson, startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';
import { runBench, type Outcome } from '../../cli/lib/bench/controller.ts';
import { recordTap } from '../../cli/lib/bench/recorder.ts';
import { parseCapture, type Scenario, type WireFormat } from '../../cli/lib/bench/scenario.ts';

const scenario = (name: string, lines: object[], o: { amplify: number; durationMs: number }): Scenario => ({
  name, description: '', file: '-', sessions: parseCapture(lines.map((l) => JSON.stringify(l)).join('\n')), amplify: o.amplify, jitterMs: 0,
  speed: 1, durationMs: o.durationMs, connect: 'router', thresholds: [], http: [], faults: [],
});

const facts = (o: Outcome) => JSON.stringify({ counters: o.counters, errors: o.agents.flatMap((a) => a.errorSamples), warnings: o.warnings });

const gatewayConfig = (url: string, body: object) =>
  fetch(`${url}/admin/config`, { method: 'POST', headers: { 'content-type': 'application/json', ...adminHeaders() }, body: JSON.stringify(body) }).then((r) => r.json());

test('bench agents drive gRPC and gRPC-web', { timeout: 240_000 }, async (t) => {
  // Heartbeats every 300 ms, unanswered ones close the session after 1.5 s: a run of seconds needs them answered.
  const cluster: TestCluster = await startCluster({ symbols: 3, rate: 20, gateway: { pingIntervalMs: 300, pongTimeoutMs: 1_500 } });
  t.after(() => cluster.stop());
  const gw = cluster.gateways[0]!;

  for (const format of ['grpc', 'grpc-web'] as const satisfies readonly WireFormat[]) {
    await t.test(`${format}: initial streams, subscribe and unsubscribe by request, heartbeats answered, no gaps`, async () => {
      // One session opens with its streams, the other with none and subscribes by request (gRPC: a ClientFrame; gRPC-web: Update).
      const sc = scenario(`${format}-basic`, [
        { t: 0, s: 'init', ev: 'connect', format, streams: ['btcusdt@trade', 'btcusdt@depth', 'ethusdt@ticker'] },
        { t: 0, s: 'later', ev: 'connect', format, streams: [] },
        { t: 300, s: 'later', ev: 'subscribe', streams: ['btcusdt@trade', 'ethusdt@trade'] },
        { t: 1_800, s: 'later', ev: 'unsubscribe', streams: ['ethusdt@trade'] },
      ], { amplify: 3, durationMs: 3_500 });
      const stopTap = new AbortController();
      const tap = recordTap(gw.urls.admin!, 60_000, stopTap.signal, adminHeaders());
      const o = await runBench({ scenario: sc, router: cluster.routerUrl, nats: cluster.nats.url, agents: 1, remote: false, thresholds: [] });
      stopTap.abort();
      const rec = await tap;
      assert.equal(o.agents[0]!.state, 'done');
      const c = o.counters;
      assert.equal(c.connects, 6, facts(o));
      assert.equal(c.connectFailures, 0, facts(o));
      assert.equal(c.errors, 0, facts(o));
      assert.equal(c.gaps, 0, facts(o));
      assert.equal(c.outOfOrder, 0, facts(o));
      assert.equal(c.unplannedCloses, 0, `heartbeats answered: ${facts(o)}`);
      assert.equal(c.subscribes, 3);
      assert.equal(c.unsubscribes, 3);
      assert.ok(c.msgs > 100, facts(o));
      assert.ok(o.latency.totalCount > 0);
      // The gateway saw every request arrive, on its gRPC sessions (gRPC-web sessions are gRPC ones to its tap).
      const later = rec.sessions.filter((s) => s.ops.some((op) => op.ev === 'unsubscribe'));
      assert.equal(later.length, 3, JSON.stringify(rec.sessions));
      for (const s of rec.sessions) assert.equal((s.ops[0] as { protocol?: string }).protocol, 'grpc');
      for (const s of later) {
        assert.deepEqual(s.ops.filter((op) => op.ev === 'subscribe').flatMap((op) => (op as { streams: string[] }).streams).sort(), ['btcusdt@trade', 'ethusdt@trade']);
      }
      await waitFor(async () => (await adminJson<{ connections: number }>(`${gw.urls.admin}/stats`)).connections === 0, 5_000, 'sessions closed at the end');
    });

    await t.test(`${format}: refused by admission control (gateway full), retried until admitted`, async () => {
      await gatewayConfig(gw.urls.admin!, { maxConnections: 3 });
      try {
        const sc = scenario(`${format}-full`, [{ t: 0, s: 'a', ev: 'connect', format, streams: ['btcusdt@trade'] }], { amplify: 5, durationMs: 4_000 });
        const o = await runBench({
          scenario: sc, router: cluster.routerUrl, nats: cluster.nats.url, agents: 1, remote: false, thresholds: [],
          onStarted: () => setTimeout(() => void gatewayConfig(gw.urls.admin!, { maxConnections: 10_000 }), 1_000),
        });
        const c = o.counters;
        assert.ok(c.rejected >= 2, `two of five were refused at first: ${facts(o)}`);
        assert.equal(c.connects, 5, facts(o));
        assert.equal(c.connectFailures, 0, facts(o));
        assert.equal(c.errors, 0, facts(o));
        assert.equal(c.gaps, 0, facts(o));
        assert.ok(c.msgs > 0);
      } finally {
        await gatewayConfig(gw.urls.admin!, { maxConnections: 10_000 });
      }
    });
  }

  await t.test('grpc: a killed gateway\'s sessions reconnect through the router to the other one', async () => {
    const gw2 = await cluster.startGateway(2);
    await waitFor(async () => ((await (await fetch(`${cluster.routerUrl}/v1/gateways?protocol=grpc`)).json()) as { gateways: unknown[] }).gateways.length === 2, 10_000, 'two gRPC gateways at the router');
    const sc = scenario('grpc-kill', [{ t: 0, s: 'a', ev: 'connect', format: 'grpc', streams: ['btcusdt@trade', 'ethusdt@trade'] }], { amplify: 8, durationMs: 8_000 });
    let onKilled = 0;
    const o = await runBench({
      scenario: sc, router: cluster.routerUrl, nats: cluster.nats.url, agents: 1, remote: false, thresholds: [],
      onStarted: () =>
        setTimeout(async () => {
          onKilled = (await adminJson<{ connections: number }>(`${gw2.urls.admin}/stats`)).connections;
          await gw2.kill('SIGKILL');
        }, 1_500),
    });
    const c = o.counters;
    assert.ok(onKilled > 0, 'the router sent some sessions to the second gateway');
    assert.equal(c.unplannedCloses, onKilled, facts(o));
    assert.equal(c.reconnects, onKilled, `every cut session came back: ${facts(o)}`);
    assert.equal(c.connects, 8 + onKilled, facts(o));
    assert.equal(c.connectFailures, 0, facts(o));
    assert.equal(c.errors, 0, facts(o));
    assert.equal(c.gaps, 0, facts(o));
  });
});
