// `npm run bench:idle`: what an idle cluster costs (issue 13: under 0.05
// cores). Each run starts a real cluster with `pushctl up --detach` and its
// defaults (sizing included) but a feed that publishes nothing
// (`--silent-feed`), connects --clients WebSocket clients in a separate load
// process, each subscribed to --streams streams, waits --settle seconds, and
// measures every process's CPU (utime + stime, /proc/<pid>/stat) over
// --seconds. Cores = CPU-seconds ÷ wall-seconds, per process, per role and in
// total; with --runs N the medians of N fresh clusters. Writes
// reports/<time>-idle/summary.json. --cpu-prof adds each node role's hottest
// functions within the measured window. The cluster is stopped with
// `pushctl down` at the end, on Ctrl-C, on error and at the time cap.
import { parseArgs } from 'node:util';
import { pushctl } from '../test/helpers/pushctl.ts';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoadFleet } from './lib/load-fleet.ts';
import { planSubscriptions, streamUrl } from './lib/subscriptions.ts';
import { cpuWindow } from './lib/proc-cpu.ts';
import { machineInfo, table } from './lib/report.ts';
import { profilesIn, summariseProfile, type HotFunction } from './lib/cpu-profile.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round = (n: number, d = 4) => Math.round(n * 10 ** d) / 10 ** d;
// The goal of issue 13, printed against the measured total.
const GOAL_CORES = 0.05;

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    streams: { type: 'string', default: '3' },
    symbols: { type: 'string', default: '20' },
    'load-procs': { type: 'string', default: '1' },
    settle: { type: 'string', default: '30' },
    seconds: { type: 'string', default: '30' },
    runs: { type: 'string', default: '1' },
    'up-args': { type: 'string', default: '' },
    'cpu-prof': { type: 'boolean', default: false },
    out: { type: 'string', default: 'reports' },
    'max-seconds': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (values.help) {
  console.log(`usage: npm run bench:idle -- [options]
  --clients N       idle WebSocket clients (1000)
  --streams K       <sym>@trade streams per client (3)
  --symbols S       symbols the (silent) feed has, passed to up (20, up's default)
  --load-procs N    processes holding the clients (1)
  --settle S        seconds between the last connect and the window (30: V8's after-load GCs are over)
  --seconds S       measured seconds (30)
  --runs N          fresh clusters, one after another; medians reported (1)
  --up-args "…"     extra pushctl up flags, e.g. "--gateways 1 --servers 1"
  --cpu-prof        profile every node role (node --cpu-prof); hottest functions in the window
  --out DIR         report root (reports)
  --max-seconds S   hard cap on the whole run (default: computed)`);
  process.exit(0);
}
const int = (k: 'clients' | 'streams' | 'symbols' | 'load-procs' | 'settle' | 'seconds' | 'runs', min: number) => {
  const n = Number(values[k]);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${k} must be an integer ≥ ${min}, got ${values[k]}`);
  return n;
};
const o = {
  clients: int('clients', 0), streams: int('streams', 1), symbols: int('symbols', 1), loadProcs: int('load-procs', 1),
  settle: int('settle', 0), seconds: int('seconds', 1), runs: int('runs', 1),
  upArgs: values['up-args']!.split(/\s+/).filter(Boolean), cpuProf: values['cpu-prof']!,
};
if (o.streams > o.symbols) throw new Error(`--streams (${o.streams}) cannot exceed --symbols (${o.symbols})`);
const maxSeconds = values['max-seconds'] !== undefined ? Number(values['max-seconds']) : o.runs * (o.settle + o.seconds + 180);
if (!(maxSeconds > 0)) throw new Error(`--max-seconds must be a positive number, got ${values['max-seconds']}`);

interface UpJson {
  gateways: Array<{ id: string; ws: string }>;
  pids: Record<string, number>;
}
interface RunResult {
  processes: Record<string, number | null>;
  roles: Record<string, number>;
  total: number;
  loadClients: number | null;
  open: number;
  hot?: Record<string, { busyMs: number; functions: HotFunction[] }>;
  /** The window on CLOCK_MONOTONIC (µs), to cut the profiles with other tools; and the role pids. */
  windowUs: { fromUs: number; toUs: number };
  pids: Record<string, number>;
}

/** Runs `pushctl ARGS` to completion (bounded); its stdout, or an error with its output. */
async function pushctlOut(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  const r = await pushctl(args, { env, timeoutMs });
  if (r.code !== 0) throw new Error(`pushctl ${args[0]} exited with ${r.code}:\n${r.stderr.slice(-3000)}${r.stdout.slice(-1000)}`);
  return r.stdout;
}

/** Role of a process id from the up plan: gateway-2 → gateway. */
const roleOf = (id: string) => id.replace(/-\d+$/, '');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * A role writes its profile as it exits, which on a busy machine can outlast
 * down's 5 s grace (then SIGKILL, and no profile): node roles are sent
 * SIGTERM first and given up to 60 s. nats-server and redis-server stay for down.
 */
async function stopRolesForProfiles(pids: Record<string, number>): Promise<void> {
  const roles = Object.entries(pids).filter(([id]) => id !== 'nats' && id !== 'redis' && !id.startsWith('nats-') && !id.startsWith('redis-'));
  for (const [, pid] of roles) if (alive(pid)) process.kill(pid, 'SIGTERM');
  const until = Date.now() + 60_000;
  while (Date.now() < until && roles.some(([, pid]) => alive(pid))) await sleep(200);
}

/** Microseconds on CLOCK_MONOTONIC, the clock V8's profile timestamps use on Linux. */
const monoUs = () => Number(process.hrtime.bigint() / 1000n);

// What the current run started: stopped at its end, on Ctrl-C and at the time cap.
let stopCurrent: (() => Promise<void>) | undefined;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * `pushctl down`, given as long as a loaded machine needs (it stops tier by
 * tier, 5 s grace each); then whatever it left is signalled by pid, so no
 * cluster outlives the run. The data dir goes last: down reads its state file.
 */
async function stopCluster(dataDir: string, pids: Record<string, number>): Promise<void> {
  try {
    await pushctlOut(['down', '--data-dir', dataDir], process.env, 180_000);
  } catch (err) {
    console.error(`bench:idle: ${(err as Error).message}`);
  }
  const left = Object.values(pids).filter(alive);
  for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
    if (left.length === 0) break;
    console.error(`bench:idle: ${sig} to what down left: ${left.join(', ')}`);
    for (const pid of left) process.kill(pid, sig);
    for (let i = 0; i < 100 && left.some(alive); i++) await sleep(100);
    left.splice(0, left.length, ...left.filter(alive));
  }
  rmSync(dataDir, { recursive: true, force: true });
}

async function oneRun(run: number, reportDir: string): Promise<RunResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mp-bench-idle-'));
  let pids: Record<string, number> = {};
  let fleet: LoadFleet | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= (async () => {
    await fleet?.stop();
    await stopCluster(dataDir, pids);
  })());
  stopCurrent = stop;
  const profDir = join(reportDir, `profiles-run-${run}`);
  const env = { ...process.env };
  if (o.cpuProf) {
    mkdirSync(profDir, { recursive: true });
    // A sample per 2 ms: less overhead than the default 1 ms, and smaller profiles to write at exit.
    env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-interval=2000 --cpu-prof-dir=${profDir}`.trim();
  }
  try {
    const upOut = await pushctlOut(['up', '--detach', '--json', '--port-base', '0', '--silent-feed', '--symbols', String(o.symbols), '--data-dir', dataDir, ...o.upArgs], env, 180_000);
    const up = JSON.parse(upOut.trim().split('\n').at(-1)!) as UpJson;
    pids = up.pids;
    if (up.gateways.length === 0) throw new Error('the cluster has no gateways');
    console.log(`run ${run}: cluster up: ${Object.keys(pids).join(', ')}`);

    fleet = await LoadFleet.start(o.loadProcs, (o.settle + o.seconds + 120) * 1000);
    const plan = planSubscriptions(o.clients, o.symbols, o.streams);
    // Round-robin over the gateways, as the router hands them out.
    const urls = plan.clients.map((streams, i) => streamUrl(up.gateways[i % up.gateways.length]!.ws, streams, 'json'));
    const c = await fleet.connect(urls, 120_000);
    if (c.failed > 0) throw new Error(`${c.failed} of ${o.clients} clients could not connect: ${c.errors.join('; ')}`);
    console.log(`run ${run}: ${c.open} clients connected in ${c.ms} ms; settling ${o.settle} s`);
    await sleep(o.settle * 1000);

    const fromUs = monoUs();
    // Idle figures are small: four decimals (a 30 s window resolves 0.0003 cores at 100 ticks/s).
    const w = cpuWindow({ ...pids, ...Object.fromEntries(fleet.pids.map((p, i) => [`load-clients-${i + 1}`, p])) }, 4);
    await sleep(o.seconds * 1000);
    const cores = w.end();
    const toUs = monoUs();
    const snap = await fleet.snap();
    if (snap.events > 0) console.warn(`run ${run}: clients received ${snap.events} events: the cluster was not idle`);
    const processes: Record<string, number | null> = {};
    const roles: Record<string, number> = {};
    let total = 0;
    let load: number | null = 0;
    for (const [id, v] of Object.entries(cores)) {
      if (id.startsWith('load-clients-')) {
        load = v === null || load === null ? null : load + v;
        continue;
      }
      processes[id] = v;
      if (v === null) continue;
      roles[roleOf(id)] = round((roles[roleOf(id)] ?? 0) + v);
      total += v;
    }
    await fleet.stop();
    if (o.cpuProf) await stopRolesForProfiles(pids);
    await stop();
    const result: RunResult = { processes, roles, total: round(total), loadClients: load, open: snap.open, windowUs: { fromUs, toUs }, pids };
    if (o.cpuProf) {
      result.hot = {};
      const byPid = new Map(Object.entries(pids).map(([id, pid]) => [pid, id]));
      for (const file of profilesIn(profDir)) {
        const pid = Number(/CPU\.\d+\.\d+\.(\d+)\./.exec(file)?.[1]);
        const id = byPid.get(pid);
        if (!id) continue;
        const s = summariseProfile(file, ROOT, 12, { fromUs, toUs });
        result.hot[id] = { busyMs: s.busyMs, functions: s.functions };
      }
    }
    return result;
  } finally {
    await stop();
  }
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const reportDir = resolve(ROOT, values.out!, `${startedAt.toISOString().replace(/[:.]/g, '-')}-idle`);
  mkdirSync(reportDir, { recursive: true });
  const runs: RunResult[] = [];
  for (let r = 1; r <= o.runs; r++) {
    const res = await oneRun(r, reportDir);
    runs.push(res);
    console.log(`run ${r}: total ${res.total} cores  [${Object.entries(res.roles).map(([k, v]) => `${k} ${v}`).join(' · ')}]  load clients ${res.loadClients}`);
  }
  const roleNames = [...new Set(runs.flatMap((r) => Object.keys(r.roles)))].sort();
  const procNames = [...new Set(runs.flatMap((r) => Object.keys(r.processes)))].sort();
  const med = (pick: (r: RunResult) => number | null | undefined) => {
    const xs = runs.map(pick).filter((x): x is number => typeof x === 'number');
    return xs.length ? round(median(xs)) : null;
  };
  const summary = {
    bench: 'idle',
    goalCores: GOAL_CORES,
    options: { ...o, maxSeconds },
    machine: machineInfo(ROOT),
    median: {
      totalCores: med((r) => r.total),
      roles: Object.fromEntries(roleNames.map((n) => [n, med((r) => r.roles[n] ?? 0)])),
      processes: Object.fromEntries(procNames.map((n) => [n, med((r) => r.processes[n])])),
      loadClientsCores: med((r) => r.loadClients),
    },
    runs,
  };
  writeFileSync(join(reportDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  console.log(`\nidle cluster, ${o.clients} clients × ${o.streams} streams, ${o.seconds} s window, median of ${o.runs} run(s), cores (1.0 = one CPU):`);
  console.log(table([
    ...roleNames.map((n): [string, string] => [n, String(summary.median.roles[n])]),
    ['total', `${summary.median.totalCores}  (goal < ${GOAL_CORES}: ${summary.median.totalCores !== null && summary.median.totalCores < GOAL_CORES ? 'met' : 'NOT met'})`],
    ['(load clients)', String(summary.median.loadClientsCores)],
  ]));
  for (const [id, h] of Object.entries(runs.at(-1)?.hot ?? {})) {
    console.log(`\n${id}: ${h.busyMs} ms busy in the window`);
    for (const f of h.functions.slice(0, 8)) console.log(`  ${String(f.selfMs).padStart(6)} ms  ${f.pct}%  ${f.fn}  ${f.where}`);
  }
  console.log(`report: ${join(reportDir, 'summary.json')}`);
}

const bail = (why: string, code: number) => {
  console.error(`bench:idle: ${why}; stopping the cluster`);
  void (stopCurrent?.() ?? Promise.resolve()).then(() => process.exit(code));
};
const hardCap = setTimeout(() => bail(`over --max-seconds ${maxSeconds}`, 1), maxSeconds * 1000);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => bail(sig, 130));
try {
  await main();
} finally {
  clearTimeout(hardCap);
}
