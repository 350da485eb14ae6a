import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import React from 'react';
import { render, type Instance } from 'ink';
import { Args, Command, Flags } from '@oclif/core';
import { fail } from '../lib/fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../lib/data-dir.ts';
import { readState } from '../lib/state-file.ts';
import { AGENT_CA_ENV, trustClusterCert } from '../lib/cluster-tls.ts';
import { secretsPath } from '../lib/cluster-secrets.ts';
import { loadScenario, parseDuration, parseWarmup, remapSymbols, scenarioSymbols, type Scenario } from '../lib/bench/scenario.ts';
import { bundledScenarios, resolveScenario, scenarioList } from '../lib/bench/bundled.ts';
import { parseThreshold, METRICS, type Threshold } from '../lib/bench/thresholds.ts';
import { runBench, type DashboardState } from '../lib/bench/controller.ts';
import { BenchDashboard, progressLine } from '../lib/bench/dashboard.ts';
import { writeBenchReport } from '../lib/bench/report-files.ts';
import { cpuText, latencySummary, type LatencySummary } from '../lib/bench/figures.ts';
import type { PrivateFigures } from '../lib/bench/private-run.ts';
import type { AgentHealth } from '../lib/bench/wire.ts';
import { parseFaults, describeFault } from '../lib/chaos/schedule.ts';
import { BACKEND_CHOICES } from '../lib/chaos/plan.ts';
import { PHASES } from '../lib/bench/thresholds.ts';

const cpuOf = (h: AgentHealth | undefined) => (h ? cpuText(h.cpu) : '?');

/** A private scenario's headline rows (the latency row above is its order latency). */
function privateRows(p: PrivateFigures | undefined, l: LatencySummary): Array<[string, string]> {
  if (!p) return [];
  const m = p.memory;
  return [
    ['private connections', `${p.opened} of ${p.connections} opened · ${p.connectRate}/s connect rate (all open in ${(p.connectSpanMs / 1000).toFixed(1)} s) · ${p.subscribed} subscribed (${p.subscribeRefusals} SUBSCRIBEs refused, retried)`],
    ['order latency (from the event time)', `p50 ${l.p50Ms} ms · p99 ${l.p99Ms} ms (n=${l.count})`],
    ['  of it from the bus (stored → received)', `p50 ${p.fromBus.p50Ms} ms · p99 ${p.fromBus.p99Ms} ms (the rest is the engine's publish queueing)`],
    ['order events', `${p.orders} received (${p.catchup} caught up on subscribe) · duplicates ${p.duplicates} · gaps ${p.gaps}`],
    ['ack round trip', `p50 ${p.ackRtt.p50Ms} ms · p99 ${p.ackRtt.p99Ms} ms (${p.ackReplies} of ${p.acksSent} acks answered)`],
    ['memory per private connection', m ? `${m.kbPerConnection} KB (gateway RSS ${m.beforeMb} → ${m.underLoadMb} MB over ${m.connections} connections)` : 'not measured (no gateway admin /stats reachable)'],
  ];
}

export default class Bench extends Command {
  static override summary = 'Replay recorded client sessions against a cluster and measure what the clients saw.';

