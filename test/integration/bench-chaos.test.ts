// pushctl bench with faults, against a `pushctl up` cluster (2 gateways, role
// processes, root for the client namespace): a proxy-delay profile on the
// clients shows in the during phase and is gone afterwards; SIGTERM in the
// middle of a partition still undoes everything; kill -9 of a gateway under
// load shows every client that was on it reconnecting through the router to
// the other gateway, with before / during / after in the report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HistogramLogReader } from 'hdr-histogram-js';
import type { ClusterState } from '../../cli/lib/state-file.ts';
import { pushctl, type PushctlRun as Run } from '../helpers/pushctl.ts';
import { operatorAuth } from '../../cli/lib/cluster-secrets.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CAPTURE = join(ROOT, 'scenarios', 'captures', 'hot-symbol.jsonl');

const chaosNamespaces = () =>
  spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith('mpchaos-'));

/** Processes whose command line mentions `what` (e.g. a namespace name), other than ps itself. */
function processesMentioning(what: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(what)) out.push(`${pid}: ${cmd}`);
    } catch {
      // gone
    }
  }
  return out;
}

/** A gateway's /stats on its admin listener, with the cluster's admin token (the data dir's secrets). */
async function stats(url: string, dataDir: string): Promise<{ connections: number; counters: Record<string, number> } | undefined> {
  try {
    const res = await fetch(`${url}/stats`, { headers: operatorAuth({ dataDir }), signal: AbortSignal.timeout(1_000) });
    return (await res.json()) as { connections: number; counters: Record<string, number> };
  } catch {
    return undefined;
  }
}

type Phase = { name: string; intervals: number; latency: { p50Ms: number; count: number }; reconnects: number; unplannedCloses: number; connectFailures: number; openEnd: number };

test('bad fault arguments are refused before anything starts (exit 2, saying what)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-bench-chaos-args-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [args, why] of [
    [['--chaos', 'nope'], /no profile named nope/],
    [['--threshold', 'during.p99<1ms'], /per-phase metrics need faults/],
    [['--chaos-at', '5s'], /--chaos-at \/ --chaos-for need --chaos PROFILE/],
    [['--chaos', 'rtt-100ms', '--chaos-at', '40s', '--duration', '10s'], /at 40 s is not within the run \(10 s\)/],
    [['--chaos', 'rtt-100ms', '--chaos-backend', 'netem'], /Expected --chaos-backend=netem to be one of/],
    [['--chaos', 'rtt-100ms'], /faults need the cluster `pushctl up` recorded/],
  ] as Array<[string[], RegExp]>) {
    const r = await pushctl(['bench', 'hot-symbol', '--data-dir', dir, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, why);
  }
});

