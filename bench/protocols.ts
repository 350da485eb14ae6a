// `npm run bench:protocols`: every client protocol of the gateway side by
// side, in one run on one cluster (issue 5). The same fan-out — C clients ×
// K `<symbol>@trade` streams over S symbols, the feed at R trades/s per
// symbol — is replayed through `pushctl bench`'s controller and agents once
// per protocol, one after another: WebSocket JSON, WebSocket protobuf, raw
// TCP, gRPC and gRPC-web. Figures come from the steady window (after the
// warm-up, without the last interval); errors and gaps from the whole run.
// Prints a table and writes reports/<time>-protocols/: summary.json,
// table.txt, and per protocol the bench's summary.json and latency.hlog.
// --profile gateway: each protocol runs on its own gateway started under
// node --cpu-prof, so each profile (profiles/<protocol>/) covers one protocol.
import { parseArgs } from 'node:util';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdirSync, writeFileSync } from 'node:fs';
import { adminJson, startCluster, waitFor, type RoleProc, type TestCluster } from '../test/helpers/cluster.ts';
import { runBench, type Outcome } from '../cli/lib/bench/controller.ts';
import { buildSummary, hlogText } from '../cli/lib/bench/report-files.ts';
import { newHistogram } from '../cli/lib/bench/meter.ts';
import type { Scenario, WireFormat } from '../cli/lib/bench/scenario.ts';
import { planSubscriptions } from './lib/subscriptions.ts';
import { cpuWindow } from './lib/proc-cpu.ts';
import { profilesIn, summariseProfile } from './lib/cpu-profile.ts';
import { fmtRate, latencySummary, machineInfo, table, type LatencySummary } from './lib/report.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Benchmark names → the bench's wire formats. */
const PROTOCOLS = { 'ws-json': 'json', 'ws-protobuf': 'protobuf', tcp: 'tcp', grpc: 'grpc', 'grpc-web': 'grpc-web' } as const satisfies Record<string, WireFormat>;
type ProtocolName = keyof typeof PROTOCOLS;