  // One line per paragraph: oclif wraps them to the terminal.
  static override description = [
    "Replays a scenario's recorded client sessions against a cluster, amplified ×K across load agents, and measures end-to-end latency (receive time − the event's intended publish time), connect time, throughput, sequence gaps, resyncs and errors into HDR histograms merged exactly across agents.",
    'SCENARIO is a scenario file (scenarios/README.md) or the name of a bundled one (scenarios/<name>.yaml; --list names them). The target router comes from --target, else the cluster recorded in the data dir (`pushctl up`). Agents are coordinated over NATS: --nats, else the recorded cluster\'s NATS. Writes <out>/<time>-<scenario>/{summary.json,latency.hlog,report.html,snapshots.jsonl}; exits 1 naming any failed threshold.',
    'Warm-up (--warmup, the scenario\'s `warmup:`): by default until every connection is open, plus 3 s (at most half the run). Headline latency and msgs/s (summary, report, dashboard, thresholds) are the steady state after it; the warm-up\'s own figures are shown apart. Counts (errors, gaps, failed connections) are the whole run\'s. CPU is in % of one core everywhere.',
    'Faults (docs/chaos.md): the scenario\'s `faults:` list and --chaos PROFILE run from the start barrier on; the report splits every figure into before / during / after. A profile on the clients runs the local agents in a network namespace whose link to the cluster is shaped while the fault lasts (root). Faults need the `pushctl up` cluster\'s --data-dir.',
    `Threshold metrics: ${Object.keys(METRICS).join(', ')}.`,
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> bench --list',
    '<%= config.bin %> bench hot-symbol',
    '<%= config.bin %> bench hot-symbol --warmup 5s',
    '<%= config.bin %> bench zipf-symbols --agents 2 --amplify 20 --threshold "p99<50ms"',
    '<%= config.bin %> bench churn --target http://10.0.0.5:7100 --remote',
    '<%= config.bin %> bench hot-symbol --chaos rtt-100ms --chaos-at 10s --chaos-for 10s',
    '<%= config.bin %> bench gateway-kill',
    '<%= config.bin %> bench private-orders --users 2 --per-user 5 --duration 10s',
  ];

  static override args = {
    scenario: Args.string({ description: 'scenario file or bundled scenario name (--list)' }),
  };