test('pushctl bench with faults on a pushctl up cluster', { timeout: 300_000 }, async (t) => {
  assert.equal(process.getuid?.(), 0, 'client-side faults need root (a network namespace for the agents)');
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-bench-chaos-'));
  t.after(async () => {
    await pushctl(['chaos', 'off', '--data-dir', dir]);
    if (existsSync(join(dir, 'cluster.json'))) await pushctl(['down', '--data-dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const up = await pushctl(['up', '--detach', '--port-base', '0', '--servers', '1', '--gateways', '2', '--symbols', '3', '--data-dir', dir], { timeoutMs: 120_000 });
  assert.equal(up.code, 0, up.stderr + up.stdout);
  const state = () => JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as ClusterState;
  const scenario = (name: string, extra: string) => {
    const f = join(dir, `${name}.yaml`);
    writeFileSync(f, `name: ${name}\ncapture: ${CAPTURE}\namplify: 2\njitter: 1s\n${extra}`);
    return f;
  };
  const summaryOf = (r: Run) => {
    const line = r.stdout.trim().split('\n').at(-1)!;
    const { report } = JSON.parse(line) as { report: string };
    return JSON.parse(readFileSync(join(report, 'summary.json'), 'utf8'));
  };
  const leftovers = async () => {
    const status = await pushctl(['chaos', 'status', '--data-dir', dir]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout + status.stderr, /nothing applied/);
    assert.deepEqual(chaosNamespaces(), []);
  };

  await t.test('--chaos rtt-100ms on the clients: the during phase is ≥ 50 ms slower, and nothing is left after', async () => {
    const r = await pushctl([
      'bench', scenario('delay', 'duration: 14s\n'), '--data-dir', dir, '--no-dashboard', '--json', '--out', join(dir, 'reports'),
      '--chaos', 'rtt-100ms', '--chaos-at', '4s', '--chaos-for', '5s', '--threshold', 'during.p50>=45ms', '--threshold', 'failed_connections==0',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const s = summaryOf(r);
    assert.match(s.clientNet.netns, /^mpchaos-/);
    const [f] = s.faults;
    assert.equal(f.fault, 'rtt-100ms on clients for 5 s');
    assert.equal(f.ok, true, f.message);
    assert.ok(f.startedMs >= 4_000 && f.endedMs >= f.startedMs + 5_000, JSON.stringify(f));
    assert.equal(f.window, 'recorded');
    const [before, during, after] = s.phases.phases as Phase[];
    assert.deepEqual([before!.name, during!.name, after!.name], ['before', 'during', 'after']);
    for (const p of [before!, during!, after!]) assert.ok(p.intervals > 0 && p.latency.count > 0, JSON.stringify(p));
    t.diagnostic(`p50 before ${before!.latency.p50Ms} ms, during ${during!.latency.p50Ms} ms, after ${after!.latency.p50Ms} ms`);
    // 50 ms one way towards the clients on every frame from the fault on: a lower bound, not a timing goal.
    assert.ok(during!.latency.p50Ms >= before!.latency.p50Ms + 30, `during p50 ${during!.latency.p50Ms} vs before ${before!.latency.p50Ms}`);
    assert.ok(after!.latency.p50Ms <= during!.latency.p50Ms - 30, `after p50 ${after!.latency.p50Ms} vs during ${during!.latency.p50Ms}`);
    assert.equal(s.thresholds.find((x: { threshold: string }) => x.threshold === 'during.p50>=45ms').pass, true);
    assert.equal(s.results.counters.connectFailures, 0);
    assert.equal(s.results.counters.unplannedCloses, 0, 'a delay closes nothing');
    await leftovers();
    assert.deepEqual(processesMentioning(s.clientNet.netns), [], 'agents and forwarder are gone');
  });

  await t.test('SIGTERM during a client partition: the run ends, the report says so, and the partition and namespace are undone', async () => {
    let sent = false;
    const r = await pushctl(
      ['bench', scenario('cut', 'duration: 20s\n'), '--data-dir', dir, '--no-dashboard', '--json', '--out', join(dir, 'reports'), '--chaos', 'partition-reset', '--chaos-at', '2s', '--chaos-for', '15s'],
      {
        onStderr: (text, pid) => {
          if (!sent && /fault at \d+ ms: partition-reset/.test(text)) {
            sent = true;
            setTimeout(() => process.kill(pid, 'SIGTERM'), 1_000);
          }
        },
      },
    );
    assert.ok(sent, r.stderr);
    const s = summaryOf(r);
    assert.equal(s.aborted, true);
    const [f] = s.faults;
    assert.equal(f.ok, true, f.message);
    assert.ok(f.endedMs !== undefined && f.endedMs < 15_000, `undone at the stop, not at its end: ${JSON.stringify(f)}`);
    await leftovers();
    assert.deepEqual(processesMentioning(s.clientNet.netns), []);
  });

  await t.test('kill -9 of a gateway under bench: every client that was on it reconnects through the router', async () => {
    const gw = (id: string) => state().endpoints.gateways.find((g) => g.id === id)!.admin!;
    const g1 = gw('gateway-1');
    const g2 = gw('gateway-2');
    const opened1 = (await stats(g1, dir))!.counters.connections_opened ?? 0;
    // Clients on gateway-2 until it dies: its last answer before the kill.
    let onKilled = -1;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const st = await stats(g2, dir);
        if (!st) {
          if (onKilled >= 0) break;
        } else onKilled = st.connections;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const r = await pushctl(['bench', scenario('kill', 'duration: 18s\nfaults:\n  - { at: 6s, kill: gateway-2 }\n'), '--data-dir', dir, '--no-dashboard', '--json', '--out', join(dir, 'reports')]);
    polling = false;
    await poll;
    assert.equal(r.code, 0, r.stderr);
    const s = summaryOf(r);
    const target = s.results.connections.target as number;
    assert.equal(target, 40);
    t.diagnostic(`clients on gateway-2 at the kill: ${onKilled}; reconnects ${s.results.counters.reconnects}; connect p99 ${s.results.connectMs.p99Ms} ms`);
    assert.ok(onKilled > 0 && onKilled < target, `the router spread the clients over both gateways (${onKilled} of ${target} on gateway-2)`);

    const [f] = s.faults;
    assert.equal(f.fault, 'kill gateway-2');
    assert.equal(f.ok, true, f.message);
    assert.match(f.message, /SIGKILL/);
    assert.ok(f.startedMs >= 6_000, JSON.stringify(f));
    assert.equal(f.window, 'recovered', JSON.stringify(f));
    const [before, during, after] = s.phases.phases as Phase[];
    assert.deepEqual([before!.name, during!.name, after!.name], ['before', 'during', 'after']);
    assert.ok(before!.intervals > 0 && during!.intervals > 0 && after!.intervals > 0, JSON.stringify(s.phases));
    assert.equal(before!.unplannedCloses + before!.reconnects, 0, 'nothing happened before the kill');
    // Each client on the killed gateway lost its connection once and came back once; nobody gave up.
    assert.equal(during!.unplannedCloses, onKilled);
    assert.equal(s.results.counters.unplannedCloses, onKilled);
    assert.equal(s.results.counters.reconnects, onKilled);
    assert.equal(s.results.counters.connectFailures, 0);
    assert.equal(after!.unplannedCloses, 0);
    assert.equal(after!.openEnd, target, 'every client is connected at the end');
    // Through the router, to the gateway that is left: it saw its own share plus every reconnect.
    const opened = (await stats(g1, dir))!.counters.connections_opened! - opened1;
    assert.equal(opened, target, `its own ${target - onKilled} first connects plus one reconnect for each of the ${onKilled} from gateway-2`);
    assert.equal(await stats(g2, dir), undefined, 'gateway-2 stays dead (a kill is not undone)');
    const report = JSON.parse(r.stdout.trim().split('\n').at(-1)!).report as string;
    assert.match(readFileSync(join(report, 'report.html'), 'utf8'), /Before \/ during \/ after/);
    // The fault is a comment in the .hlog, which still reads back whole.
    const hlog = readFileSync(join(report, 'latency.hlog'), 'utf8');
    assert.match(hlog, /#\[fault: kill gateway-2 at 6\.\d+ s, ok, window to \d+\.\d+ s \(recovered\)\]/);
    const reader = new HistogramLogReader(hlog);
    let total = 0;
    for (let h = reader.nextIntervalHistogram(); h; h = reader.nextIntervalHistogram()) if (h.tag !== 'connect') total += h.totalCount;
    // The .hlog holds the whole run; results.latencyMs is the steady state after the warm-up.
    assert.equal(total, s.total.latencyMs.count);
  });
});
