// `npm run bench:fanout`: how close the full push pipeline comes to a bare
// WebSocket broadcaster on this machine, in one run (issue 2).
//   (a) raw: a plain `ws` server writing prepared frames to C clients;
//   (b) pipeline: feed → NATS → push-server → push-gateway → the same C
//       clients with the same subscriptions.
// Prints delivered msgs/s of each, b/a, and end-to-end latency (intended
// publish time → client receipt) at half of (b)'s saturated rate; writes
// reports/<time>-fanout/{summary.json,latency.hlog}. Everything it starts is
// stopped at the end, on Ctrl-C, on error, and at the hard time cap.
// --mix (issue 14): each subscription's stream kind follows weights
// (lib/stream-mix.ts); the feed's trade rate stays the search's knob, and the
// expected deliveries per step are Σ subscriptions × that kind's frames/s at
// the rate (tickers keep their 1 s cadence, depth@100ms ≤ 10/s, …). Fairness:
// (b) runs first; (a) then replays the pipeline's own frames at (b)'s
// saturated rate (lib/mix-tape.ts: the feed's simulator in virtual time, the
// gateway's codec), so both send the same kinds, proportions and sizes.
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, decodeFromCompressedBase64 } from 'hdr-histogram-js';
import { getJson, parsePins, pinProcs, startPipeline } from './lib/pipeline.ts';
import { cleanupList } from './lib/cleanups.ts';
import { BenchChild } from './lib/child.ts';
import { LoadFleet, type FleetSnap } from './lib/load-fleet.ts';
import { keptUp, MAX_STEP_P99_MS, MIN_DELIVERED_SHARE } from './lib/kept-up.ts';
import { planSubscriptions, streamUrl, type SubscriptionPlan } from './lib/subscriptions.ts';
import { expectedMixPerSec, parseMix, planMixSubscriptions, type MixPlan } from './lib/stream-mix.ts';
import { cpuWindow, writesWindow } from './lib/proc-cpu.ts';
import { hostCpuWindow } from './lib/host-cpu.ts';
import { findBottleneck, type Bottleneck } from './lib/bottleneck.ts';
import { profilesIn, summariseProfile } from './lib/cpu-profile.ts';
import type { RawStopReply } from './lib/raw-broadcast-server.ts';
import {
  fmtCpu, fmtLatency, fmtRate, latencySummary, machineInfo, table, writeReport,
  type IntervalHistogram, type LatencySummary,
} from './lib/report.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RAW_ENTRY = join(ROOT, 'bench', 'lib', 'raw-broadcast-server.ts');

// Saturation search: a step kept up by the shared rule (lib/kept-up.ts: at
// least 95 % of the expected messages arrived and p99 stayed under 1 s; a
// growing backlog shows as both). Only steps that kept up count as the saturated rate: an
// overloaded step can deliver a burst of backlog (over 100 % of its rate) at
// seconds of latency, which is not a rate the pipeline sustains.
// After an overload, "recovered" means keeping up again at an ordinary latency.
const RECOVERED_P99_MS = 100;
const SETTLE_MS = 1_000;
/** Every CPU of the machine: /proc/stat's busy share scales by these (not by a cgroup quota). */
const HOST_CPUS = cpus().length;
const RECOVER_MAX_MS = 15_000;
const REFINE_STEPS = 3;
// Raw baseline credit: ~200 KB of frames in flight per socket at most, so the
// kernel's loopback buffers (MBs per socket, shared memory) never fill up.
const RAW_ACK_EVERY = 64;
const RAW_WINDOW = 1024;
// The feed's cadences as lib/pipeline.ts starts it (the mix's per-kind rates follow from them).
const CADENCES = { tickerMs: 1000, klineMs: 1000, depthSnapshotMs: 1000 };
// The raw server's mix tape: up to this many virtual seconds / frames.
const TAPE_SECONDS = 4;
const TAPE_MAX_ENTRIES = 200_000;

