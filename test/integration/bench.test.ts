// pushctl bench against a real cluster (nats-server + role processes): a real
// run through the CLI whose report is read back, threshold exit codes, a
// killed agent, a 200 ms pipeline stall showing in the tail, and record →
// bench round-trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HistogramLogReader } from 'hdr-histogram-js';
import { adminHeaders, adminJson, startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';
import { TestClient } from '../helpers/ws-client.ts';
import { loadScenario, parseCapture, type Scenario } from '../../cli/lib/bench/scenario.ts';
import { runBench } from '../../cli/lib/bench/controller.ts';
import { recordTap } from '../../cli/lib/bench/recorder.ts';
import { startAgent } from '../../cli/lib/bench/agent.ts';
import { formatCapture } from '../../cli/lib/bench/scenario.ts';
import { parseThreshold } from '../../cli/lib/bench/thresholds.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function pushctl(args: string[], timeoutMs = 50_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin', 'run.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d));
    p.stderr.on('data', (d: Buffer) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

function scenarioFile(dir: string, name: string, body: string): string {
  const f = join(dir, `${name}.yaml`);
  writeFileSync(f, body);
  return f;
}

let cluster: TestCluster;
let dir: string;

test('pushctl bench against a real cluster', { timeout: 240_000 }, async (t) => {
  cluster = await startCluster({ symbols: 3, rate: 20 });
  dir = mkdtempSync(join(tmpdir(), 'pushctl-bench-'));
  t.after(async () => {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const capture = join(dir, 'hot.jsonl');
  writeFileSync(
    capture,
    formatCapture(
      Array.from({ length: 4 }, (_, i) => ({
        id: `s${i}`,
        // WebSocket JSON, WebSocket protobuf and protobuf over TCP in one run.
        format: (['json', 'json', 'tcp', 'protobuf'] as const)[i]!,
        ops: [{ t: i * 50, ev: 'connect' as const, format: (['json', 'json', 'tcp', 'protobuf'] as const)[i]!, streams: ['btcusdt@trade', 'btcusdt@depth', 'ethusdt@ticker'] }],
      })),
    ),
  );

  await t.test('a short run through the CLI writes a valid report whose figures add up', async () => {
    const sc = scenarioFile(dir, 'hot', `name: hot\ncapture: ${capture}\namplify: 5\njitter: 300ms\nduration: 4s\nthresholds: [ "gaps==0" ]\n`);
    const out = join(dir, 'reports');
    const r = await pushctl(['bench', sc, '--target', cluster.routerUrl, '--nats', cluster.nats.url, '--agents', '2', '--no-dashboard', '--out', out, '--threshold', 'msgs>0', '--seed', '1']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /threshold msgs>0\s+pass/);
    const [folder] = readdirSync(out);
    assert.match(folder!, /-hot$/);
    const summary = JSON.parse(readFileSync(join(out, folder!, 'summary.json'), 'utf8'));
    assert.equal(summary.scenario.name, 'hot');
    assert.equal(summary.results.connections.target, 20);
    assert.equal(summary.results.connections.failed, 0);
    assert.ok(summary.results.msgs > 0);
    assert.equal(summary.results.counters.gaps, 0);
    assert.equal(summary.passed, true);
    assert.equal(summary.agents.length, 2);
    for (const a of summary.agents) {
      assert.equal(a.state, 'done');
      // CPU in one unit, named in summary.measurement.cpu: % of one core.
      assert.equal(typeof a.healthOverRun.cpuPct, 'number');
      assert.equal(a.healthOverRun.cpu, undefined);
      assert.equal(typeof a.clock.uncertaintyUs, 'number');
    }
    // The whole run's merged latency count is the sum of the agents' counts, and every message not a snapshot was a sample;
    // the headline (steady state) and the warm-up (auto: all 20 connections open + 3 s, at most half the run) split it.
    const agentCounts = summary.agents.reduce((s: number, a: { latency: { count: number } }) => s + a.latency.count, 0);
    assert.equal(summary.total.latencyMs.count, agentCounts);
    assert.equal(summary.total.latencyMs.count, summary.results.msgs - summary.results.counters.snapshots - summary.results.counters.catchup - summary.results.counters.outOfOrder);
    assert.match(summary.warmup.how, /^auto: /);
    assert.ok(summary.warmup.endS > 0 && summary.warmup.endS <= 2, `warm-up end ${summary.warmup.endS} s`);
    assert.equal(summary.warmup.latency.count + summary.results.latencyMs.count, summary.total.latencyMs.count);
    assert.ok(summary.results.latencyMs.count > 0);
    assert.ok(summary.results.latencyMs.p99Ms >= summary.results.latencyMs.p50Ms);
    assert.ok(summary.timeline.length >= 3);
    assert.ok(summary.machine.cpus > 0 && summary.versions.node);
    // The .hlog reads back with HdrHistogram's log reader: its intervals hold every sample.
    const reader = new HistogramLogReader(readFileSync(join(out, folder!, 'latency.hlog'), 'utf8'));
    let total = 0;
    for (let h = reader.nextIntervalHistogram(); h; h = reader.nextIntervalHistogram()) if (h.tag !== 'connect') total += h.totalCount;
    assert.equal(total, summary.total.latencyMs.count);
    const html = readFileSync(join(out, folder!, 'report.html'), 'utf8');
    assert.match(html, /<svg/);
    assert.doesNotMatch(html, /<script|https?:\/\/(?!127\.0\.0\.1|www\.w3\.org)/);
  });

  await t.test('a failed threshold exits 1 and is named', async () => {
    const sc = scenarioFile(dir, 'short', `name: short\ncapture: ${capture}\namplify: 1\nduration: 2s\n`);
    const r = await pushctl(['bench', sc, '--target', cluster.routerUrl, '--nats', cluster.nats.url, '--no-dashboard', '--out', join(dir, 'r2'), '--threshold', 'p50<0ms', '--threshold', 'gaps==0']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /threshold failed: p50<0ms/);
    assert.doesNotMatch(r.stderr, /gaps==0 \(/);
    const bad = await pushctl(['bench', sc, '--target', cluster.routerUrl, '--nats', cluster.nats.url, '--threshold', 'p98<1ms']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown metric/);
  });

  await t.test('an agent killed mid-run is reported and the others still report', async () => {
    const scenario = loadScenario(scenarioFile(dir, 'kill', `name: kill\ncapture: ${capture}\namplify: 4\nduration: 4s\n`));
    const outcome = await runBench({
      scenario, router: cluster.routerUrl, nats: cluster.nats.url, agents: 2, remote: false, thresholds: [parseThreshold('agents_failed==0')],
      onStarted: (agents) => setTimeout(() => process.kill(agents[1]!.pid, 'SIGKILL'), 1_500),
    });
    const [a, b] = outcome.agents;
    assert.equal(a!.state, 'done');
    assert.ok(a!.counters.msgs > 0);
    assert.equal(b!.state, 'dead');
    assert.match(b!.why ?? '', /SIGKILL/);
    assert.equal(b!.partial, true);
    assert.ok(outcome.warnings.some((w) => w.includes(b!.name)));
    assert.equal(outcome.thresholds[0]!.pass, false);
    assert.ok(outcome.counters.msgs >= a!.counters.msgs);
  });

  await t.test('a 200 ms stall of the push-server shows in the p99.9', async (st) => {
    // A fixed 1 s warm-up: the stall at 2.5 s is in the steady state, so in the headline.
    const scenario = loadScenario(scenarioFile(dir, 'stall', `name: stall\ncapture: ${capture}\namplify: 5\nduration: 5s\nwarmup: 1s\n`));
    const server = cluster.servers[0]!.proc;
    const outcome = await runBench({
      scenario, router: cluster.routerUrl, nats: cluster.nats.url, agents: 1, remote: false, thresholds: [],
      onStarted: () =>
        setTimeout(() => {
          server.kill('SIGSTOP');
          setTimeout(() => server.kill('SIGCONT'), 200);
        }, 2_500),
    });
    const p999 = outcome.latency.getValueAtPercentile(99.9) / 1000;
    st.diagnostic(`stall run: p99 ${outcome.latency.getValueAtPercentile(99) / 1000} ms, p99.9 ${p999} ms, max ${outcome.latency.maxValue / 1000} ms, n=${outcome.latency.totalCount}`);
    // An event meant for publication in the first feed tick of the stall (ticks are 50 ms apart at 20/s)
    // waited at least 200 − 50 ms, and each tick reaches every client: lower bounds, not timing goals.
    assert.ok(outcome.latency.maxValue / 1000 >= 140, `max ${outcome.latency.maxValue / 1000} ms`);
    assert.ok(p999 >= 100, `p99.9 ${p999} ms`);
    assert.equal(outcome.counters.gaps, 0);
  });

  await t.test('--remote: agents already running are discovered over NATS and share the sessions', async () => {
    const agents = await Promise.all(['remote-a', 'remote-b'].map((name) => startAgent({ nats: cluster.nats.url, name })));
    try {
      const scenario = loadScenario(scenarioFile(dir, 'remote', `name: remote\ncapture: ${capture}\namplify: 3\nduration: 3s\n`));
      const outcome = await runBench({ scenario, router: cluster.routerUrl, nats: cluster.nats.url, agents: 0, remote: true, thresholds: [] });
      assert.deepEqual(outcome.agents.map((a) => a.name).sort(), ['remote-a', 'remote-b']);
      for (const a of outcome.agents) {
        assert.equal(a.state, 'done');
        assert.equal(a.sessions, 6);
        assert.ok(a.clock!.samples > 0 && a.clock!.uncertaintyUs >= 0);
        assert.equal(a.clock!.applied, false, 'same host: measured, not applied');
      }
      assert.equal(outcome.counters.connects, 12);
      // The agents serve another run after this one.
      const again = await runBench({ scenario: { ...scenario, durationMs: 1_500 }, router: cluster.routerUrl, nats: cluster.nats.url, agents: 1, remote: true, thresholds: [] });
      assert.equal(again.agents.length, 1);
      assert.equal(again.agents[0]!.state, 'done');
    } finally {
      await Promise.all(agents.map((a) => a.stop()));
    }
  });

  await t.test('record → bench round-trips a capture', async () => {
    const gw = cluster.gateways[0]!.urls.admin!;
    const recording = recordTap(gw, 2_500, undefined, adminHeaders());
    await new Promise((r) => setTimeout(r, 300));
    const c1 = new TestClient(`${cluster.gateways[0]!.urls.ws}/stream?streams=btcusdt@trade`);
    await c1.opened;
    c1.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['ethusdt@ticker'], id: 1 }));
    const c2 = new TestClient(`${cluster.gateways[0]!.urls.ws}/ws?format=protobuf`);
    await c2.opened;
    await new Promise((r) => setTimeout(r, 300));
    c1.ws.send(JSON.stringify({ method: 'UNSUBSCRIBE', params: ['btcusdt@trade'], id: 2 }));
    await new Promise((r) => setTimeout(r, 300));
    c2.close();
    const rec = await recording;
    c1.close();
    const file = join(dir, 'recorded.jsonl');
    writeFileSync(file, formatCapture(rec.sessions, { source: rec.source }));
    const sessions = parseCapture(readFileSync(file, 'utf8'));
    assert.equal(sessions.length, 2);
    const [s1, s2] = sessions;
    assert.deepEqual(s1!.ops.map((o) => o.ev), ['connect', 'subscribe', 'unsubscribe']);
    assert.deepEqual((s1!.ops[0] as { streams: string[] }).streams, ['btcusdt@trade']);
    assert.equal(s2!.format, 'protobuf');
    assert.deepEqual(s2!.ops.map((o) => o.ev), ['connect', 'close']);
    assert.doesNotMatch(readFileSync(file, 'utf8'), /token|127\.0\.0\.1/);

    const scenario: Scenario = loadScenario(scenarioFile(dir, 'replay', `name: replay\ncapture: ${file}\namplify: 3\nduration: 3s\n`));
    const outcome = await runBench({ scenario, router: cluster.routerUrl, nats: cluster.nats.url, agents: 1, remote: false, thresholds: [] });
    assert.equal(outcome.agents[0]!.state, 'done');
    assert.equal(outcome.counters.connects, 6);
    assert.equal(outcome.counters.subscribes, 3);
    assert.equal(outcome.counters.unsubscribes, 3);
    assert.equal(outcome.counters.errors, 0, JSON.stringify(outcome.agents[0]!.errorSamples));
    assert.ok(outcome.counters.msgs > 0);
    await waitFor(async () => (await adminJson<{ connections: number }>(`${gw}/stats`)).connections === 0, 5_000, 'replayed sessions closed');
  });
});
