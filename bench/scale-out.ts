// `npm run bench:scale-out`: the shape of scale-out on one machine (issue 17).
// For N in --gateways-list (1, 2, 4): `pushctl up --isolate` with N gateways
// and a fixed number of servers, each gateway confined by a cgroup to the same
// CPU share (--gateway-cpu of one core), the same load on every gateway (one
// load process per gateway, C clients × K <sym>@trade streams, connected to
// that gateway's advertised ws URL) at a fixed feed rate. Per step: delivered
// msgs/s per gateway (mean, min), end-to-end p50/p99 (receive − pt), CPU of
// every process, and each step's ratio to the one with fewest gateways. Scale-out is flat when
// those ratios stay within 10 %. A non-gateway process near a full core is
// flagged: on 2 cores that is this machine's shared bottleneck, not the
// design's. Writes reports/<time>-scale-out/summary.json. Everything it starts
// (clusters, namespaces, load processes, cgroups) is removed at the end, on
// Ctrl-C and on error; every loop is bounded in count and time.
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { pushctl } from '../test/helpers/pushctl.ts';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'hdr-histogram-js';
import { cleanupList } from './lib/cleanups.ts';
import { LoadFleet } from './lib/load-fleet.ts';
import { planSubscriptions, streamUrl } from './lib/subscriptions.ts';
import { cpuWindow, processTree } from './lib/proc-cpu.ts';
import { createCpuGroups, type CpuGroup } from './lib/cpu-cgroup.ts';
import { hostCpuWindow } from './lib/host-cpu.ts';
import { latencySummary, machineInfo, type LatencySummary } from './lib/report.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round = (n: number, d = 0) => Math.round(n * 10 ** d) / 10 ** d;
/** A non-gateway process at or over this share of one core is the machine's bottleneck. */
const NEAR_FULL_CORE = 0.9;
/** The bound: per-gateway msgs/s and p99 within 10 % of the 1-gateway step. */
const FLAT_WITHIN = 0.1;