interface Options {
  clients: number;
  symbols: number;
  topicsPerClient: number;
  duration: number;
  format: 'json' | 'protobuf';
  out: string;
  loadProcs: number;
  stepSeconds: number;
  startRate: number;
  maxSteps: number;
  phases: Set<'raw' | 'pipeline'>;
  profile: Set<string>;
  maxSeconds: number;
  /** CPU affinity per process name prefix (gateway, load-clients, nats, feed, server…); the raw server takes the gateway's. */
  pin: Record<string, string>;
  /** Skip the saturation search: measure latency at this rate (trades/s/sym) only. */
  latencyRate?: number;
  /** Gateway flushIntervalMs and feed publishIntervalMs; unset: the roles' defaults. */
  flushMs?: number;
  publishMs?: number;
  /** --mix spec as given (undefined: trade streams only, as before). */
  mix?: string;
  /** --mix with --phases raw: the trade rate whose frames the raw phase replays. */
  rawRate?: number;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: '1000' },
      symbols: { type: 'string', default: '100' },
      'topics-per-client': { type: 'string', default: '10' },
      duration: { type: 'string', default: '10' },
      format: { type: 'string', default: 'json' },
      out: { type: 'string', default: 'reports' },
      'load-procs': { type: 'string', default: '1' },
      'step-seconds': { type: 'string', default: '3' },
      'start-rate': { type: 'string', default: '1' },
      'max-steps': { type: 'string', default: '12' },
      phases: { type: 'string', default: 'raw,pipeline' },
      profile: { type: 'string', default: '' },
      'max-seconds': { type: 'string' },
      'latency-rate': { type: 'string' },
      pin: { type: 'string', default: '' },
      'flush-ms': { type: 'string' },
      'publish-ms': { type: 'string' },
      mix: { type: 'string' },
      'raw-rate': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(`usage: npm run bench:fanout -- [options]
  --clients N            WebSocket clients (1000)
  --symbols S            symbols (100)
  --topics-per-client K  streams per client, symbols round-robin (10); <sym>@trade unless --mix
  --mix KIND:W,...|population
                         stream kinds by weight, e.g. ticker:40,depth@100ms:30,trade:20,bookTicker:10;
                         population = ticker:35,depth@100ms:30,trade:15,bookTicker:10,kline_1m:5,miniTicker:5
                         (kinds: trade ticker miniTicker bookTicker depth depth@100ms kline_1m; docs/bench.md)
  --raw-rate R           with --mix and --phases raw: the trade rate whose frames (a) replays
  --duration SECONDS     measured seconds of the raw phase and of the half-load run (10)
  --format json|protobuf client encoding (json)
  --out DIR              report root (reports)
  --load-procs N         processes holding the client connections (1)
  --step-seconds SECONDS measured seconds per rate step of the saturation search (3)
  --start-rate R         first feed rate, trades/s per symbol (1)
  --max-steps N          bound on saturation steps (12)
  --phases raw,pipeline  which phases to run
  --profile ROLES        node --cpu-prof for gateway,server,feed (profiles in the report folder)
  --pin ROLE=CPUS,...    CPU affinity (taskset) per process, e.g. gateway=1,load-clients=0;
                         the raw server takes the gateway's CPUs
  --latency-rate R       skip the saturation search; measure latency at R trades/s/sym only
  --flush-ms MS          the gateway's flushIntervalMs (default: the gateway's default)
  --publish-ms MS        the feed's publishIntervalMs (default: the feed's default)
  --max-seconds SECONDS  hard cap on the whole run (default: computed from the options)`);
    process.exit(0);
  }
  const int = (name: string, v: string | undefined, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number in [${min}, ${max}], got "${v}"`);
    return n;
  };
  const format = values.format;
  if (format !== 'json' && format !== 'protobuf') throw new Error(`--format must be json or protobuf, got "${format}"`);
  const phases = new Set(values.phases.split(',').filter(Boolean));
  for (const p of phases) if (p !== 'raw' && p !== 'pipeline') throw new Error(`--phases: unknown phase "${p}" (raw, pipeline)`);
  const profile = new Set(values.profile.split(',').filter(Boolean));
  for (const p of profile) if (!['gateway', 'server', 'feed'].includes(p)) throw new Error(`--profile: unknown role "${p}" (gateway, server, feed)`);
  const o: Options = {
    clients: Math.floor(int('clients', values.clients, 1, 100_000)),
    symbols: Math.floor(int('symbols', values.symbols, 1, 10_000)),
    topicsPerClient: Math.floor(int('topics-per-client', values['topics-per-client'], 1, 1024)),
    duration: int('duration', values.duration, 1, 600),
    format,
    out: resolve(values.out),
    loadProcs: Math.floor(int('load-procs', values['load-procs'], 1, 16)),
    stepSeconds: int('step-seconds', values['step-seconds'], 1, 60),
    startRate: int('start-rate', values['start-rate'], 0.01, 100_000),
    maxSteps: Math.floor(int('max-steps', values['max-steps'], 1, 30)),
    phases: phases as Set<'raw' | 'pipeline'>,
    profile,
    maxSeconds: 0,
    pin: parsePins(values.pin),
    ...(values['latency-rate'] !== undefined ? { latencyRate: int('latency-rate', values['latency-rate'], 0.01, 100_000) } : {}),
    ...(values['flush-ms'] !== undefined ? { flushMs: int('flush-ms', values['flush-ms'], 0, 1_000) } : {}),
    ...(values['publish-ms'] !== undefined ? { publishMs: int('publish-ms', values['publish-ms'], 1, 1_000) } : {}),
    ...(values.mix !== undefined ? { mix: values.mix } : {}),
    ...(values['raw-rate'] !== undefined ? { rawRate: int('raw-rate', values['raw-rate'], 0.01, 100_000) } : {}),
  };
  if (o.mix !== undefined) parseMix(o.mix); // a bad spec fails here, before anything starts
  if (o.rawRate !== undefined && o.mix === undefined) throw new Error('--raw-rate only applies with --mix');
  if (o.mix !== undefined && o.phases.has('raw') && !o.phases.has('pipeline') && o.rawRate === undefined) {
    throw new Error('--mix with --phases raw needs --raw-rate (the trade rate whose frames the raw phase replays)');
  }
  // Each phase: connect + settle + measure; each step: settle + measure, plus recovery after a failed one.
  // Raw phase, saturation steps, one recovery probe, up to 1 + REFINE_STEPS + 1 fresh clusters with reconnects.
  const estimate = 120 + 2 * o.duration + o.maxSteps * (o.stepSeconds + 3) + RECOVER_MAX_MS / 1000 + (REFINE_STEPS + 2) * 40;
  o.maxSeconds = values['max-seconds'] ? int('max-seconds', values['max-seconds'], 10, 7_200) : Math.ceil(estimate);
  return o;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round = (n: number, d = 0) => Math.round(n * 10 ** d) / 10 ** d;
const isMix = (p: SubscriptionPlan): p is MixPlan => 'mix' in p;

/** Deliveries per second the plan expects at `rate` trades/s/sym. */
function expectedFor(plan: SubscriptionPlan, rate: number): number {
  return isMix(plan) ? expectedMixPerSec(plan, rate, CADENCES) : rate * plan.totalSubscriptions;
}

/** The trade rate at which the plan expects `perSec` deliveries (a mix: bisection, expectedFor grows with the rate). */
function rateFor(plan: SubscriptionPlan, perSec: number): number {
  if (!isMix(plan)) return perSec / plan.totalSubscriptions;
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 40 && expectedFor(plan, hi) < perSec; i++) hi *= 2;
  for (let i = 0; i < 50; i++) {
    const mid = (lo + hi) / 2;
    if (expectedFor(plan, mid) < perSec) lo = mid;
    else hi = mid;
  }
  // Tickers and klines alone may already exceed perSec: the lowest rate that still trades.
  return Math.max(hi, 0.01);
}

// --- everything the run started, stopped in reverse order, once
const { onCleanup, cleanup } = cleanupList();


interface Measured {
  snap: FleetSnap;
  cpu: Record<string, number | null>;
  /** What bound the window: a load client, a process, the machine, or none of them (lib/bottleneck.ts). */
  bottleneck: Bottleneck;
  intervals: IntervalHistogram[];
  latency: LatencySummary;
  /** feed → NATS only, from the bus tap, over the same window. */
  busLatency?: LatencySummary;
  /** pt → written to every subscriber's socket, per event, measured inside the gateway over the same window. */
  egressLatency?: LatencySummary;
  /** pt → the event reached the gateway from its push-server (same window). */
  arrivalLatency?: LatencySummary;
  /** The gateway's GC time per second, longest GC pause and worst per-second event-loop p99 over the window. */
  gatewayPauses?: { gcMsPerSec: number; gcMaxPauseMs: number; eventLoopP99MaxMs: number };
  /** Write syscalls per second of every process. */
  writesPerSec: Record<string, number | null>;
  /** The sender's write syscalls per second, and delivered messages per write: how well it coalesces. */
  senderWritesPerSec: number | null;
  messagesPerWrite: number | null;
}

/**
 * Measures for `seconds`: one fleet snap per second (one hlog interval each),
 * merged into one histogram; CPU of every named process over the window.
 */
/** The gateway's own pt → written-to-every-subscriber histogram (GET /admin/egress-latency); reset starts a window. */
async function gatewayEgress(httpUrl: string, reset: boolean): Promise<{ out: LatencySummary; arrival: LatencySummary } | undefined> {
  const summary = (b64: string) => {
    const h = decodeFromCompressedBase64(b64);
    const out = latencySummary(h);
    h.destroy();
    return out;
  };
  try {
    const r = await getJson<{ hist: string; arrival: { hist: string } }>(`${httpUrl}/admin/egress-latency${reset ? '?reset=1' : ''}`);
    return { out: summary(r.hist), arrival: summary(r.arrival.hist) };
  } catch {
    return undefined;
  }
}

async function measure(fleet: LoadFleet, procs: Record<string, number>, sender: string, seconds: number, tag: string, tap?: LoadFleet, egressUrl?: string): Promise<Measured> {
  await Promise.all([fleet.snap(), tap?.snap(), egressUrl ? gatewayEgress(egressUrl, true) : undefined]); // discard what came before the window
  const cpu = cpuWindow(procs);
  const host = hostCpuWindow(HOST_CPUS);
  const writes = writesWindow(procs);
  const intervals: IntervalHistogram[] = [];
  let total: FleetSnap | undefined;
  let eventsPerSecSum = 0;
  const n = Math.max(1, Math.round(seconds));
  const stepMs = (seconds * 1000) / n;
  // The gateway's own pauses over the window: GC (all of it, and the longest) and event-loop delay.
  type GwStats = { gcPauseTotalMs?: number; gcMaxPauseMs?: number; eventLoopP99Ms?: number };
  const gwStats = async () => (egressUrl ? await getJson<GwStats>(`${egressUrl}/stats`).catch(() => undefined) : undefined);
  const gcAtStart = (await gwStats())?.gcPauseTotalMs;
  let gcMaxPauseMs = 0;
  let loopP99MaxMs = 0;
  let start = Date.now();
  for (let i = 0; i < n; i++) {
    await sleep(Math.max(0, start + stepMs - Date.now()));
    const s = await fleet.snap();
    const gs = await gwStats();
    gcMaxPauseMs = Math.max(gcMaxPauseMs, gs?.gcMaxPauseMs ?? 0);
    loopP99MaxMs = Math.max(loopP99MaxMs, gs?.eventLoopP99Ms ?? 0);
    const end = Date.now();
    intervals.push({ tag, startMs: start, endMs: end, hist: s.hist });
    eventsPerSecSum += s.eventsPerSec;
    if (!total) {
      total = { ...s, closeCodes: { ...s.closeCodes }, hist: build({ numberOfSignificantValueDigits: 3 }) };
      total.hist.add(s.hist);
    } else {
      total.hist.add(s.hist);
      for (const k of ['events', 'other', 'resyncs', 'bytes', 'negative', 'pauses'] as const) total[k] += s[k];
      total.open = s.open;
      total.closed += s.closed;
      for (const [k, v] of Object.entries(s.closeCodes)) total.closeCodes[k] = (total.closeCodes[k] ?? 0) + v;
      total.intervalMs += s.intervalMs;
    }
    start = end;
  }
  total!.eventsPerSec = eventsPerSecSum / n;
  const bus = tap ? await tap.snap() : undefined;
  const egress = egressUrl ? await gatewayEgress(egressUrl, true) : undefined;
  const gcAtEnd = (await gwStats())?.gcPauseTotalMs;
  const gatewayPauses =
    gcAtStart !== undefined && gcAtEnd !== undefined
      ? { gcMsPerSec: round((gcAtEnd - gcAtStart) / seconds, 1), gcMaxPauseMs: round(gcMaxPauseMs, 1), eventLoopP99MaxMs: round(loopP99MaxMs, 1) }
      : undefined;
  const writesPerSec = writes.end();
  const senderWritesPerSec = writesPerSec[sender] ?? null;
  const cpuCores = cpu.end();
  return {
    writesPerSec, bottleneck: findBottleneck(cpuCores, host.end(), HOST_CPUS),
    snap: total!, cpu: cpuCores, intervals, latency: latencySummary(total!.hist), busLatency: bus ? latencySummary(bus.hist) : undefined, egressLatency: egress?.out, arrivalLatency: egress?.arrival, gatewayPauses,
    senderWritesPerSec, messagesPerWrite: senderWritesPerSec ? round(total!.eventsPerSec / senderWritesPerSec, 2) : null,
  };
}

function deliveryFacts(s: FleetSnap) {
  return {
    events: s.events,
    otherFrames: s.other,
    resyncNotices: s.resyncs,
    avgFrameBytes: s.events + s.other > 0 ? round(s.bytes / (s.events + s.other), 1) : 0,
    negativeLatencies: s.negative,
    clientReadPauses: s.pauses,
    openConnections: s.open,
    closedConnections: s.closed,
    closeCodes: s.closeCodes,
  };
}

// --- (a) raw broadcast baseline
/** pacedRate (trades/s/sym): the raw server at the pipeline's half-load rate, for a latency floor; else saturated. */
/** tapeRate (--mix only): the trade rate whose frames the raw server replays (mix-tape.ts). */
async function runRaw(o: Options, plan: SubscriptionPlan, capMs: number, intervals: IntervalHistogram[], pacedRate?: number, tapeRate?: number) {
  console.log(
    pacedRate
      ? `\n(a') raw ws broadcast paced at the pipeline's half-load rate, ${round(pacedRate, 3)} trades/s/sym: the latency floor of this machine`
      : `\n(a) raw ws broadcast: ${o.clients} clients × ${o.topicsPerClient} streams over ${o.symbols} symbols` +
          (isMix(plan) ? `, the pipeline's frames at ${round(tapeRate ?? 0, 3)} trades/s/sym` : ''),
  );
  const mix = isMix(plan)
    ? { streams: [...new Set(plan.clients.flat())], rate: tapeRate ?? pacedRate ?? 1, ...CADENCES, seconds: TAPE_SECONDS, maxEntries: TAPE_MAX_ENTRIES }
    : undefined;
  const raw = new BenchChild('raw-server', RAW_ENTRY, [JSON.stringify({ symbols: plan.symbols, format: o.format, maxMs: capMs, highWaterBytes: 64 * 1024, ackEvery: RAW_ACK_EVERY, window: RAW_WINDOW, ...(mix ? { mix } : {}) })]);
  onCleanup('raw server', () => raw.kill());
  // A mix tape is recorded before 'ready' (seconds of simulation at high rates).
  const { port } = await raw.waitFor<{ type: 'ready'; port: number }>('ready', mix ? 90_000 : 20_000);
  const fleet = await LoadFleet.start(o.loadProcs, capMs);
  onCleanup('raw-phase load clients', () => fleet.stop());
  const base = `ws://127.0.0.1:${port}`;
  const conn = await fleet.connect(plan.clients.map((s) => streamUrl(base, s, o.format)), 60_000, RAW_ACK_EVERY);
  console.log(`  connected ${conn.open}/${o.clients} in ${conn.ms} ms${conn.failed ? ` (${conn.failed} failed: ${conn.errors.join('; ')})` : ''}`);
  if (conn.open === 0) throw new Error('raw phase: no client could connect');
  await raw.request({ type: 'start', ...(pacedRate ? { rate: pacedRate } : {}) }, 5_000);
  await sleep(pacedRate ? 2 * SETTLE_MS : SETTLE_MS);
  const procs = { 'raw-server': raw.pid, ...Object.fromEntries(fleet.pids.map((p, i) => [`load-clients-${i + 1}`, p])) };
  pinProcs(procs, o.pin);
  const m = await measure(fleet, procs, 'raw-server', o.duration, pacedRate ? 'raw-half' : 'raw');
  const stopped = await raw.request<RawStopReply>({ type: 'stop' }, 5_000);
  intervals.push(...m.intervals);
  console.log(`  delivered ${fmtRate(m.snap.eventsPerSec)} · ${m.messagesPerWrite ?? '?'} msgs per write syscall · CPU ${fmtCpu(m.cpu)}`);
  console.log(`  limited by: ${m.bottleneck.note}`);
  if (pacedRate) console.log(`  latency ${fmtLatency(m.latency)}`);
  await fleet.closeConnections();
  await fleet.stop();
  await raw.kill();
  return {
    deliveredPerSec: round(m.snap.eventsPerSec),
    connected: conn.open,
    connectMs: conn.ms,
    frameBytes: stopped.frameBytes,
    ...(mix ? { tapeRate: round(mix.rate, 3) } : {}),
    server: { ticks: stopped.ticks, framesBuilt: stopped.frames, writes: stopped.writes, skippedNoCredit: stopped.skipped, acks: stopped.acks, ackEvery: RAW_ACK_EVERY, window: RAW_WINDOW },
    ...(pacedRate
      ? { pacedRate: round(pacedRate, 3), expectedPerSec: round(expectedFor(plan, pacedRate)), latency: m.latency }
      : // Saturated on purpose: mostly the credit window queued in flight, not a latency target.
        { latencyAtSaturation: m.latency }),
    writesPerSec: m.senderWritesPerSec,
    messagesPerWrite: m.messagesPerWrite,
    cpu: m.cpu,
    bottleneck: m.bottleneck,
    writeSyscallsPerSec: m.writesPerSec,
    ...deliveryFacts(m.snap),
    fleetTotals: fleet.totals,
  };
}