interface Options {
  clients: number;
  topicsPerClient: number;
  symbols: number;
  rate: number;
  duration: number;
  warmup: number;
  protocols: ProtocolName[];
  agents: number;
  out: string;
  /** CPU-profile the gateway (one gateway per protocol). */
  profileGateway: boolean;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: '200' },
      'topics-per-client': { type: 'string', default: '5' },
      symbols: { type: 'string', default: '20' },
      rate: { type: 'string', default: '10' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      protocols: { type: 'string', default: Object.keys(PROTOCOLS).join(',') },
      agents: { type: 'string', default: '1' },
      out: { type: 'string', default: 'reports' },
      profile: { type: 'string', default: '' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(`usage: npm run bench:protocols -- [options]
  --clients N             clients per protocol (200)
  --topics-per-client K   <symbol>@trade streams per client, round-robin over the symbols (5)
  --symbols S             symbols the feed publishes (20)
  --rate R                trades/s per symbol: deliveries/s = R × N × K (10)
  --duration SECONDS      measured seconds per protocol, after the warm-up (10)
  --warmup SECONDS        connect and settle before measuring, per protocol (3)
  --protocols LIST        ${Object.keys(PROTOCOLS).join(',')} (all); ratios are to ws-json when it ran
  --agents N              local load agents (1)
  --out DIR               report root (reports)
  --profile gateway       node --cpu-prof on the gateway, a fresh gateway per protocol (profiles in the report folder)`);
    process.exit(0);
  }
  const num = (name: string, v: string, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number in [${min}, ${max}], got "${v}"`);
    return n;
  };
  const protocols = values.protocols.split(',').map((p) => p.trim()).filter(Boolean);
  for (const p of protocols) if (!(p in PROTOCOLS)) throw new Error(`--protocols: unknown protocol "${p}" (${Object.keys(PROTOCOLS).join(', ')})`);
  if (!protocols.length) throw new Error('--protocols: name at least one');
  const profile = values.profile.split(',').map((p) => p.trim()).filter(Boolean);
  for (const p of profile) if (p !== 'gateway') throw new Error(`--profile: unknown role "${p}" (only gateway)`);
  return {
    clients: Math.floor(num('clients', values.clients, 1, 20_000)),
    topicsPerClient: Math.floor(num('topics-per-client', values['topics-per-client'], 1, 200)),
    symbols: Math.floor(num('symbols', values.symbols, 1, 1_000)),
    rate: num('rate', values.rate, 0.1, 10_000),
    duration: num('duration', values.duration, 2, 600),
    warmup: num('warmup', values.warmup, 1, 60),
    protocols: protocols as ProtocolName[],
    agents: Math.floor(num('agents', values.agents, 1, 16)),
    out: resolve(values.out),
    profileGateway: profile.length > 0,
  };
}

interface ProtocolResult {
  protocol: ProtocolName;
  format: WireFormat;
  /** Steady window: mean delivered msgs/s and latency of the merged interval histograms. */
  deliveredPerSec: number;
  deliveredShare: number;
  latency: LatencySummary;
  steadySeconds: number;
  /** Whole run. */
  errors: number;
  gaps: number;
  connects: number;
  connectFailures: number;
  rejected: number;
  unplannedCloses: number;
  resyncs: number;
  connectMs: LatencySummary;
  /** CPU share (1.0 = one core) over the steady window. */
  gatewayCpu: number | null;
  serverCpu: number | null;
  /** Per agent, over the steady window's snapshots: mean CPU share, worst event-loop delay p99, seconds saturated. */
  agents: Array<{ cpu: number; loopDelayP99Ms: number; saturatedSeconds: number }>;
  errorSamples: string[];
  warnings: string[];
}

const round = (n: number, d = 0) => Math.round(n * 10 ** d) / 10 ** d;

function scenarioFor(o: Options, format: WireFormat, streams: string[][]): Scenario {
  return {
    name: `protocols-${format}`,
    description: `${o.clients} clients × ${o.topicsPerClient} trade streams over ${o.symbols} symbols, ${format}`,
    file: '-',
    sessions: streams.map((s, i) => ({ id: `c${i}`, format, ops: [{ t: 0, ev: 'connect' as const, format, streams: s }] })),
    amplify: 1,
    // Connects spread over the first second: a herd would measure admission control, not the protocol.
    jitterMs: Math.min(1_000, o.warmup * 500),
    speed: 1,
    durationMs: (o.warmup + o.duration) * 1000,
    connect: 'router',
    thresholds: [],
    http: [],
    faults: [],
  };
}

async function runOne(o: Options, cluster: TestCluster, gateway: RoleProc, name: ProtocolName, streams: string[][], expectedPerSec: number, signal: AbortSignal) {
  const format = PROTOCOLS[name];
  const sc = scenarioFor(o, format, streams);
  const pids = { gateway: gateway.proc.pid ?? 0, server: cluster.servers[0]!.proc.pid ?? 0 };
  let cpu: Record<string, number | null> = {};
  const timers: NodeJS.Timeout[] = [];
  const outcome = await runBench({
    scenario: sc, router: cluster.routerUrl, nats: cluster.nats.url, agents: o.agents, remote: false, thresholds: [], seed: 1, signal,
    onStarted: () => {
      timers.push(setTimeout(() => {
        const w = cpuWindow(pids);
        timers.push(setTimeout(() => (cpu = w.end()), o.duration * 1000));
      }, o.warmup * 1000));
    },
  });
  for (const t of timers) clearTimeout(t);
  // The steady window: intervals ending after the warm-up, the last one (the stop) left out.
  const steady = outcome.intervals.filter((i) => i.tS > o.warmup).slice(0, -1);
  const hist = newHistogram();
  for (const i of steady) hist.add(i.hist);
  const deliveredPerSec = steady.length ? steady.reduce((s, i) => s + i.msgsPerSec, 0) / steady.length : 0;
  const c = outcome.counters;
  // The agents' own health in the same window: a busy agent's latencies include its queueing.
  const steadyFrom = outcome.startedAt.getTime() + o.warmup * 1000;
  const steadyTo = steady.at(-1)?.endMs ?? steadyFrom;
  const agents = outcome.agents.map((a) => {
    const snaps = outcome.snapshots.filter((x) => x.agent === a.name && x.atMs > steadyFrom && x.atMs <= steadyTo + 500);
    return {
      cpu: snaps.length ? round(snaps.reduce((sum, x) => sum + x.health.cpu, 0) / snaps.length, 2) : -1,
      loopDelayP99Ms: Math.max(0, ...snaps.map((x) => x.health.loopDelayP99Ms)),
      saturatedSeconds: snaps.filter((x) => x.health.saturated).length,
    };
  });
  const result: ProtocolResult = {
    protocol: name,
    format,
    deliveredPerSec: round(deliveredPerSec),
    deliveredShare: round(deliveredPerSec / expectedPerSec, 3),
    latency: latencySummary(hist),
    steadySeconds: steady.length,
    errors: c.errors,
    gaps: c.gaps,
    connects: c.connects,
    connectFailures: c.connectFailures,
    rejected: c.rejected,
    unplannedCloses: c.unplannedCloses,
    resyncs: c.resyncs,
    connectMs: latencySummary(outcome.connect),
    gatewayCpu: cpu.gateway ?? null,
    serverCpu: cpu.server ?? null,
    agents,
    errorSamples: outcome.agents.flatMap((a) => a.errorSamples).slice(0, 10),
    warnings: outcome.warnings,
  };
  hist.destroy();
  return { result, outcome, scenario: sc };
}

function writeProtocolFiles(dir: string, name: string, outcome: Outcome, sc: Scenario, command: string): void {
  const sub = join(dir, name);
  mkdirSync(sub, { recursive: true });
  writeFileSync(join(sub, 'summary.json'), JSON.stringify(buildSummary(outcome, sc, { command, protocol: name }), null, 2) + '\n');
  writeFileSync(join(sub, 'latency.hlog'), hlogText(outcome));
}

function resultTable(results: ProtocolResult[]): string {
  const base = results.find((r) => r.protocol === 'ws-json');
  const ratio = (v: number, b: number | undefined) => (base && b ? `×${(v / b).toFixed(2)}` : '–');
  const cpu = (v: number | null) => (v === null ? '?' : `${Math.round(v * 100)}%`);
  const head = ['protocol', 'msgs/s', 'vs ws-json', 'p50 ms', 'p99 ms', 'p99.9 ms', 'p99 vs ws-json', 'errors', 'gaps', 'connects', 'gateway CPU', 'agent CPU', 'agent loop p99'];
  const rows = results.map((r) => [
    r.protocol,
    fmtRate(r.deliveredPerSec).replace(' msgs/s', ''),
    ratio(r.deliveredPerSec, base?.deliveredPerSec),
    String(r.latency.p50Ms),
    String(r.latency.p99Ms),
    String(r.latency.p999Ms),
    ratio(r.latency.p99Ms, base?.latency.p99Ms),
    String(r.errors),
    String(r.gaps),
    String(r.connects),
    cpu(r.gatewayCpu),
    r.agents.map((a) => (a.cpu < 0 ? '?' : `${Math.round(a.cpu * 100)}%`)).join(' '),
    r.agents.map((a) => `${a.loopDelayP99Ms} ms${a.saturatedSeconds ? ` (saturated ${a.saturatedSeconds} s)` : ''}`).join(' '),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const o = parseOptions();
  const startedAt = new Date();
  const command = `npm run bench:protocols -- ${process.argv.slice(2).join(' ')}`.trim();
  const plan = planSubscriptions(o.clients, o.symbols, o.topicsPerClient);
  const expectedPerSec = o.rate * plan.totalSubscriptions;
  const machine = machineInfo(ROOT);
  console.log(
    `bench:protocols · ${o.clients} clients × ${o.topicsPerClient} trade streams, ${o.symbols} symbols at ${o.rate} trades/s each → ${fmtRate(expectedPerSec)} expected` +
      ` · ${o.protocols.join(', ')} · ${o.warmup}+${o.duration} s each · ${machine.cpus} CPUs · load ${(machine.loadavgAtStart as number[]).join(' ')}`,
  );

  const abort = new AbortController();
  let cluster: TestCluster | undefined;
  const stopAll = async () => {
    abort.abort();
    await cluster?.stop();
  };
  // A bound on the whole run: per protocol warm-up + duration + agent start, barrier and results.
  const capS = 60 + o.protocols.length * (o.warmup + o.duration + 30);
  const cap = setTimeout(() => {
    console.error(`\nbench:protocols: hard cap of ${capS} s reached; stopping everything`);
    void stopAll().then(() => process.exit(2));
  }, capS * 1000);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`\nbench:protocols: ${sig}: stopping everything`);
      void stopAll().then(() => process.exit(130));
    });
  }

  const dir = join(o.out, `${startedAt.toISOString().replace(/[:.]/g, '-')}-protocols`);
  const results: ProtocolResult[] = [];
  const profiles: Record<string, unknown> = {};
  try {
    cluster = await startCluster({
      servers: 1,
      // Profiling: a gateway per protocol, started below under --cpu-prof.
      gateways: o.profileGateway ? 0 : 1,
      symbols: o.symbols,
      rate: o.rate,
      // Trades only are subscribed; the slower streams stay at their usual pace.
      feed: { tickerMs: 1000, klineMs: 1000, depthSnapshotMs: 1000 },
      // Admission control would only pace the benchmark's own connects.
      gateway: { acceptRate: 100_000 },
    });
    await waitFor(async () => ((await (await fetch(`${cluster!.routerUrl}/v1/symbols`)).json()) as { symbols: string[] }).symbols.length >= o.symbols, 15_000, 'the feed\'s symbols at the router');
    for (const [i, name] of o.protocols.entries()) {
      const profileDir = join(dir, 'profiles', name);
      const gw = o.profileGateway ? await startProfiledGateway(cluster, i + 1, profileDir) : cluster.gateways[0]!;
      const gwAdmin = gw.urls.admin!;
      process.stdout.write(`  ${name.padEnd(12)} `);
      const { result, outcome, scenario } = await runOne(o, cluster, gw, name, plan.clients, expectedPerSec, abort.signal);
      writeProtocolFiles(dir, name, outcome, scenario, command);
      results.push(result);
      console.log(
        `${fmtRate(result.deliveredPerSec)} (${Math.round(result.deliveredShare * 100)}% of expected) · p50 ${result.latency.p50Ms} ms · p99 ${result.latency.p99Ms} ms` +
          ` · errors ${result.errors} · gaps ${result.gaps} · connects ${result.connects}${result.warnings.length ? ` · ${result.warnings.length} warning(s)` : ''}`,
      );
      // The next protocol starts on an empty gateway.
      await waitFor(async () => (await adminJson<{ connections: number }>(`${gwAdmin}/stats`)).connections === 0, 15_000, `the ${name} sessions closed`);
      if (o.profileGateway) {
        // The profile is written as the gateway exits; it deregisters, so the next one is the router's only gateway.
        await gw.kill();
        profiles[name] = profilesIn(profileDir).map((f) => ({ file: f, ...summariseProfile(f, ROOT, 25) }));
      }
    }
  } finally {
    clearTimeout(cap);
    await cluster?.stop();
  }

  const text = resultTable(results);
  const summary = {
    bench: 'protocols',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    command,
    options: o,
    machine,
    plan: { totalSubscriptions: plan.totalSubscriptions, subscribersPerSymbol: [Math.min(...plan.subscribersPerSymbol), Math.max(...plan.subscribersPerSymbol)], expectedPerSec },
    measurement: {
      window: `per protocol: ${o.warmup} s warm-up (connects jittered over the first second), then the per-second intervals up to the run's end, the last one left out`,
      latency: 'client receive time − intended publish time (pt); interval histograms merged; errors, gaps and connects over the whole run',
      cpu: 'gateway and push-server CPU share (1.0 = one core) over the steady window; agents: mean of their per-second snapshots in that window, with the worst event-loop delay p99 (saturated: CPU > 0.9 or loop p99 > 50 ms)',
    },
    results,
    profiles,
    ratiosToWsJson: (() => {
      const base = results.find((r) => r.protocol === 'ws-json');
      if (!base) return null;
      return Object.fromEntries(results.map((r) => [r.protocol, {
        deliveredPerSec: base.deliveredPerSec ? round(r.deliveredPerSec / base.deliveredPerSec, 3) : null,
        p99: base.latency.p99Ms ? round(r.latency.p99Ms / base.latency.p99Ms, 3) : null,
        gatewayCpu: base.gatewayCpu && r.gatewayCpu !== null ? round(r.gatewayCpu / base.gatewayCpu, 3) : null,
      }]));
    })(),
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  writeFileSync(join(dir, 'table.txt'), `${command}\n\n${text}\n`);
  console.log(`\n${text}\n`);
  const trouble = results.filter((r) => r.errors || r.gaps || r.connectFailures || r.warnings.length);
  if (trouble.length) {
    console.log(table(trouble.map((r) => [r.protocol, [...r.errorSamples.slice(0, 3), ...r.warnings.slice(0, 3)].join(' | ') || 'see summary.json'])));
  }
  for (const [name, list] of Object.entries(profiles)) {
    for (const p of list as Array<ReturnType<typeof summariseProfile> & { file: string }>) {
      console.log(`CPU profile gateway (${name}): ${p.busyMs} ms busy of ${p.totalMs} ms sampled; top self time, % of busy`);
      console.log(table(p.functions.slice(0, 15).map((f) => [`${f.pct}%`, `${f.fn}  ${f.where}`])));
    }
  }
  console.log(`report: ${dir}`);
}

/** A gateway under node --cpu-prof, listed at the router before it returns. */
async function startProfiledGateway(cluster: TestCluster, i: number, profileDir: string): Promise<RoleProc> {
  mkdirSync(profileDir, { recursive: true });
  const before = process.env.NODE_OPTIONS;
  process.env.NODE_OPTIONS = `${before ?? ''} --cpu-prof --cpu-prof-dir=${profileDir}`.trim();
  let gw: RoleProc;
  try {
    gw = await cluster.startGateway(i);
  } finally {
    if (before === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = before;
  }
  await waitFor(
    async () => ((await (await fetch(`${cluster.routerUrl}/v1/gateways?protocol=ws`)).json()) as { gateways: { id: string }[] }).gateways.map((g) => g.id).join() === gw.id,
    15_000,
    `${gw.id} alone at the router`,
  );
  return gw;
}

await main();