const { values } = parseArgs({
  options: {
    'gateways-list': { type: 'string', default: '1,2,4' },
    servers: { type: 'string', default: '2' },
    'gateway-cpu': { type: 'string', default: '0.2' },
    clients: { type: 'string', default: '100' },
    streams: { type: 'string', default: '5' },
    symbols: { type: 'string', default: '20' },
    rate: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '10' },
    'max-seconds': { type: 'string', default: '900' },
    out: { type: 'string', default: 'reports' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (values.help) {
  console.log(`usage: npm run bench:scale-out -- [options]   (root: namespaces and cgroups)
  --gateways-list 1,2,4  gateway counts, one cluster each
  --servers S            push-servers, the same in every step (2)
  --gateway-cpu F        each gateway's CPU quota, share of one core (0.2)
  --clients C            clients per gateway (100)
  --streams K            <sym>@trade streams per client (5)
  --symbols S            symbols the feed simulates (20)
  --rate R               trades/s per symbol (10): C·K·R msgs/s per gateway
  --seconds S            measured seconds per step (15)
  --warmup S             seconds after connecting before measuring (10)
  --max-seconds S        hard cap on the whole run (900)
  --out DIR              report root (reports)`);
  process.exit(0);
}
function num(name: string, min: number, max: number, integer = true): number {
  const v = Number(values[name as keyof typeof values]);
  if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) throw new Error(`--${name} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got "${String(values[name as keyof typeof values])}"`);
  return v;
}
const gatewaysList = values['gateways-list'].split(',').map((s) => Number(s.trim()));
if (gatewaysList.length === 0 || gatewaysList.length > 8 || gatewaysList.some((n) => !Number.isInteger(n) || n < 1 || n > 16))
  throw new Error(`--gateways-list must be 1 to 8 integers in [1, 16], got "${values['gateways-list']}"`);
const o = {
  gatewaysList,
  servers: num('servers', 1, 16),
  gatewayCpu: num('gateway-cpu', 0.01, 2, false),
  clients: num('clients', 1, 5_000),
  streams: num('streams', 1, 100),
  symbols: num('symbols', 1, 1_000),
  rate: num('rate', 1, 10_000),
  seconds: num('seconds', 1, 600),
  warmup: num('warmup', 0, 120),
  maxSeconds: num('max-seconds', 30, 7_200),
};
if (o.streams > o.symbols) throw new Error(`--streams (${o.streams}) cannot exceed --symbols (${o.symbols})`);
if (process.getuid?.() !== 0) throw new Error('bench:scale-out needs root: `pushctl up --isolate` builds network namespaces and the gateways get cgroup CPU quotas');
const expectedPerGateway = o.clients * o.streams * o.rate;

const hardCap = setTimeout(() => {
  console.error(`bench:scale-out: over --max-seconds ${o.maxSeconds}; stopping`);
  void stopAll().then(() => process.exit(1));
}, o.maxSeconds * 1000);
// The running step's own cleanups (pushctl down can take longer than one bounded cleanup entry allows).
let stepInFlight: (() => Promise<void>) | undefined;
const stopAll = async () => {
  await stepInFlight?.();
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void stopAll().then(() => process.exit(130)));

interface UpSummary {
  gateways: Array<{ id: string; ws: string }>;
  pids: Record<string, number>;
}

interface Step {
  gateways: number;
  expectedPerGateway: number;
  perGatewayMsgsPerSec: number[];
  meanPerGateway: number;
  minPerGateway: number;
  deliveredShare: number;
  latency: LatencySummary;
  perGatewayP99Ms: number[];
  cpu: Record<string, number | null>;
  /** Share of cgroup periods each gateway ran out of quota over the window. */
  throttledShare: Record<string, number>;
  /** Non-gateway processes at or over NEAR_FULL_CORE of a core: the 2-core machine's bottleneck. */
  sharedBottlenecks: string[];
  /** The whole machine's busy CPU (cores), this run's processes' share of it, and the 1-minute load average at the end. */
  hostCpu: number | null;
  benchCpu: number;
  loadavg1: number;
  /** The machine was at least NEAR_FULL_CORE busy on every core: processes waited for a CPU, whoever's work it was. */
  machineSaturated: boolean;
  connectFailed: number;
  resyncs: number;
  closed: number;
  ratioMsgsPerSec?: number;
  ratioP99?: number;
}

async function runStep(n: number): Promise<Step> {
  // Load processes, cgroups and a pending `up` in a bounded cleanup list; then `pushctl down` (slower than
  // that list's bound under load) and the data dir, which stays when down failed so it can be run again.
  const { onCleanup: stepCleanup, cleanup: stepDone } = cleanupList();
  const dataDir = mkdtempSync(join(tmpdir(), 'mp-scaleout-'));
  let finished: Promise<void> | undefined;
  const finish = () =>
    (finished ??= (async () => {
      await stepDone();
      if (existsSync(join(dataDir, 'cluster.json'))) {
        const r = await pushctl(['down', '--data-dir', dataDir], { timeoutMs: 120_000, stopSignal: 'SIGINT' });
        if (r.code !== 0) {
          console.error(`pushctl down exited ${r.code}; run \`pushctl down --data-dir ${dataDir}\` again: ${(r.stderr + r.stdout).slice(-1000)}`);
          return;
        }
      }
      rmSync(dataDir, { recursive: true, force: true });
    })());
  stepInFlight = finish;
  try {
    // Interrupted while starting: `up` undoes what it started on SIGINT (before down runs).
    let upChild: ChildProcess | undefined;
    stepCleanup('pushctl up', async () => {
      if (!upChild || upChild.exitCode !== null || upChild.signalCode !== null) return;
      const gone = new Promise((r) => upChild!.once('exit', r));
      upChild.kill('SIGINT');
      await gone;
    });
    const t0 = performance.now();
    const up = await pushctl(
      ['up', '--isolate', '--detach', '--json', '--port-base', '0', '--gateways', String(n), '--servers', String(o.servers),
        '--symbols', String(o.symbols), '--rate', String(o.rate), '--users', '0', '--history-procs', '0', '--data-dir', dataDir],
      // SIGINT first at the timeout: `up` undoes what it started.
      { timeoutMs: 180_000, stopSignal: 'SIGINT', onSpawn: (c) => (upChild = c) },
    );
    if (up.code !== 0) throw new Error(`pushctl up exited ${up.code}: ${(up.stderr + up.stdout).slice(-2000)}`);
    const summary = JSON.parse(up.stdout.trim().split('\n').pop()!) as UpSummary;
    console.log(`  ${n} gateway(s): cluster up in ${round((performance.now() - t0) / 1000, 1)} s`);

    // Same CPU share for every gateway (and every thread and child of it).
    const groups = createCpuGroups(`mp-scaleout-${process.pid}-${n}`);
    stepCleanup('gateway cgroups', async () => groups.remove());
    const gwGroups: CpuGroup[] = summary.gateways.map((g, i) => {
      const grp = groups.child(`gw-${i + 1}`, o.gatewayCpu);
      const pid = summary.pids[g.id];
      if (!pid) throw new Error(`pushctl up --json gave no pid for ${g.id}`);
      grp.add(processTree(pid));
      return grp;
    });

    // One load process per gateway, the same clients and streams on each.
    const plan = planSubscriptions(o.clients, o.symbols, o.streams);
    const maxMs = (o.maxSeconds + 60) * 1000;
    const fleets: LoadFleet[] = [];
    for (let i = 0; i < n; i++) {
      const fleet = await LoadFleet.start(1, maxMs);
      fleets.push(fleet);
      stepCleanup(`load-${i + 1}`, () => fleet.stop());
    }
    const connects = await Promise.all(fleets.map((f, i) => f.connect(plan.clients.map((s) => streamUrl(summary.gateways[i]!.ws, s, 'json')), 60_000)));
    const connectFailed = connects.reduce((a, c) => a + c.failed, 0);
    if (connectFailed > 0) console.warn(`  ${connectFailed} connection(s) failed: ${connects.flatMap((c) => c.errors).slice(0, 3).join('; ')}`);
    await sleep(o.warmup * 1000);

    // The window: discard what came before, then CPU and counts over --seconds.
    await Promise.all(fleets.map((f) => f.snap().then((s) => s.hist.destroy())));
    const procs: Record<string, number> = { ...summary.pids };
    fleets.forEach((f, i) => (procs[`load-${i + 1}`] = f.pids[0]!));
    const throttle0 = gwGroups.map((g) => g.throttled());
    const cpu = cpuWindow(procs);
    const host = hostCpuWindow(cpus().length);
    await sleep(o.seconds * 1000);
    const snaps = await Promise.all(fleets.map((f) => f.snap()));
    const cpuShares = cpu.end();
    const hostCpu = host.end();
    const benchCpu = round(Object.values(cpuShares).reduce<number>((a, v) => a + (v ?? 0), 0), 2);
    const throttledShare: Record<string, number> = {};
    gwGroups.forEach((g, i) => {
      const t = g.throttled();
      const periods = t.periods - throttle0[i]!.periods;
      throttledShare[summary.gateways[i]!.id] = periods > 0 ? round((t.throttledPeriods - throttle0[i]!.throttledPeriods) / periods, 2) : 0;
    });

    const merged = build({ numberOfSignificantValueDigits: 3 });
    for (const s of snaps) merged.add(s.hist);
    const perGateway = snaps.map((s) => round(s.eventsPerSec));
    const perGatewayP99Ms = snaps.map((s) => latencySummary(s.hist).p99Ms);
    const latency = latencySummary(merged);
    for (const s of snaps) s.hist.destroy();
    merged.destroy();
    const mean = perGateway.reduce((a, b) => a + b, 0) / n;
    const sharedBottlenecks = Object.entries(cpuShares)
      .filter(([name, v]) => !name.startsWith('gateway-') && v !== null && v >= NEAR_FULL_CORE)
      .map(([name, v]) => `${name} ${Math.round(v! * 100)}%`);
    return {
      gateways: n,
      expectedPerGateway,
      perGatewayMsgsPerSec: perGateway,
      meanPerGateway: round(mean),
      minPerGateway: Math.min(...perGateway),
      deliveredShare: round(mean / expectedPerGateway, 3),
      latency,
      perGatewayP99Ms,
      cpu: cpuShares,
      throttledShare,
      sharedBottlenecks,
      hostCpu,
      benchCpu,
      loadavg1: round(loadavg()[0]!, 2),
      machineSaturated: hostCpu !== null && hostCpu >= NEAR_FULL_CORE * cpus().length,
      connectFailed,
      resyncs: snaps.reduce((a, s) => a + s.resyncs, 0),
      closed: snaps.reduce((a, s) => a + s.closed, 0),
    };
  } finally {
    await finish();
    stepInFlight = undefined;
  }
}

const pct = (v: number | null | undefined) => (v === null || v === undefined ? '?' : `${Math.round(v * 100)}%`);
/** CPU of a role family: the gateways' mean and max, the others summed over their processes. */
function cpuLine(cpu: Record<string, number | null>): string {
  const fam = (prefix: string) => Object.entries(cpu).filter(([k]) => k === prefix || k.startsWith(`${prefix}-`)).map(([, v]) => v ?? 0);
  const gw = fam('gateway');
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return [
    `gateways ${pct(sum(gw) / gw.length)} each (max ${pct(Math.max(...gw))})`,
    `servers ${fam('server').map((v) => pct(v)).join('+')}`,
    `nats ${pct(cpu.nats)}`,
    `redis ${pct(cpu.redis)}`,
    `router ${pct(sum(fam('router')))}`,
    `control ${pct(sum(fam('control')))}`,
    `feed ${pct(sum(fam('feed')))}`,
    `load ${fam('load').map((v) => pct(v)).join('+')}`,
  ].join(' · ');
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const machine = machineInfo(ROOT);
  console.log(`bench:scale-out: ${o.gatewaysList.join(', ')} gateways at ${o.gatewayCpu} core each, ${o.servers} servers; per gateway ${o.clients} clients × ${o.streams} streams at ${o.rate} trades/s/symbol = ${expectedPerGateway} msgs/s expected; load average ${(machine.loadavgAtStart as number[]).join(' ')}`);
  const steps: Step[] = [];
  for (const n of o.gatewaysList) {
    const s = await runStep(n);
    steps.push(s);
    console.log(`  ${n} gateway(s): ${s.meanPerGateway} msgs/s per gateway (min ${s.minPerGateway}, ${round(s.deliveredShare * 100, 1)} % of expected) · p50 ${s.latency.p50Ms} ms · p99 ${s.latency.p99Ms} ms`);
    console.log(`    cpu: ${cpuLine(s.cpu)}; gateway quota hit in ${Object.values(s.throttledShare).map(pct).join(', ')} of periods`);
    console.log(`    machine: ${s.hostCpu ?? '?'} of ${cpus().length} cores busy, ${s.benchCpu} of them this run's processes; load average ${s.loadavg1}${s.machineSaturated ? ' — MACHINE SATURATED: processes queued for a CPU (others\' work included), latency is not the design\'s' : ''}`);
    if (s.sharedBottlenecks.length) console.log(`    SHARED BOTTLENECK of this 2-core machine (not a gateway): ${s.sharedBottlenecks.join(', ')}`);
  }
  // Ratios to the step with the fewest gateways (the 1-gateway step by default), whatever the order of the list.
  const base = steps.reduce((a, b) => (b.gateways < a.gateways ? b : a));
  for (const s of steps) {
    s.ratioMsgsPerSec = round(s.meanPerGateway / base.meanPerGateway, 3);
    s.ratioP99 = base.latency.p99Ms > 0 ? round(s.latency.p99Ms / base.latency.p99Ms, 3) : 0;
  }
  const flat = steps.every((s) => Math.abs(1 - (s.ratioMsgsPerSec ?? 1)) <= FLAT_WITHIN && Math.abs(1 - (s.ratioP99 ?? 1)) <= FLAT_WITHIN);
  console.log('\n| gateways | msgs/s per gateway (mean / min) | of expected | p50 ms | p99 ms | × msgs/s | × p99 | CPU (share of one core) | machine busy (this run) · load avg | shared bottleneck |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const s of steps)
    console.log(`| ${s.gateways} | ${s.meanPerGateway} / ${s.minPerGateway} | ${round(s.deliveredShare * 100, 1)} % | ${s.latency.p50Ms} | ${s.latency.p99Ms} | ${s.ratioMsgsPerSec} | ${s.ratioP99} | ${cpuLine(s.cpu)} | ${s.hostCpu ?? '?'} (${s.benchCpu}) cores · ${s.loadavg1} | ${[...s.sharedBottlenecks, ...(s.machineSaturated ? ['machine saturated'] : [])].join(', ') || '—'} |`);
  console.log(`\nflat within ${FLAT_WITHIN * 100} % (msgs/s and p99 per gateway vs ${base.gateways} gateway(s)): ${flat ? 'yes' : 'NO'}`);
  const dir = join(resolve(values.out!), `${startedAt.toISOString().replace(/[:.]/g, '-')}-scale-out`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'summary.json'), JSON.stringify({ bench: 'scale-out', options: o, expectedPerGateway, machine, flatWithin: FLAT_WITHIN, flat, steps }, null, 2) + '\n');
  console.log(`report: ${join(dir, 'summary.json')}`);
}

try {
  await main();
} finally {
  clearTimeout(hardCap);
  await stopAll();
}