// --- (b) full pipeline
interface Step {
  rate: number;
  expectedPerSec: number;
  deliveredPerSec: number;
  /** min(delivered, expected): more than expected is backlog from an earlier step, not capacity. */
  sustainedPerSec: number;
  deliveredShare: number;
  latency: LatencySummary;
  busLatency: LatencySummary | undefined;
  egressLatency: LatencySummary | undefined;
  arrivalLatency: LatencySummary | undefined;
  gatewayWritesPerSec: number | null;
  messagesPerWrite: number | null;
  writeSyscallsPerSec: Record<string, number | null>;
  resyncNotices: number;
  clientReadPauses: number;
  feedLagMs: number | null;
  cpu: Record<string, number | null>;
  bottleneck: Bottleneck;
  ok: boolean;
}

async function runPipeline(o: Options, plan: SubscriptionPlan, capMs: number, intervals: IntervalHistogram[], profileDir: string) {
  console.log(`\n(b) pipeline feed → NATS → push-server → gateway: same ${o.clients} clients and streams`);
  const fleet = await LoadFleet.start(o.loadProcs, capMs);
  onCleanup('pipeline load clients', () => fleet.stop());
  let pipe = await startPipeline(o, plan, fleet, o.startRate, profileDir, capMs, onCleanup);
  const gatewayUrl = pipe.gatewayUrl;
  const expectedPerSec = (rate: number) => expectedFor(plan, rate);
  let restarts = 0;

  const runStep = async (rate: number, i: number): Promise<Step> => {
    await pipe.setRate(rate);
    await sleep(SETTLE_MS);
    const m = await measure(fleet, pipe.procs, 'gateway', o.stepSeconds, `step${i}`, pipe.tap, pipe.gatewayAdminUrl);
    intervals.push(...m.intervals);
    const expected = expectedPerSec(rate);
    const share = m.snap.eventsPerSec / expected;
    const ok = keptUp(m.snap.eventsPerSec, expected, m.latency.p99Ms);
    const step: Step = {
      rate: round(rate, 3), expectedPerSec: round(expected), deliveredPerSec: round(m.snap.eventsPerSec),
      sustainedPerSec: round(Math.min(m.snap.eventsPerSec, expected)), deliveredShare: round(share, 3),
      latency: m.latency, busLatency: m.busLatency, egressLatency: m.egressLatency, arrivalLatency: m.arrivalLatency, gatewayWritesPerSec: m.senderWritesPerSec, messagesPerWrite: m.messagesPerWrite, writeSyscallsPerSec: m.writesPerSec,
      resyncNotices: m.snap.resyncs, clientReadPauses: m.snap.pauses, feedLagMs: await pipe.feedLagMs(), cpu: m.cpu, bottleneck: m.bottleneck, ok,
    };
    console.log(
      `  step ${String(i).padStart(2)} rate ${String(step.rate).padStart(7)}/s/sym  expected ${fmtRate(expected).padStart(16)}  delivered ${fmtRate(m.snap.eventsPerSec).padStart(16)}` +
        `  (${Math.round(share * 100)}%)  p99 ${m.latency.p99Ms} ms (bus ${m.busLatency?.p99Ms ?? '?'} ms, gateway in ${m.arrivalLatency?.p99Ms ?? '?'} ms, out ${m.egressLatency?.p99Ms ?? '?'} ms)  ${m.messagesPerWrite ?? '?'} msgs/write  ${ok ? 'ok' : 'SATURATED'}${m.snap.pauses ? ` (clients behind: ${m.snap.pauses} read pauses)` : ''}  [${fmtCpu(m.cpu)}]` +
        (m.bottleneck.limitedBy === 'load-clients' ? `  LOAD-CLIENT-BOUND (${m.bottleneck.process} ${m.bottleneck.cores})` : ''),
    );
    return step;
  };

  /**
   * How the pipeline comes back after an overloaded step: at a rate it handled
   * before, how long until deliveries match and p99 is under 100 ms (bounded).
   */
  const probeRecovery = async (rate: number) => {
    await pipe.setRate(rate);
    const t0 = Date.now();
    await fleet.snap();
    const seconds: Array<{ deliveredShare: number; p99Ms: number }> = [];
    while (Date.now() - t0 < RECOVER_MAX_MS) {
      await sleep(1_000);
      const s = await fleet.snap();
      const p99Ms = s.hist.totalCount ? s.hist.getValueAtPercentile(99) / 1000 : 0;
      const share = s.eventsPerSec / expectedPerSec(rate);
      seconds.push({ deliveredShare: round(share, 3), p99Ms });
      if (share >= MIN_DELIVERED_SHARE && p99Ms < RECOVERED_P99_MS) return { rate: round(rate, 3), recovered: true, ms: Date.now() - t0, seconds };
    }
    return { rate: round(rate, 3), recovered: false, ms: Date.now() - t0, seconds };
  };

  /** Backlogs from an overload linger; the next measurement starts on a fresh cluster (clients connect while the feed is slow). */
  const restart = async () => {
    restarts++;
    await pipe.stop();
    pipe = await startPipeline(o, plan, fleet, Math.min(o.startRate, 1), profileDir, capMs, onCleanup);
  };

  const steps: Step[] = [];
  let recovery: Awaited<ReturnType<typeof probeRecovery>> | undefined;
  let good = 0;
  let bad = 0;
  let rate = o.startRate;
  let refinements = 0;
  for (let i = 1; i <= (o.latencyRate ? 0 : o.maxSteps); i++) {
    const step = await runStep(rate, i);
    steps.push(step);
    if (step.ok) good = Math.max(good, rate);
    else bad = bad ? Math.min(bad, rate) : rate;
    let next: number | undefined;
    if (!bad) next = rate * 2;
    else if (refinements < REFINE_STEPS && good > 0 && i < o.maxSteps) {
      refinements++;
      next = (good + bad) / 2;
    }
    if (!step.ok) {
      if (!recovery) {
        recovery = await probeRecovery(good > 0 ? good / 2 : o.startRate / 4);
        console.log(`  after the overload at ${step.rate}/s/sym, back at ${recovery.rate}/s/sym: ${recovery.recovered ? `recovered in ${recovery.ms} ms` : `NOT recovered within ${recovery.ms} ms`}`);
      }
      if (next !== undefined) await restart();
    }
    if (next === undefined) break;
    rate = next;
  }
  // --latency-rate: no search; "best" is a stand-in at twice the asked rate so half load is that rate.
  const kept = steps.filter((s) => s.ok);
  if (steps.length && !kept.length) throw new Error(`the pipeline kept up at no step (first rate ${o.startRate}/s/sym): lower --start-rate`);
  const best = kept.length
    ? kept.reduce((a, s) => (s.sustainedPerSec > a.sustainedPerSec ? s : a), kept[0]!)
    : { sustainedPerSec: 2 * expectedFor(plan, o.latencyRate!), rate: 2 * o.latencyRate! };
  const saturated = bad !== 0;
  const halfRate = o.latencyRate && isMix(plan) ? o.latencyRate : rateFor(plan, best.sustainedPerSec / 2);
  if (o.latencyRate) console.log(`  --latency-rate ${o.latencyRate}: no saturation search`);
  else console.log(
    `  best sustained (≥ ${MIN_DELIVERED_SHARE * 100} % delivered, p99 ≤ ${MAX_STEP_P99_MS} ms) ${fmtRate(best.sustainedPerSec)} at rate ${best.rate}/s/sym${saturated ? '' : ' (never saturated within --max-steps: a lower bound)'}` +
      `; half load = ${round(halfRate, 3)} trades/s/sym on a fresh cluster`,
  );

  // Half load, the latency figure of the issue, on a cluster without leftovers from the search.
  await restart();
  await pipe.setRate(halfRate);
  await sleep(2 * SETTLE_MS);
  const m = await measure(fleet, pipe.procs, 'gateway', o.duration, 'half', pipe.tap, pipe.gatewayAdminUrl);
  intervals.push(...m.intervals);
  const roleStats = await pipe.roleStats();
  console.log(`  half load: delivered ${fmtRate(m.snap.eventsPerSec)} (expected ${fmtRate(expectedPerSec(halfRate))}) · ${fmtLatency(m.latency)}`);
  if (m.busLatency) console.log(`  of which feed → NATS (bus tap): ${fmtLatency(m.busLatency)}`);
  if (m.arrivalLatency) console.log(`  pt → into the gateway: ${fmtLatency(m.arrivalLatency)}`);
  if (m.egressLatency) console.log(`  pt → written by the gateway to every subscriber: ${fmtLatency(m.egressLatency)}`);
  await pipe.stop();
  await fleet.stop();
  return {
    gatewayUrl,
    steps,
    saturated,
    latencyOnly: steps.length === 0,
    saturatedRate: steps.length ? best.rate : null,
    saturatedDeliveredPerSec: steps.length ? best.sustainedPerSec : null,
    recoveryAfterOverload: recovery,
    clusterRestarts: restarts,
    fleetTotals: fleet.totals,
    halfLoad: {
      rate: round(halfRate, 3),
      expectedPerSec: round(expectedPerSec(halfRate)),
      deliveredPerSec: round(m.snap.eventsPerSec),
      latency: m.latency,
      busLatency: m.busLatency,
      egressLatency: m.egressLatency,
      arrivalLatency: m.arrivalLatency,
      gatewayPauses: m.gatewayPauses,
      gatewayWritesPerSec: m.senderWritesPerSec,
      messagesPerWrite: m.messagesPerWrite,
      cpu: m.cpu,
      writeSyscallsPerSec: m.writesPerSec,
      ...deliveryFacts(m.snap),
      roleStats,
    },
  };
}

