// `npm run bench:peers`: market-push side by side with its peers on this
// machine, one load harness for all (issue 13): a bare `ws` server, the
// market-push pipeline, Socket.IO 4 + Redis (separate publisher) and nginx +
// nchan (HTTP publisher). For each repetition and rate, each system in turn
// is started fresh, loaded, measured and stopped; then idle memory per
// connection. Prints a table and writes reports/<time>-peers/{summary.json,
// report.html}. Everything it starts is stopped at the end, on Ctrl-C, on
// error and at the hard time cap.
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoadFleet } from './lib/load-fleet.ts';
import { planSubscriptions } from './lib/subscriptions.ts';
import { cpuWindow } from './lib/proc-cpu.ts';
import { latencySummary, machineInfo, type LatencySummary } from './lib/report.ts';
import { keptUp } from './lib/kept-up.ts';
import { SYSTEMS, startSystem, type PublisherStats, type SystemName } from './lib/peers/systems.ts';
import { nchanUnavailable, nchanVersions } from './lib/peers/nchan.ts';
import { treeRssBytes } from './lib/peers/memory.ts';
import { latencyPlotSvg, reportHtml } from './lib/peers/report-html.ts';
import { cleanupList } from './lib/cleanups.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round = (n: number, d = 0) => Math.round(n * 10 ** d) / 10 ** d;

