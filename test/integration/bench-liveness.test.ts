// The bench agents' liveness watchdog against a real cluster (router, two
// gateways, server, feed, nats-server), on every protocol: sessions that get
// nothing but the gateway's heartbeats stay up; sessions whose gateway goes
// silent without closing anything (SIGSTOP: the kernel keeps the connections
// open, nothing arrives) are terminated after the liveness timeout, counted,
// and reconnect through the router to the gateway that is left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adminHeaders, startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';
import { runBench, type Outcome } from '../../cli/lib/bench/controller.ts';
import { parseCapture, WIRE_FORMATS, type Scenario } from '../../cli/lib/bench/scenario.ts';

const scenario = (name: string, lines: object[], o: { amplify: number; durationMs: number; livenessMs: number }): Scenario => ({
  name, description: '', file: '-', sessions: parseCapture(lines.map((l) => JSON.stringify(l)).join('\n')), amplify: o.amplify, jitterMs: 0,
  speed: 1, durationMs: o.durationMs, connect: 'router', thresholds: [], http: [], faults: [], livenessMs: o.livenessMs,
});

const facts = (o: Outcome) => JSON.stringify({ counters: o.counters, errors: o.agents.flatMap((a) => a.errorSamples), warnings: o.warnings });

const connections = async (admin: string) => ((await (await fetch(`${admin}/stats`, { headers: adminHeaders(), signal: AbortSignal.timeout(2_000) })).json()) as { connections: number }).connections;

test('bench sessions: liveness watchdog on every protocol', { timeout: 240_000 }, async (t) => {
  // Heartbeats every 300 ms (answered, or the gateway closes the session after 1.5 s).
  const cluster: TestCluster = await startCluster({ gateways: 2, symbols: 3, rate: 20, gateway: { pingIntervalMs: 300, pongTimeoutMs: 1_500 } });
  t.after(() => cluster.stop());
  const [gw1, gw2] = cluster.gateways as [TestCluster['gateways'][0], TestCluster['gateways'][0]];
  await waitFor(async () => ((await (await fetch(`${cluster.routerUrl}/v1/gateways?protocol=grpc`)).json()) as { gateways: unknown[] }).gateways.length === 2, 10_000, 'two gateways at the router');

  await t.test('sessions with no subscription get only heartbeats (ws pings, heartbeat frames): they stay up', async () => {
    // A liveness of 1 s, three heartbeat intervals: only the heartbeats keep these sessions alive.
    const sc = scenario('idle', WIRE_FORMATS.map((format) => ({ t: 0, s: format, ev: 'connect', format, streams: [] })), { amplify: 2, durationMs: 4_000, livenessMs: 1_000 });
    const o = await runBench({ scenario: sc, router: cluster.routerUrl, nats: cluster.nats.url, agents: 1, remote: false, thresholds: [] });
    const c = o.counters;
    assert.equal(c.connects, 10, facts(o));
    assert.equal(c.livenessTimeouts, 0, facts(o));
    assert.equal(c.unplannedCloses, 0, facts(o));
    assert.equal(c.errors, 0, facts(o));
    assert.equal(c.msgs, 0, 'no market data: heartbeats only');
  });

  await t.test('a frozen gateway (SIGSTOP): its sessions time out, are counted, and reconnect through the router to the other', async () => {
    const sc = scenario('frozen', WIRE_FORMATS.map((format) => ({ t: 0, s: format, ev: 'connect', format, streams: ['btcusdt@trade', 'ethusdt@trade'] })), {
      amplify: 4, durationMs: 14_000, livenessMs: 2_000,
    });
    let onFrozen = -1;
    let frozenAt = 0;
    let froze: Promise<void> | undefined;
    try {
      const o = await runBench({
        scenario: sc, router: cluster.routerUrl, nats: cluster.nats.url, agents: 1, remote: false, thresholds: [],
        onStarted: () => {
          froze = new Promise<void>((resolve) =>
            setTimeout(async () => {
              try {
                onFrozen = await connections(gw2.urls.admin!);
                gw2.proc.kill('SIGSTOP');
                frozenAt = Date.now();
              } finally {
                resolve();
              }
            }, 2_500),
          );
        },
      });
      await froze;
      const c = o.counters;
      t.diagnostic(`sessions on the frozen gateway: ${onFrozen} of 20; liveness timeouts ${c.livenessTimeouts}; reconnects ${c.reconnects}; connect p99 ${o.connect.getValueAtPercentile(99) / 1000} ms`);
      assert.ok(frozenAt > 0, 'the gateway was frozen during the run');
      assert.ok(onFrozen > 0 && onFrozen < 20, `the router spread the sessions over both gateways (${onFrozen} on gateway-2)`);
      // Nothing closed: only the watchdog could find them. Each timed out once and came back once.
      assert.equal(c.livenessTimeouts, onFrozen, facts(o));
      assert.equal(c.unplannedCloses, onFrozen, facts(o));
      assert.equal(c.reconnects, onFrozen, facts(o));
      assert.equal(c.connects, 20 + onFrozen, facts(o));
      assert.equal(c.connectFailures, 0, facts(o));
      assert.equal(c.errors, 0, facts(o));
      // Every session is back on the gateway that is left, and data flows to all of them at the end.
      assert.equal(await connections(gw1.urls.admin!), 0, 'the run closed its sessions');
      const last = o.intervals.filter((i) => i.endMs <= o.startedAt.getTime() + sc.durationMs - 1_000).at(-1)!;
      assert.equal(last.open, 20, `all 20 open in the last full interval: ${JSON.stringify(o.intervals.map((i) => i.open))}`);
    } finally {
      gw2.proc.kill('SIGCONT');
    }
  });
});