  static override flags = {
    target: Flags.string({ description: 'router URL (default: the recorded cluster\'s first router)' }),
    nats: Flags.string({ description: 'NATS URL the agents are coordinated over (default: the recorded cluster\'s)' }),
    'nats-secrets': Flags.string({
      description: 'secrets file whose operator user connects to NATS (default: the recorded cluster\'s, when its nats-server was started by pushctl up)',
    }),
    agents: Flags.integer({ description: 'local agent processes to spawn (with --remote: at most this many remote agents; 0 = all)', min: 0 }),
    remote: Flags.boolean({ description: 'use agents already running elsewhere (`pushctl agent`) instead of spawning', default: false }),
    amplify: Flags.integer({ description: 'each captured session ×K (overrides the scenario)', min: 1 }),
    speed: Flags.string({ description: 'replay speed factor X (overrides the scenario)' }),
    duration: Flags.string({ description: 'run length, e.g. 30s (overrides the scenario)' }),
    warmup: Flags.string({ description: 'warm-up kept out of the headline: auto (all connections open + 3 s) or a duration, 0 = none (overrides the scenario)' }),
    list: Flags.boolean({ description: 'list the bundled scenarios, one line each, and exit', default: false }),
    jitter: Flags.string({ description: 'spread of the amplified copies\' start offsets, e.g. 2s (overrides the scenario)' }),
    threshold: Flags.string({ description: 'pass/fail rule, e.g. p99<50ms, errors<1%, gaps==0 (repeatable; added to the scenario\'s)', multiple: true }),
    out: Flags.string({ description: 'report root directory', default: 'reports' }),
    dashboard: Flags.boolean({ description: 'live Ink dashboard on a terminal (--no-dashboard: one line per second)', default: true, allowNo: true }),
    seed: Flags.integer({ description: 'seed of the jittered offsets (reproducible runs)' }),
    users: Flags.integer({ description: 'a private scenario\'s users, user1…userN (overrides its private.users; the cluster needs `pushctl up --users` at least this)', min: 1, max: 10_000 }),
    'per-user': Flags.integer({ description: 'a private scenario\'s connections per user (overrides its private.perUser: scale down on a small machine)', min: 1 }),
    'data-dir': Flags.string({ description: DATA_DIR_HELP }),
    json: Flags.boolean({ description: 'print the summary as JSON on stdout at the end', default: false }),
    chaos: Flags.string({ description: 'a profile (netem/<name>.yaml or a file) applied during the run, added to the scenario\'s faults' }),
    'chaos-target': Flags.string({ description: 'what --chaos shapes: clients (the local agents\' link) or a role (gateway-2, nats…)', default: 'clients' }),
    'chaos-at': Flags.string({ description: 'when --chaos starts, after the run\'s start (default: a third of the duration)' }),
    'chaos-for': Flags.string({ description: 'how long --chaos lasts (default: a third of the duration)' }),
    'chaos-backend': Flags.string({ description: 'who realises --chaos', options: [...BACKEND_CHOICES], default: 'auto' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Bench);
    if (flags.list) {
      this.log('Bundled scenarios (pushctl bench NAME; details in scenarios/README.md):');
      for (const line of scenarioList(bundledScenarios(), process.stdout.columns || 80)) this.log(line);
      return;
    }
    let scenario: Scenario;
    let thresholds: Threshold[];
    try {
      if (!args.scenario) throw new Error(`no scenario given: pushctl bench SCENARIO (a file, or a bundled name). Bundled:\n${scenarioList(bundledScenarios()).join('\n')}`);
      scenario = loadScenario(resolveScenario(args.scenario));
      if (flags.amplify) scenario.amplify = flags.amplify;
      if (flags.speed) scenario.speed = Number(flags.speed) > 0 ? Number(flags.speed) : (() => { throw new Error(`--speed ${flags.speed}: a positive number`); })();
      if (flags.duration) scenario.durationMs = parseDuration(flags.duration, '--duration');
      if (flags.jitter) scenario.jitterMs = parseDuration(flags.jitter, '--jitter');
      if (flags.warmup !== undefined) scenario.warmup = parseWarmup(flags.warmup, '--warmup');
      if (flags.users !== undefined || flags['per-user'] !== undefined) {
        if (!scenario.private) throw new Error(`--users / --per-user scale a private scenario (one with \`private:\`, e.g. private-orders); ${scenario.name} has none`);
        if (flags.users !== undefined) scenario.private.users = flags.users;
        if (flags['per-user'] !== undefined) scenario.private.perUser = flags['per-user'];
      }
      if (scenario.warmup && scenario.warmup !== 'auto' && scenario.warmup.ms >= scenario.durationMs)
        throw new Error(`warm-up ${scenario.warmup.ms / 1000} s is not shorter than the run (${scenario.durationMs / 1000} s): nothing would be left to measure`);
      if (flags.chaos) {
        const third = `${Math.round(scenario.durationMs / 3)}ms`;
        const [spec] = parseFaults([
          { at: flags['chaos-at'] ?? third, profile: flags.chaos, target: flags['chaos-target'], for: flags['chaos-for'] ?? third, backend: flags['chaos-backend'] },
        ]);
        scenario.faults = [...(scenario.faults ?? []), spec!];
      } else if (flags['chaos-at'] || flags['chaos-for']) throw new Error('--chaos-at / --chaos-for need --chaos PROFILE');
      for (const f of scenario.faults ?? [])
        if (f.atMs >= scenario.durationMs) throw new Error(`fault "${describeFault(f)}" at ${f.atMs / 1000} s is not within the run (${scenario.durationMs / 1000} s)`);
      thresholds = [...scenario.thresholds, ...(flags.threshold ?? [])].map(parseThreshold);
      const perPhase = thresholds.find((t) => PHASES.some((p) => t.metric.startsWith(`${p}.`)));
      if (perPhase && !scenario.faults?.length) throw new Error(`threshold "${perPhase.text}": per-phase metrics need faults (the scenario's faults: or --chaos)`);
    } catch (err) {
      fail(this, (err as Error).message, 2);
    }

    let router = flags.target;
    let nats = flags.nats;
    let natsSecretsFile = flags['nats-secrets'];
    const dataDir = resolveDataDir(flags['data-dir']);
    // A `pushctl up --tls` cluster: trust its certificate here and in the local agents (child processes).
    const clusterCa = trustClusterCert(dataDir);
    if (clusterCa) process.env[AGENT_CA_ENV] = clusterCa;
    if (scenario.faults?.length && !readState(dataDir))
      fail(this, `faults need the cluster \`pushctl up\` recorded (its roles and ports): none in ${dataDir}; pass --data-dir`, 2);
    if (!router || !nats) {
      const state = readState(dataDir);
      if (!state) fail(this, `no cluster is recorded in ${dataDir}: pass --target ROUTER_URL and --nats URL, or start one with \`pushctl up\``, 2);
      router ??= state.endpoints.routers[0];
      // The nats-server `pushctl up` started takes only the cluster's users.
      if (!nats && state.binaries?.nats && existsSync(secretsPath(dataDir))) natsSecretsFile ??= secretsPath(dataDir);
      nats ??= state.endpoints.nats;
      if (!nats) fail(this, `the cluster in ${dataDir} runs embedded (no NATS): agents need NATS to coordinate; pass --nats URL (any nats-server)`, 2);
    }
    router = router!.replace(/\/$/, '');

    // Captures from another cluster: map symbols this feed does not publish onto ones it does.
    let symbolMap: Record<string, string> = {};
    const capturedSymbols = scenarioSymbols(scenario.sessions).length;
    if (scenario.sessions.length && scenario.connect === 'router') {
      try {
        const res = await fetch(`${router}/v1/symbols`, { signal: AbortSignal.timeout(3_000) });
        const available = ((await res.json()) as { symbols?: string[] }).symbols ?? [];
        symbolMap = remapSymbols(scenario.sessions, available);
        if (Object.keys(symbolMap).length) process.stderr.write(`pushctl: ${Object.keys(symbolMap).length} of ${capturedSymbols} captured symbols are not published here; mapped onto published ones\n`);
      } catch (err) {
        fail(this, `cannot reach the router at ${router}: ${(err as Error).message}`, 1);
      }
    }

    const tty = flags.dashboard && process.stdout.isTTY === true && !flags.json;
    let ink: Instance | undefined;
    let lastLine = 0;
    const onUpdate = (s: DashboardState) => {
      if (tty) {
        const el = React.createElement(BenchDashboard, { s });
        if (!ink) ink = render(el, { exitOnCtrlC: false, patchConsole: false, maxFps: 4 });
        else ink.rerender(el);
      } else if (!s.done && Date.now() - lastLine >= 1_000) {
        lastLine = Date.now();
        process.stderr.write(progressLine(s) + '\n');
      }
    };
    const abort = new AbortController();
    const onSignal = () => abort.abort();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let outcome;
    try {
      outcome = await runBench({
        scenario, router, nats: nats!, ...(natsSecretsFile ? { natsSecretsFile } : {}), agents: flags.agents ?? (flags.remote ? 0 : 1), remote: flags.remote, thresholds,
        ...(flags.seed !== undefined ? { seed: flags.seed } : {}),
        onUpdate, signal: abort.signal, log: (l) => process.stderr.write(`pushctl: ${l}\n`), dataDir,
      });
    } catch (err) {
      ink?.unmount();
      fail(this, (err as Error).message, 1);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    ink?.unmount();
    const { dir, summary } = writeBenchReport(resolve(flags.out), outcome, scenario, {
      command: ['pushctl', 'bench', ...process.argv.slice(3)].join(' '), target: router, nats, symbolMap, aborted: abort.signal.aborted,
    });
    if (flags.json) this.log(JSON.stringify({ report: dir, ...summary }));
    else {
      const l = latencySummary(outcome.latency);
      const c = outcome.counters;
      const rows: Array<[string, string]> = [
        ['scenario', scenario.private
          ? `${scenario.name} (private: ${scenario.private.users} users × ${scenario.private.perUser} connections, ${scenario.durationMs / 1000} s)`
          : `${scenario.name} (${scenario.sessions.length} sessions ×${scenario.amplify}, speed ${scenario.speed}, ${scenario.durationMs / 1000} s)`],
        ...privateRows(outcome.private, l),
        [outcome.warmup.endMs > 0 ? `latency (steady, ${outcome.steady.fromS ?? '–'}–${outcome.steady.toS ?? '–'} s)` : 'latency', `p50 ${l.p50Ms} ms · p90 ${l.p90Ms} · p99 ${l.p99Ms} · p99.9 ${l.p999Ms} · max ${l.maxMs} (n=${l.count})`],
        ...(outcome.warmup.endMs > 0
          ? [[`warm-up (0–${outcome.warmup.figures.toS ?? 0} s, not in the headline)`, `p50 ${outcome.warmup.figures.latency.p50Ms} ms · p99 ${outcome.warmup.figures.latency.p99Ms} · max ${outcome.warmup.figures.latency.maxMs} (n=${outcome.warmup.figures.latency.count}) · ${outcome.warmup.figures.msgsPerSec} msgs/s · ${outcome.warmup.how}`] as [string, string]]
          : []),
        ['connect', `p50 ${latencySummary(outcome.connect).p50Ms} ms · p99 ${latencySummary(outcome.connect).p99Ms} ms`],
        ['connections', `target ${outcome.connections.target} · peak open ${outcome.connections.peakOpen} · failed ${outcome.connections.failed}`],
        ['messages', `${c.msgs} (${outcome.warmup.endMs > 0 ? `${outcome.steady.msgsPerSec}/s steady` : `${Math.round((c.msgs * 1000) / outcome.durationMs)}/s`})`],
        ['gaps · resyncs · errors', `${c.gaps} · ${c.resyncs} · ${c.errors}`],
        ['reconnects · 503 retries · unplanned closes (liveness)', `${c.reconnects} · ${c.rejected} · ${c.unplannedCloses} (${c.livenessTimeouts})`],
        ...outcome.http.map((x): [string, string] => [`http ${x.name}`, `${x.rps} req/s · p99 ${x.latencyMs.p99} ms · errors ${x.errors} ${JSON.stringify(x.statusCodes)}${x.error ? ` (${x.error})` : ''}`]),
        ...outcome.agents.map((a): [string, string] => [`agent ${a.name}`, `${a.state}${a.partial ? ' (partial: from its snapshots)' : ''} · ${a.counters.msgs} msgs · CPU ${cpuOf(a.healthOverRun ?? a.health)} · loop p99 ${a.healthOverRun?.loopDelayP99Ms ?? a.health?.loopDelayP99Ms ?? '?'} ms${a.clock ? ` · clock ${a.clock.offsetUs}±${a.clock.uncertaintyUs} µs` : ''}${a.why ? ` · ${a.why}` : ''}`]),
        ...outcome.faults.map((f): [string, string] => [
          `fault ${f.fault}`,
          f.startedMs === undefined
            ? `never started (${f.message})`
            : `${f.ok ? 'ok' : 'FAILED'} at ${(f.startedMs / 1000).toFixed(1)} s${f.toMs !== undefined ? `, window to ${(f.toMs / 1000).toFixed(1)} s (${f.window})` : ''}: ${f.message}`,
        ]),
        ...(outcome.phases?.phases ?? []).map((p): [string, string] => [
          `${p.name}${p.fromS !== undefined ? ` ${p.fromS}–${p.toS} s` : ''}`,
          p.intervals === 0
            ? 'no interval'
            : `${p.msgsPerSec} msgs/s · p50 ${p.latency.p50Ms} · p99 ${p.latency.p99Ms} · p99.9 ${p.latency.p999Ms} ms · reconnects ${p.reconnects} · unplanned closes ${p.unplannedCloses} · gaps ${p.gaps} · resyncs ${p.resyncs} · errors ${p.errors} · open ${p.openMin}–${p.openMax}`,
        ]),
        ...outcome.thresholds.map((t): [string, string] => [`threshold ${t.text}`, `${t.pass ? 'pass' : 'FAIL'} (actual ${t.actual})`]),
      ];
      const w = Math.max(...rows.map((r) => r[0].length));
      for (const [k, v] of rows) this.log(`  ${k.padEnd(w)}  ${v}`);
      for (const x of outcome.warnings) this.log(`  ! ${x}`);
      this.log(`report: ${dir}`);
    }
    const failed = outcome.thresholds.filter((t) => !t.pass);
    if (failed.length) fail(this, `threshold${failed.length > 1 ? 's' : ''} failed: ${failed.map((t) => `${t.text} (actual ${t.actual})`).join(', ')}`, 1);
  }
}