interface Options {
  clients: number; loadProcs: number; symbols: number; topicsPerClient: number;
  rates: number[]; systems: SystemName[]; repeats: number; warmSeconds: number; measureSeconds: number;
  idleConnections: number; onlyIdle: boolean; idleSettleSeconds: number; nchanWorkers: number; out: string; maxSeconds: number;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: '1000' }, 'load-procs': { type: 'string', default: '4' },
      symbols: { type: 'string', default: '100' }, 'topics-per-client': { type: 'string', default: '10' },
      rates: { type: 'string', default: '25000,50000,100000,200000,400000' }, systems: { type: 'string', default: SYSTEMS.join(',') },
      repeats: { type: 'string', default: '2' }, 'warm-seconds': { type: 'string', default: '5' }, 'measure-seconds': { type: 'string', default: '8' },
      'idle-connections': { type: 'string', default: '10000' }, 'only-idle': { type: 'boolean', default: false }, 'idle-settle': { type: 'string', default: '2' }, 'nchan-workers': { type: 'string', default: '1' },
      out: { type: 'string', default: 'reports' }, 'max-seconds': { type: 'string' }, help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(`usage: npm run bench:peers -- [options]
  --clients N             WebSocket clients during the rate steps (1000)
  --load-procs N          processes holding the client connections (4)
  --symbols S             symbols (100)
  --topics-per-client K   <sym>@trade topics per client (10)
  --rates R1,R2,…         intended delivered msgs/s per step (25000,50000,100000,200000,400000)
  --systems LIST          bare-ws,market-push,socketio,nchan (all)
  --repeats N             repetitions of the whole rate ladder (2)
  --warm-seconds S        seconds at the rate before measuring (5)
  --measure-seconds S     measured seconds per step (8)
  --idle-connections N    idle subscribed connections for memory per connection; 0 skips (10000)
  --only-idle             skip the rate ladder: only the idle-memory phase
  --idle-settle S         seconds between the last idle connect and the RSS reading (2)
  --nchan-workers N       nginx worker_processes (1)
  --out DIR               report root (reports)
  --max-seconds S         hard cap on the whole run (default: computed from the options)`);
    process.exit(0);
  }
  const num = (name: string, v: string | undefined, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number in [${min}, ${max}], got "${v}"`);
    return n;
  };
  const rates = values.rates.split(',').filter(Boolean).map((r) => num('rates', r, 1, 10_000_000));
  if (!rates.length) throw new Error('--rates: give at least one rate');
  const systems = values.systems.split(',').filter(Boolean);
  for (const s of systems) if (!(SYSTEMS as readonly string[]).includes(s)) throw new Error(`--systems: unknown system "${s}" (${SYSTEMS.join(', ')})`);
  const o: Options = {
    clients: Math.floor(num('clients', values.clients, 1, 100_000)),
    loadProcs: Math.floor(num('load-procs', values['load-procs'], 1, 16)),
    symbols: Math.floor(num('symbols', values.symbols, 1, 10_000)),
    topicsPerClient: Math.floor(num('topics-per-client', values['topics-per-client'], 1, 255)),
    rates, systems: systems as SystemName[],
    repeats: Math.floor(num('repeats', values.repeats, 1, 10)),
    warmSeconds: num('warm-seconds', values['warm-seconds'], 0, 120),
    measureSeconds: num('measure-seconds', values['measure-seconds'], 1, 120),
    idleConnections: Math.floor(num('idle-connections', values['idle-connections'], 0, 100_000)),
    onlyIdle: values['only-idle'],
    idleSettleSeconds: num('idle-settle', values['idle-settle'], 0, 300),
    nchanWorkers: Math.floor(num('nchan-workers', values['nchan-workers'], 1, 64)),
    out: resolve(values.out), maxSeconds: 0,
  };
  if (o.onlyIdle && o.idleConnections === 0) throw new Error('--only-idle needs --idle-connections above 0');
  // Per step: start (≤ 30 s with connects) + warm + measure; per system's idle phase: start + connects.
  const steps = o.onlyIdle ? 0 : o.repeats * o.rates.length * o.systems.length;
  const estimate = 60 + steps * (30 + o.warmSeconds + o.measureSeconds) + (o.idleConnections ? o.systems.length * (40 + o.idleSettleSeconds + o.idleConnections / 200) : 0);
  o.maxSeconds = values['max-seconds'] ? num('max-seconds', values['max-seconds'], 10, 14_400) : Math.ceil(estimate);
  return o;
}

// --- everything the run started, stopped in reverse order, once
const { onCleanup, cleanup } = cleanupList();

export interface StepResult {
  system: SystemName; repeat: number; rate: number; expectedPerSec: number; deliveredPerSec: number;
  deliveredShare: number; keptUp: boolean; latency: LatencySummary; connected: number;
  cpu: Record<string, number | null>; systemCores: number | null; msgsPerCpuSecond: number | null; error?: string;
  /** The separate publisher's counts over the step (Socket.IO, nchan): failures are messages the peer never got. */
  publisher?: PublisherStats;
}

async function runStep(o: Options, fleet: LoadFleet, name: SystemName, repeat: number, rate: number, capMs: number): Promise<StepResult> {
  const plan = planSubscriptions(o.clients, o.symbols, o.topicsPerClient);
  const base = { system: name, repeat, rate, expectedPerSec: rate };
  const sys = await startSystem(name, { symbols: plan.symbols, fleet, capMs, onCleanup, nchanWorkers: o.nchanWorkers, maxConnections: Math.max(o.clients, o.idleConnections) });
  try {
    const conn = await sys.connect(plan, 60_000);
    if (conn.open === 0) throw new Error(`no client could connect: ${conn.errors.join('; ')}`);
    await sys.setRate(rate / plan.totalSubscriptions);
    await sleep(o.warmSeconds * 1000);
    await fleet.snap(); // discard the warm-up
    const procs = { ...sys.procs, ...Object.fromEntries(fleet.pids.map((p, i) => [`load-clients-${i + 1}`, p])) };
    const cpu = cpuWindow(procs);
    await sleep(o.measureSeconds * 1000);
    const snap = await fleet.snap();
    const used = cpu.end();
    await sys.setRate(0);
    const latency = latencySummary(snap.hist);
    snap.hist.destroy();
    const publisher = await sys.publisherStats?.();
    const own = Object.keys(sys.procs).map((k) => used[k]);
    const systemCores = own.every((v) => v !== null) ? round(own.reduce<number>((a, v) => a + v!, 0), 2) : null;
    return {
      ...base, deliveredPerSec: round(snap.eventsPerSec), deliveredShare: round(snap.eventsPerSec / rate, 3),
      keptUp: keptUp(snap.eventsPerSec, rate, latency.p99Ms), latency, connected: conn.open, cpu: used, systemCores,
      msgsPerCpuSecond: systemCores ? round(snap.eventsPerSec / systemCores) : null,
      ...(publisher ? { publisher } : {}),
    };
  } finally {
    await sys.stop();
  }
}

export interface IdleMemory {
  system: SystemName; connections: number; perProcess: Record<string, { rssBeforeBytes: number | null; rssAfterBytes: number | null; bytesPerConnection: number | null }>;
  heapBytesPerConnection: number | null; error?: string;
}

async function idleMemory(o: Options, fleet: LoadFleet, name: SystemName, capMs: number): Promise<IdleMemory> {
  const plan = planSubscriptions(o.idleConnections, o.symbols, o.topicsPerClient);
  const sys = await startSystem(name, { symbols: plan.symbols, fleet, capMs, onCleanup, nchanWorkers: o.nchanWorkers, maxConnections: o.idleConnections });
  try {
    await sleep(1_000);
    const before = Object.fromEntries(Object.entries(sys.memProcs).map(([k, pid]) => [k, treeRssBytes(pid) ?? null]));
    const heapBefore = await sys.heapBytes();
    const conn = await sys.connect(plan, 120_000);
    await sleep(o.idleSettleSeconds * 1000);
    const perProcess: IdleMemory['perProcess'] = {};
    for (const [k, pid] of Object.entries(sys.memProcs)) {
      const after = treeRssBytes(pid) ?? null;
      const b = before[k] ?? null;
      perProcess[k] = { rssBeforeBytes: b, rssAfterBytes: after, bytesPerConnection: b !== null && after !== null && conn.open ? round((after - b) / conn.open) : null };
    }
    const heapAfter = await sys.heapBytes();
    return {
      system: name, connections: conn.open, perProcess,
      heapBytesPerConnection: heapBefore !== undefined && heapAfter !== undefined && conn.open ? round((heapAfter - heapBefore) / conn.open) : null,
      ...(conn.failed ? { error: `${conn.failed} connections failed: ${conn.errors.join('; ')}` } : {}),
    };
  } finally {
    await sys.stop();
  }
}

async function main(): Promise<void> {
  let o: Options;
  try {
    o = parseOptions();
  } catch (err) {
    // A bad flag is the user's to fix: the message, not a stack.
    console.error(`bench:peers: ${err instanceof Error ? err.message : String(err)} (see --help)`);
    process.exit(2);
  }
  const startedAt = new Date();
  const capMs = o.maxSeconds * 1000;
  const hardCap = setTimeout(() => {
    console.error(`\nbench:peers: hard cap of ${o.maxSeconds} s reached; stopping everything`);
    void cleanup().then(() => process.exit(2));
  }, capMs);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`\nbench:peers: ${sig}: stopping everything`);
      void cleanup().then(() => process.exit(130));
    });
  }
  const machine = machineInfo(ROOT);
  const unavailable: Record<string, string> = {};
  const why = o.systems.includes('nchan') ? nchanUnavailable() : undefined;
  if (why) {
    unavailable.nchan = why;
    console.error(`\n!!! bench:peers: nchan is NOT measured in this run: ${why} !!!\n`);
  }
  const systems = o.systems.filter((s) => !unavailable[s]);
  console.log(
    `bench:peers · ${systems.join(', ')} · ${o.clients} clients in ${o.loadProcs} processes × ${o.topicsPerClient} topics, ${o.symbols} symbols · rates ${o.rates.join(', ')}/s · ` +
      `${o.repeats} repetitions · ${o.warmSeconds} s warm + ${o.measureSeconds} s measured · ${machine.cpus} CPUs · load ${(machine.loadavgAtStart as number[]).join(' ')} · cap ${o.maxSeconds} s`,
  );
  const fleet = await LoadFleet.start(o.loadProcs, capMs);
  onCleanup('load clients', () => fleet.stop());

  const steps: StepResult[] = [];
  for (let rep = 1; rep <= (o.onlyIdle ? 0 : o.repeats); rep++) {
    for (const rate of o.rates) {
      for (const name of systems) {
        let r: StepResult;
        try {
          r = await runStep(o, fleet, name, rep, rate, capMs);
        } catch (err) {
          const msg = err instanceof Error ? err.message : String(err);
          r = { system: name, repeat: rep, rate, expectedPerSec: rate, deliveredPerSec: 0, deliveredShare: 0, keptUp: false, latency: latencySummary({ totalCount: 0 } as never), connected: 0, cpu: {}, systemCores: null, msgsPerCpuSecond: null, error: msg.slice(0, 300) };
        }
        steps.push(r);
        console.log(
          `  #${rep} ${String(rate).padStart(7)}/s ${name.padEnd(11)} delivered ${String(Math.round(r.deliveredPerSec)).padStart(7)}/s (${Math.round(r.deliveredShare * 100)}%) ` +
            `p50 ${r.latency.p50Ms} p99 ${r.latency.p99Ms} p99.9 ${r.latency.p999Ms} ms  ${r.keptUp ? 'kept up' : 'DID NOT KEEP UP'}  ` +
            `${r.msgsPerCpuSecond ?? '?'} msgs/CPU-s  [${Object.entries(r.cpu).map(([k, v]) => `${k} ${v === null ? '?' : Math.round(v * 100)}%`).join(' · ')}]${r.error ? `  error: ${r.error}` : ''}` +
            (r.publisher?.failures ? `  PUBLISHER FAILURES: ${r.publisher.failures} (${r.publisher.lastError})` : ''),
        );
      }
    }
  }

  const idle: IdleMemory[] = [];
  if (o.idleConnections > 0) {
    console.log(`\nidle memory: ${o.idleConnections} idle subscribed connections per system`);
    for (const name of systems) {
      let m: IdleMemory;
      try {
        m = await idleMemory(o, fleet, name, capMs);
      } catch (err) {
        m = { system: name, connections: 0, perProcess: {}, heapBytesPerConnection: null, error: (err instanceof Error ? err.message : String(err)).slice(0, 300) };
      }
      idle.push(m);
      for (const [k, v] of Object.entries(m.perProcess)) {
        console.log(`  ${k.padEnd(22)} ${m.connections} connections: ${v.bytesPerConnection === null ? '?' : (v.bytesPerConnection / 1024).toFixed(1)} kB RSS per connection${m.heapBytesPerConnection !== null ? ` (heap ${(m.heapBytesPerConnection / 1024).toFixed(1)} kB)` : ''}`);
      }
      if (m.error) console.log(`  ${name}: ${m.error}`);
    }
  }
  await cleanup();
  clearTimeout(hardCap);

  const versions = {
    node: process.version,
    ws: (await import('ws/package.json', { with: { type: 'json' } })).default.version,
    'socket.io': (await import('socket.io/package.json', { with: { type: 'json' } })).default.version,
    'nginx+nchan': unavailable.nchan ? 'not installed' : nchanVersions(),
  };
  const summary = {
    bench: 'peers', startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(),
    command: `npm run bench:peers -- ${process.argv.slice(2).join(' ')}`.trim(),
    options: o, machine, versions, unavailable, keptUpRule: 'delivered ≥ 95 % of intended and p99 ≤ 1000 ms', steps, idleMemory: idle,
  };
  const dir = join(o.out, `${startedAt.toISOString().replace(/[:.]/g, '-')}-peers`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  const header = ['system', 'rep', 'rate/s', 'delivered/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'kept up', 'system cores', 'msgs/CPU-s', 'CPU per process'];
  const rows = steps.map((s) => [s.system, String(s.repeat), String(s.rate), String(Math.round(s.deliveredPerSec)), String(s.latency.p50Ms), String(s.latency.p99Ms), String(s.latency.p999Ms),
    s.keptUp ? 'yes' : s.error ? `no: ${s.error}` : 'no', String(s.systemCores ?? '?'), String(s.msgsPerCpuSecond ?? '?'),
    Object.entries(s.cpu).map(([k, v]) => `${k} ${v === null ? '?' : Math.round(v * 100)}%`).join(', ')]);
  const notes = Object.entries(unavailable).map(([k, v]) => `${k} was NOT measured: ${v}`);
  const idleNotes = idle.flatMap((m) => Object.entries(m.perProcess).map(([k, v]) => `${k}: ${v.bytesPerConnection === null ? '?' : (v.bytesPerConnection / 1024).toFixed(1)} kB RSS per idle connection (${m.connections} connections)`));
  const svg = latencyPlotSvg(steps.filter((s) => s.latency.count > 0).map((s) => ({ system: s.system, rate: s.rate, p99Ms: s.latency.p99Ms, keptUp: s.keptUp })), systems);
  writeFileSync(join(dir, 'report.html'), reportHtml('bench:peers', `${summary.command} · ${summary.startedAt} · ${machine.cpus} CPUs, load at start ${(machine.loadavgAtStart as number[]).join(' ')}`, svg, header, rows, notes, idleNotes));
  console.log(`\n${header.join(' | ')}\n${rows.map((r) => r.join(' | ')).join('\n')}`);
  for (const n of notes) console.error(`!!! ${n}`);
  console.log(`report: ${dir}`);
}

main().catch(async (err: unknown) => {
  console.error(`bench:peers failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  await cleanup();
  process.exit(1);
});