async function main(): Promise<void> {
  const o = parseOptions();
  const startedAt = new Date();
  const capMs = o.maxSeconds * 1000;
  const hardCap = setTimeout(() => {
    console.error(`\nbench:fanout: hard cap of ${o.maxSeconds} s reached; stopping everything`);
    void cleanup().then(() => process.exit(2));
  }, capMs);
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (interrupted) return;
      interrupted = true;
      console.error(`\nbench:fanout: ${sig}: stopping everything`);
      void cleanup().then(() => process.exit(130));
    });
  }

  const plan = o.mix !== undefined ? planMixSubscriptions(o.clients, o.symbols, o.topicsPerClient, parseMix(o.mix)) : planSubscriptions(o.clients, o.symbols, o.topicsPerClient);
  const machine = machineInfo(ROOT);
  const perSymbol = [Math.min(...plan.subscribersPerSymbol), Math.max(...plan.subscribersPerSymbol)];
  console.log(
    `bench:fanout · ${o.clients} clients × ${o.topicsPerClient} ${isMix(plan) ? `streams (mix ${Object.entries(plan.perKind).map(([k, n]) => `${k} ${n}`).join(', ')})` : 'trade streams'}, ${o.symbols} symbols (${perSymbol[0] === perSymbol[1] ? perSymbol[0] : perSymbol.join('–')} subscribers per symbol)` +
      ` · ${o.format} · ${machine.cpus} CPUs · node ${process.version} · load ${(machine.loadavgAtStart as number[]).join(' ')} · cap ${o.maxSeconds} s`,
  );
  const intervals: IntervalHistogram[] = [];
  const reportRoot = o.out;
  const profileDir = join(reportRoot, `${startedAt.toISOString().replace(/[:.]/g, '-')}-fanout`, 'profiles');

  // A mix's raw phase replays the pipeline's frames at its saturated rate, so the pipeline goes first.
  const mixed = isMix(plan);
  let raw = o.phases.has('raw') && !mixed ? await runRaw(o, plan, capMs, intervals) : undefined;
  const pipeline = o.phases.has('pipeline') ? await runPipeline(o, plan, capMs, intervals, profileDir) : undefined;
  if (o.phases.has('raw') && mixed) raw = await runRaw(o, plan, capMs, intervals, undefined, pipeline?.saturatedRate ?? pipeline?.halfLoad.rate ?? o.rawRate);
  // The same clients from a bare server at the pipeline's half-load rate: what latency this machine allows at that rate.
  const rawAtHalf = raw && pipeline ? await runRaw(o, plan, capMs, intervals, pipeline.halfLoad.rate, pipeline.halfLoad.rate) : undefined;
  await cleanup();
  clearTimeout(hardCap);

  const ratio = raw && pipeline?.saturatedDeliveredPerSec ? round(pipeline.saturatedDeliveredPerSec / raw.deliveredPerSec, 3) : undefined;
  const profiles: Record<string, unknown> = {};
  for (const role of o.profile) {
    profiles[role] = profilesIn(join(profileDir, role)).map((f) => ({ file: f, ...summariseProfile(f, ROOT, 25) }));
  }
  const summary = {
    bench: 'fanout',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    command: `npm run bench:fanout -- ${process.argv.slice(2).join(' ')}`.trim(),
    options: { ...o, phases: [...o.phases], profile: [...o.profile] },
    machine,
    plan: {
      totalSubscriptions: plan.totalSubscriptions, subscribersPerSymbol: perSymbol,
      ...(isMix(plan) ? { mix: plan.mix, subscriptionsPerKind: plan.perKind } : {}),
    },
    feed: {
      tickerMs: 1000, klineMs: 1000, depthSnapshotMs: 1000,
      note: `each trade moves the book; its changes go out as 100 ms and 1 s depth diffs; ${isMix(plan) ? 'clients subscribe per --mix; expected deliveries per kind follow lib/stream-mix.ts kindRate' : 'clients subscribe to trades only'}`,
    },
    raw,
    pipeline,
    rawAtHalfLoad: rawAtHalf,
    ratio,
    goal: {
      ratioAtLeast: 0.5,
      p99AtHalfLoadMsAtMost: 20,
      ratioMet: ratio === undefined ? null : ratio >= 0.5,
      p99Met: pipeline ? pipeline.halfLoad.latency.p99Ms <= 20 : null,
    },
    profiles,
  };
  const dir = writeReport(reportRoot, startedAt, summary, intervals);
  for (const iv of intervals) iv.hist.destroy();

  const rows: Array<[string, string]> = [];
  if (raw) {
    rows.push(['(a) raw ws broadcast', `${fmtRate(raw.deliveredPerSec)} · ${raw.messagesPerWrite ?? '?'} msgs/write  [CPU ${fmtCpu(raw.cpu)}]`]);
    // Saturated through its credit window: a throughput ceiling, not a latency target.
    if ('latencyAtSaturation' in raw) rows.push(['    its latency', fmtLatency(raw.latencyAtSaturation)]);
    rows.push(['    limited by', raw.bottleneck.note]);
  }
  if (pipeline?.saturatedDeliveredPerSec != null) {
    rows.push(['(b) pipeline, saturated', `${fmtRate(pipeline.saturatedDeliveredPerSec!)} at ${pipeline.saturatedRate} trades/s/sym${pipeline.saturated ? '' : ' (not saturated: lower bound)'}`]);
    const at = pipeline.steps.find((s) => s.rate === pipeline.saturatedRate);
    rows.push(['    at that step', `${at?.messagesPerWrite ?? '?'} msgs/write at the gateway  [CPU ${fmtCpu(at?.cpu ?? {})}]`]);
    if (at) rows.push(['    its latency', fmtLatency(at.latency)], ['    limited by', at.bottleneck.note]);
  }
  if (ratio !== undefined) {
    const rawBound = raw?.bottleneck.limitedBy === 'load-clients';
    rows.push(['ratio b/a', `${ratio}  (goal ≥ 0.5: ${ratio >= 0.5 ? 'met' : 'NOT met'})${rawBound ? ' — (a) was load-client-bound, so this ratio is an upper bound' : ''}`]);
  }
  if (pipeline) {
    const h = pipeline.halfLoad;
    rows.push(['(b) at half load', `${h.rate} trades/s/sym → ${fmtRate(h.deliveredPerSec)} (expected ${fmtRate(h.expectedPerSec)})`]);
    rows.push(['    latency', `${fmtLatency(h.latency)}  (goal p99 ≤ 20 ms: ${h.latency.p99Ms <= 20 ? 'met' : 'NOT met'})`]);
    if (h.busLatency) rows.push(['    of which feed → NATS', fmtLatency(h.busLatency)]);
    if (h.arrivalLatency) rows.push(['    pt → into the gateway', fmtLatency(h.arrivalLatency)]);
    if (h.egressLatency) rows.push(['    pt → out of the gateway', `${fmtLatency(h.egressLatency)}  (per event, to its last subscriber)`]);
    rows.push(['    gateway', `${h.messagesPerWrite ?? '?'} msgs/write (${h.gatewayWritesPerSec ?? '?'} write syscalls/s)`]);
    if (h.gatewayPauses) rows.push(['    gateway pauses', `GC ${h.gatewayPauses.gcMsPerSec} ms/s, longest GC ${h.gatewayPauses.gcMaxPauseMs} ms, worst event-loop p99 ${h.gatewayPauses.eventLoopP99MaxMs} ms`]);
    rows.push(['    CPU', fmtCpu(h.cpu)]);
    if (h.resyncNotices || h.closedConnections) rows.push(['    trouble', `${h.resyncNotices} resync notices, ${h.closedConnections} closed connections`]);
  }
  if (rawAtHalf && 'latency' in rawAtHalf) {
    rows.push(["(a') raw at the same rate", `${fmtRate(rawAtHalf.deliveredPerSec)} · ${rawAtHalf.messagesPerWrite ?? '?'} msgs/write  [CPU ${fmtCpu(rawAtHalf.cpu)}]`]);
    rows.push(['    latency (the floor)', fmtLatency(rawAtHalf.latency)]);
  }
  console.log(`\n${table(rows)}\n`);
  for (const [role, list] of Object.entries(profiles)) {
    for (const p of list as Array<ReturnType<typeof summariseProfile> & { file: string }>) {
      console.log(`CPU profile ${role}: ${p.busyMs} ms busy of ${p.totalMs} ms sampled; top self time, % of busy`);
      for (const f of p.functions.slice(0, 15)) console.log(`  ${String(f.pct).padStart(5)}%  ${f.fn}  ${f.where}`);
    }
  }
  console.log(`report: ${dir}`);
}

main().catch(async (err: unknown) => {
  console.error(`bench:fanout failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  await cleanup();
  process.exit(1);
});
