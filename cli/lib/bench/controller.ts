// The bench controller: starts or discovers agents, hands each its plan over
// NATS, answers their clock requests, releases the start barrier, merges
// their snapshots (counters summed, histograms added — never percentiles
// averaged), runs the HTTP phases, notices agents that die, and collects the
// final results into one Outcome. With a fault schedule it also runs the
// faults from the start barrier on (local agents in a shaped namespace when a
// profile targets the clients) and splits the figures into before / during /
// after.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInbox, type NatsConnection } from '@nats-io/transport-node';
import type { Histogram } from 'hdr-histogram-js';
import { connectNats } from '../../../system/common/nats-bus.ts';
import { readSecretsFile } from '../../../system/common/secrets.ts';
import { nowUs } from '../../../bench/lib/clock.ts';
import { newHistogram } from './meter.ts';
import { LiveMerge, newTrack, type AgentTrack, type TimelineInterval } from './live-merge.ts';
import { addEncoded, latencySummary, type LatencySummary } from './figures.ts';
import { runHttpPhase, type HttpResult } from './http-phase.ts';
import { totalCopies, type AgentPlan } from './plan.ts';
import type { Scenario } from './scenario.ts';
import { evaluate, type Threshold, type ThresholdResult } from './thresholds.ts';
import { startFaultSchedule, type RunningSchedule } from '../chaos/schedule.ts';
import { openClientNet, type ClientNet } from '../chaos/client-net.ts';
import { clientPorts, clusterHosts, isolatedTargets, recoverStale } from '../chaos/session.ts';
import { faultWindows, splitPhases, type FaultWindow, type PhaseFigures, type PhaseName, type Phases, type SpanFigures } from './phases.ts';
import { mergePrivate, preparePrivate, sampleGateways, type GatewaySample, type PrivateFigures } from './private-run.ts';
import type { PrivatePlan } from './private-spec.ts';
import { headlineOf, plannedRampMs, splitWarmup, warmupEnd, type WarmupRule } from './warmup.ts';
import {
  DISCOVER, planSubject, runSubject, encodeJson, decodeJson, addCounters, zeroCounters,
  type AgentHello, type AgentHealth, type AgentResult, type AgentSnapshot, type ClockEstimate, type Counters,
} from './wire.ts';

const AGENT_MAIN = join(dirname(fileURLToPath(import.meta.url)), 'agent-main.ts');

export type AgentStateName = 'starting' | 'running' | 'done' | 'dead' | 'failed';

export interface AgentView {
  name: string;
  host: string;
  state: AgentStateName;
  open: number;
  target: number;
  msgsPerSec: number;
  health?: AgentHealth;
  why?: string;
}

export interface IntervalFigures {
  tS: number;
  msgsPerSec: number;
  open: number;
  latency: LatencySummary;
  errors: number;
  gaps: number;
}

/** What the dashboard shows; also what `--no-dashboard` prints a line of. */
export interface DashboardState {
  scenario: string;
  target: string;
  elapsedS: number;
  durationS: number;
  connections: { target: number; open: number; failed: number };
  msgsPerSec: number;
  latency: LatencySummary;
  bars: Array<{ label: string; count: number }>;
  counters: Counters;
  agents: AgentView[];
  http: HttpResult[];
  warnings: string[];
  done: boolean;
  /** With a fault schedule: each fault (markers), the phase the run is in, and each phase's figures so far. */
  faults?: FaultWindow[];
  phase?: PhaseName;
  phases?: PhaseFigures[];
  /** With a warm-up: its end once known (the headline is then the steady state) and its own latency. */
  warmup?: { endS?: number; how?: string; latency: LatencySummary };
}

export interface AgentReport extends AgentView {
  pid?: number;
  sessions: number;
  counters: Counters;
  latency: LatencySummary;
  clock?: ClockEstimate;
  healthOverRun?: AgentHealth & { cpuMax: number };
  startedLateMs?: number;
  errorSamples: string[];
  /** Its figures come from its snapshots only (it died before its final result). */
  partial: boolean;
  snapshots: number;
  saturatedSnapshots: number;
}

export interface Outcome {
  runId: string;
  startedAt: Date;
  endedAt: Date;
  durationMs: number;
  /** The headline: end-to-end latency of the steady state after the warm-up (the whole run when there is none). */
  latency: Histogram;
  /** The whole run, every agent's final histogram merged. */
  totalLatency: Histogram;
  /** Where the warm-up ended and its figures, and the steady state's (its rate is the headline rate). */
  warmup: { endMs: number; how: string; figures: SpanFigures };
  steady: SpanFigures;
  connect: Histogram;
  counters: Counters;
  connections: { target: number; peakOpen: number; failed: number };
  intervals: TimelineInterval[];
  /** The fault schedule as it ran (times in ms since the start), and the before / during / after split. */
  faults: FaultWindow[];
  phases?: Phases;
  /** Where the local agents ran when a profile targeted the clients. */
  clientNet?: { netns: string; ports: number[]; passthrough: number[] };
  agents: AgentReport[];
  http: HttpResult[];
  thresholds: ThresholdResult[];
  warnings: string[];
  /** Every agent snapshot as received, for snapshots.jsonl (the dashboard can be re-rendered from them). */
  snapshots: AgentSnapshot[];
  /** A private scenario's figures (private-run.ts). */
  private?: PrivateFigures;
}

export interface BenchOptions {
  scenario: Scenario;
  router: string;
  nats: string;
  /**
   * A secrets file whose operator user the controller and its local agents
   * connect to NATS as (the cluster's, when pushctl up started its nats-server).
   * A path, never the password: agents get it on their command line.
   */
  natsSecretsFile?: string;
  /** Local agent processes to spawn; 0 with remote = discover running agents. */
  agents: number;
  remote: boolean;
  thresholds: Threshold[];
  snapshotMs?: number;
  seed?: number;
  onUpdate?: (s: DashboardState) => void;
  log?: (line: string) => void;
  /** For tests: called once the run started (start barrier released), with the local agent processes. */
  onStarted?: (agents: Array<{ name: string; pid: number }>) => void;
  signal?: AbortSignal;
  /** The `pushctl up` data dir: where process faults find their roles and client faults the cluster's ports. */
  dataDir?: string;
}

const isLoopback = (host: string) => host === 'localhost' || host.startsWith('127.') || host === '[::1]';


function spawnLocalAgent(nats: string, name: string, secretsFile: string | undefined, wrap: (argv: string[]) => string[] = (a) => a): Promise<AgentTrack> {
  const argv = wrap([process.execPath, AGENT_MAIN, '--nats', nats, '--name', name, ...(secretsFile ? ['--secrets-file', secretsFile] : [])]);
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  const t = newTrack(name, hostname(), { ...(proc.pid ? { pid: proc.pid } : {}), proc });
  proc.stderr!.on('data', (d: Buffer) => {
    t.stderr.push(d.toString());
    if (t.stderr.length > 40) t.stderr.shift();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent ${name} not ready in 20 s: ${t.stderr.join('')}`)), 20_000);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (line.includes('"ready"')) {
        clearTimeout(timer);
        resolve(t);
      }
    });
    proc.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`agent ${name} exited (${sig ?? code}) before ready: ${t.stderr.join('').slice(-1000)}`));
    });
  });
}

/** A wait that never keeps the process alive by itself (losing side of a race). */
function bounded(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

async function discover(nc: NatsConnection, waitMs = 1_000): Promise<AgentHello[]> {
  const inbox = createInbox();
  const found: AgentHello[] = [];
  const sub = nc.subscribe(inbox, { callback: (_e, m) => void found.push(decodeJson<AgentHello>(m.data)) });
  nc.publish(DISCOVER, encodeJson({}), { reply: inbox });
  await new Promise((r) => setTimeout(r, waitMs));
  sub.unsubscribe();
  return found;
}

export async function runBench(o: BenchOptions): Promise<Outcome> {
  const log = o.log ?? (() => {});
  const sc = o.scenario;
  const snapshotMs = o.snapshotMs ?? 1_000;
  const runId = randomBytes(5).toString('hex');
  const nc = await connectNats(o.nats, `pushctl-bench-${runId}`, o.natsSecretsFile ? readSecretsFile(o.natsSecretsFile).nats.operator : undefined);
  const agents: AgentTrack[] = [];
  const warnings: string[] = [];
  const httpResults: HttpResult[] = [];
  const httpAbort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const faults = sc.faults ?? [];
  let net: ClientNet | undefined;
  let schedule: RunningSchedule | undefined;
  try {
    if (faults.length && !o.dataDir) throw new Error('a fault schedule needs the data dir of the `pushctl up` cluster (its roles and ports are recorded there)');
    const dataDir = o.dataDir!;
    for (const f of faults)
      if ('profile' in f && f.target !== 'clients' && !isolatedTargets(dataDir, f.target))
        warnings.push(`${f.profile} on ${f.target}: this cluster's roles share loopback, so only a proxy goes in front of its port, which the bench's clients do not use (a cluster from \`pushctl up --isolate\` gives each role a link to shape)`);
    if (faults.some((f) => 'profile' in f)) await recoverStale(dataDir, log);
    if (faults.some((f) => 'profile' in f && f.target === 'clients')) {
      if (o.remote) throw new Error('a profile on the clients shapes the local agents\' link: not possible with --remote agents (target a role, or run local agents)');
      const natsUrl = new URL(o.nats);
      const routerUrl = new URL(o.router);
      const clusterAddrs = new Set(clusterHosts(dataDir).values());
      const local = (host: string) => isLoopback(host) || clusterAddrs.has(host);
      if (!local(natsUrl.hostname) || !local(routerUrl.hostname))
        throw new Error(`a profile on the clients runs the agents in a namespace that reaches only the recorded cluster (on 127.0.0.1 or its --isolate addresses): NATS (${o.nats}) and the router (${o.router}) must be it`);
      const ports = clientPorts(dataDir);
      if (!ports.includes(Number(routerUrl.port))) ports.push(Number(routerUrl.port));
      const passthrough = [Number(natsUrl.port || 4222)];
      net = await openClientNet({ dataDir, ports: ports.filter((p) => !passthrough.includes(p)), passthrough, print: log });
      log(`local agents run in ${net.netns}: cluster ports ${net.ports.join(', ')} through its link (host end ${net.hostAddr}); NATS ${passthrough.join(', ')} off the link`);
    }

    // Clock requests first: agents ask as soon as they get their plan.
    nc.subscribe(runSubject(runId, 'clock'), { callback: (_e, m) => void m.respond(encodeJson({ us: nowUs() })) });

    if (o.remote) {
      const answered = await discover(nc);
      const names = new Set<string>();
      const found: AgentHello[] = [];
      for (const a of answered) {
        if (names.has(a.name)) {
          warnings.push(`two agents answer as "${a.name}" (pids ${a.pid} and another): only one is used; give each a unique --name`);
          continue;
        }
        names.add(a.name);
        if (a.busy) warnings.push(`agent ${a.name} is busy with another run: not used`);
        else found.push(a);
      }
      if (!found.length) throw new Error(`no idle agent answered on ${o.nats}; start some with \`pushctl agent --nats ${o.nats} --name NAME\``);
      for (const a of found.slice(0, o.agents > 0 ? o.agents : found.length)) {
        agents.push(newTrack(a.name, a.host, { pid: a.pid }));
      }
    } else {
      const n = Math.max(1, o.agents);
      log(`starting ${n} local agent${n > 1 ? 's' : ''}`);
      const wrap = net?.wrap;
      const started = await Promise.allSettled(Array.from({ length: n }, (_, i) => spawnLocalAgent(o.nats, `local-${runId}-${i + 1}`, o.natsSecretsFile, wrap)));
      for (const s of started) if (s.status === 'fulfilled') agents.push(s.value);
      const bad = started.filter((s) => s.status === 'rejected');
      if (bad.length) {
        for (const a of agents) a.proc?.kill('SIGKILL');
        throw (bad[0] as PromiseRejectedResult).reason as Error;
      }
    }

    const snapsSub = nc.subscribe(runSubject(runId, 'snap'));
    const resultsSub = nc.subscribe(runSubject(runId, 'result'));
    const byName = new Map(agents.map((a) => [a.name, a]));
    const merge = new LiveMerge(agents, snapshotMs);
    const recorded: AgentSnapshot[] = [];

    void (async () => {
      for await (const m of snapsSub) {
        const snap = decodeJson<AgentSnapshot>(m.data);
        if (merge.onSnapshot(snap) && recorded.length < 100_000) recorded.push(snap);
      }
    })();
    const resultsDone = (async () => {
      for await (const m of resultsSub) {
        const r = decodeJson<AgentResult & { error?: string }>(m.data);
        const a = byName.get(r.agent);
        if (!a) continue;
        if (r.error) {
          a.state = 'failed';
          a.why = r.error;
        } else {
          a.result = r;
          a.state = 'done';
        }
        if (agents.every((x) => x.state === 'done' || x.state === 'failed' || x.state === 'dead')) return;
      }
    })();

    // A private scenario: its users' tokens and where their streams start; the gateways' RSS before any connects.
    let privatePlan: PrivatePlan | undefined;
    let rssBefore: GatewaySample[] = [];
    let rssUnder: GatewaySample[] = [];
    if (sc.private) {
      const p = await preparePrivate(sc.private, { ...(o.dataDir ? { dataDir: o.dataDir } : {}), nc, durationMs: sc.durationMs });
      privatePlan = p.plan;
      warnings.push(...p.warnings);
      rssBefore = await sampleGateways(o.dataDir);
    }

    // Plans: one seed for all, so the agents' shares of the amplified copies fit together.
    const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
    const plan = (a: AgentTrack, index: number): AgentPlan => ({
      runId, agent: a.name, ...(a.pid ? { pid: a.pid } : {}), host: a.host, index, agents: agents.length, sessions: sc.sessions, amplify: sc.amplify, jitterMs: sc.jitterMs,
      speed: sc.speed, durationMs: sc.durationMs, seed, connect: sc.connect, router: o.router,
      ...(sc.formats ? { formats: sc.formats } : {}), ...(sc.livenessMs !== undefined ? { livenessMs: sc.livenessMs } : {}), snapshotMs, applyClockOffset: a.host !== hostname(),
      ...(privatePlan ? { private: privatePlan } : {}),
    });
    const warmupRule: WarmupRule = { setting: sc.warmup ?? { ms: 0 }, targetOpen: totalCopies(sc), rampMs: plannedRampMs(sc, seed), runMs: sc.durationMs };
    merge.warmup = warmupRule;
    const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
    const planBytes = encodeJson(plan(agents[0]!, 0)).length;
    if (planBytes > maxPayload) throw new Error(`the scenario's sessions make a ${planBytes}-byte plan, over this NATS server's max_payload (${maxPayload}): split the capture or raise max_payload`);
    await Promise.all(
      agents.map(async (a, i) => {
        try {
          const r = decodeJson<{ ok?: boolean; error?: string }>((await nc.request(planSubject(a.name), encodeJson(plan(a, i)), { timeout: 5_000 })).data);
          if (!r.ok) throw new Error(r.error ?? 'refused the plan');
        } catch (err) {
          a.state = 'failed';
          a.why = `plan: ${(err as Error).message}`;
        }
      }),
    );
    if (agents.every((a) => a.state === 'failed')) throw new Error(`no agent accepted the plan: ${agents.map((a) => `${a.name}: ${a.why}`).join('; ')}`);

    // Local agents that exit are dead at once; remote ones when their snapshots stop.
    for (const a of agents) {
      a.proc?.once('exit', (code, sig) => {
        if (a.state === 'done') return;
        a.state = 'dead';
        a.why = `process exited (${sig ?? code})`;
        warnings.push(`agent ${a.name} died mid-run: ${a.why}`);
      });
    }

    // The start barrier: 1 s ahead, so every agent has its clock estimate and timeline ready.
    const startAtUs = nowUs() + 1_000_000;
    const startMs = startAtUs / 1000;
    merge.startMs = startMs;
    merge.endMs = startMs + sc.durationMs;
    nc.publish(runSubject(runId, 'start'), encodeJson({ startAtUs }));
    await nc.flush();
    // Fault times count from the start barrier, like the agents' timelines.
    if (faults.length) schedule = startFaultSchedule(faults, { dataDir: o.dataDir!, origin: startMs, print: log, ...(net ? { clients: net } : {}) });
    const startedAt = new Date(startMs);
    log(`run ${runId}: ${agents.length} agent(s), ${totalCopies(sc)} sessions (${sc.sessions.length} captured ×${sc.amplify}), ${sc.durationMs / 1000} s`);
    await new Promise((r) => setTimeout(r, Math.max(0, startMs - Date.now())));
    o.onStarted?.(agents.filter((a) => a.pid && a.proc).map((a) => ({ name: a.name, pid: a.pid! })));

    const httpDone = Promise.all(
      sc.http.map(async (p) => {
        await new Promise((r) => setTimeout(r, p.startMs));
        if (httpAbort.signal.aborted) return;
        const r = await runHttpPhase(p, o.router, httpAbort.signal);
        httpResults.push(r);
      }),
    );

    const target = totalCopies(sc);
    let peakOpen = 0;
    // Live fault markers, current phase and per-phase figures; on long runs the phase merge is redone every few updates.
    let livePhases: PhaseFigures[] | undefined;
    let updates = 0;
    const faultView = (run: RunningSchedule, done: boolean, nowMs: number): Pick<DashboardState, 'faults' | 'phase' | 'phases'> => {
      const all = merge.intervals();
      // The newest interval may still be missing some agents' snapshots.
      const settled = done ? all : all.slice(0, -1);
      const windows = faultWindows(run.events, settled, nowMs);
      const started = run.events.some((e) => e.ok && e.startedMs !== undefined);
      const open = windows.some((w) => w.window === 'not recovered' || (w.window === 'recorded' && w.endedMs === undefined));
      const phase: PhaseName = !started ? 'before' : open && !done ? 'during' : 'after';
      if (done || updates++ % Math.max(1, Math.ceil(settled.length / 300)) === 0) livePhases = splitPhases(windows, settled)?.phases;
      return { faults: windows, phase, ...(livePhases ? { phases: livePhases } : {}) };
    };
    const view = (done: boolean): DashboardState => {
      for (const a of agents) {
        if (a.state === 'running' && a.lastSnapAt && Date.now() - a.lastSnapAt > Math.max(3_000, 3 * snapshotMs)) {
          a.state = 'dead';
          a.why = `no snapshot for ${Math.round((Date.now() - a.lastSnapAt) / 1000)} s`;
          warnings.push(`agent ${a.name} stopped reporting: ${a.why}`);
        }
      }
      const v = merge.view({ scenario: sc.name, target: o.router, durationS: sc.durationMs / 1000, sessions: target, http: [...httpResults], warnings, done });
      peakOpen = Math.max(peakOpen, v.connections.open);
      if (schedule) Object.assign(v, faultView(schedule, done, Math.min(Date.now(), startMs + sc.durationMs) - startMs));
      return v;
    };
    timer = setInterval(() => o.onUpdate?.(view(false)), 1_000);
    // The gateways under load: shortly before the agents hang up (every connection open by then, or as many as made it).
    let openAtRss = 0;
    const rssTimer = privatePlan
      ? setTimeout(() => {
          openAtRss = peakOpen;
          void sampleGateways(o.dataDir).then((s) => (rssUnder = s));
        }, Math.max(0, sc.durationMs - Math.min(2_000, sc.durationMs / 4)))
      : undefined;

    // Run, then wait for the results (bounded) and the HTTP phases.
    // Aborted already (Ctrl-C while the agents or the client link were being set up): end at once.
    const abortWait = o.signal?.aborted ? Promise.resolve() : new Promise<void>((r) => o.signal?.addEventListener('abort', () => r(), { once: true }));
    await Promise.race([bounded(sc.durationMs), abortWait]);
    clearTimeout(rssTimer);
    if (o.signal?.aborted) nc.publish(runSubject(runId, 'stop'), encodeJson({}));
    // Faults end with the run: profiles undone, paused roles resumed (a kill stays a kill).
    await schedule?.stop();
    await Promise.race([resultsDone, bounded(10_000 + 2 * snapshotMs)]);
    httpAbort.abort();
    await Promise.race([httpDone, bounded(5_000)]);
    clearInterval(timer);
    for (const a of agents) {
      if (a.state === 'running' || a.state === 'starting') {
        a.state = 'dead';
        a.why ??= 'no final result';
        warnings.push(`agent ${a.name} sent no final result: ${a.why}`);
      }
    }
    for (const a of agents) {
      if (a.saturatedSnaps) warnings.push(`agent ${a.name} was saturated in ${a.saturatedSnaps} of ${a.snaps} snapshots (CPU > 90% or event-loop p99 > 50 ms): its latencies include its own queueing`);
    }
    const final = view(true);
    o.onUpdate?.(final);

    // Exact merge: each agent's final histogram, or what its snapshots carried when it died.
    const latency = newHistogram();
    const connect = newHistogram();
    const counters = zeroCounters();
    const reports: AgentReport[] = agents.map((a) => {
      const partial = !a.result;
      const lat = newHistogram();
      const con = newHistogram();
      if (a.result) {
        addEncoded(lat, a.result.latency);
        addEncoded(con, a.result.connect);
      } else {
        lat.add(a.latency);
        con.add(a.connect);
      }
      latency.add(lat);
      connect.add(con);
      const c = a.result ? a.result.totals : a.counters;
      addCounters(counters, c);
      const r: AgentReport = {
        name: a.name, host: a.host, state: a.state, open: a.open, target: a.target, msgsPerSec: Math.round(a.msgsPerSec),
        ...(a.pid ? { pid: a.pid } : {}), sessions: a.result?.sessions ?? a.target, counters: c, latency: latencySummary(lat),
        ...(a.health ? { health: a.health } : {}), ...(a.why ? { why: a.why } : {}),
        ...(a.result ? { clock: a.result.clock, healthOverRun: a.result.health, startedLateMs: a.result.startedLateMs } : {}),
        errorSamples: a.result?.errorSamples ?? a.errorSamples, partial, snapshots: a.snaps, saturatedSnapshots: a.saturatedSnaps,
      };
      lat.destroy();
      con.destroy();
      return r;
    });
    const endedAt = new Date();
    const runIntervals = merge.intervals();
    const intervals = merge.timeline();
    const durationMs = Math.max(1, Math.min(endedAt.getTime(), startMs + sc.durationMs) - startMs);
    const windows = schedule ? faultWindows(schedule.events, runIntervals, durationMs) : [];
    const phases = splitPhases(windows, runIntervals);
    for (const w of windows) if (w.startedMs !== undefined && !w.ok) warnings.push(`fault ${w.fault} at ${(w.startedMs / 1000).toFixed(1)} s failed: ${w.message}`);
    for (const w of windows) if (w.window === 'not recovered') warnings.push(`after ${w.fault} at ${(w.fromMs! / 1000).toFixed(1)} s the clients did not settle before the run ended (unplanned closes, reconnects or fewer open connections in every interval since)`);
    // Headline latency and rate: the steady state after the warm-up. Counts (errors, gaps, failures) stay whole-run: a failure counts whenever it happens.
    const split = splitWarmup(runIntervals, warmupEnd(runIntervals, warmupRule, true)!);
    const { latency: headline, figures: lat, rate, warning: emptySteady } = headlineOf(split, latency, counters.msgs, durationMs);
    if (emptySteady) warnings.push(emptySteady);
    const con = latencySummary(connect);
    const httpReq = httpResults.reduce((s, h) => s + h.requests, 0);
    const thresholds = evaluate(o.thresholds, {
      ...phaseFigures(phases),
      p50: lat.p50Ms, p90: lat.p90Ms, p99: lat.p99Ms, 'p99.9': lat.p999Ms, max: lat.maxMs, mean: lat.meanMs,
      connect_p99: con.p99Ms, connect_max: con.maxMs,
      errors: counters.errors, gaps: counters.gaps, resyncs: counters.resyncs, reconnects: counters.reconnects, unplanned_closes: counters.unplannedCloses,
      failed_connections: counters.connectFailures, msgs: counters.msgs, rate,
      agents_failed: agents.filter((a) => a.state !== 'done').length,
      http_errors: httpResults.reduce((s, h) => s + h.errors, 0),
      http_p99: Math.max(0, ...httpResults.map((h) => h.latencyMs.p99)),
      http_rps: httpResults.reduce((s, h) => s + h.rps, 0),
      operations: counters.connects + counters.connectFailures + counters.subscribes + counters.unsubscribes,
      http_requests: httpReq,
    });
    return {
      runId, startedAt, endedAt, durationMs, latency: headline, totalLatency: latency, connect, counters,
      warmup: { endMs: split.end.endMs, how: split.end.how, figures: split.warmup }, steady: split.steady,
      // Views sample every second; snapshots carry each agent's open count too.
      connections: { target, peakOpen: Math.max(peakOpen, ...intervals.map((i) => i.open)), failed: counters.connectFailures },
      intervals, agents: reports, http: httpResults, thresholds, warnings: [...new Set([...warnings, ...final.warnings])], snapshots: recorded,
      faults: windows, ...(phases ? { phases } : {}),
      ...(sc.private ? { private: mergePrivate(sc.private, agents.flatMap((a) => (a.result?.private ? [a.result.private] : [])), rssBefore, rssUnder, openAtRss) } : {}),
      ...(net ? { clientNet: { netns: net.netns, ports: net.ports, passthrough: [Number(new URL(o.nats).port || 4222)] } } : {}),
    };
  } finally {
    clearInterval(timer);
    httpAbort.abort();
    // Undo faults first (also on an error or Ctrl-C), so nothing outlives the run even if stopping agents hangs.
    await schedule?.stop().catch((err: Error) => log(`undoing the fault schedule: ${err.message}`));
    for (const a of agents) if (a.proc && a.proc.exitCode === null && a.proc.signalCode === null) a.proc.kill('SIGTERM');
    await Promise.all(
      agents.filter((a) => a.proc).map((a) => new Promise<void>((r) => {
        if (a.proc!.exitCode !== null || a.proc!.signalCode !== null) return r();
        const t = setTimeout(() => a.proc!.kill('SIGKILL'), 3_000);
        a.proc!.once('exit', () => {
          clearTimeout(t);
          r();
        });
      })),
    );
    // The agents are gone: now their namespace can go.
    await net?.close().catch((err: Error) => log(`removing the clients' namespace: ${err.message} (\`pushctl chaos off\` retries)`));
    await nc.drain().catch(() => nc.close());
  }
}

/** Phase figures for thresholds such as `during.p99<200ms` or `after.gaps==0` (NaN when the run had no such phase). */
function phaseFigures(p: Phases | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of ['before', 'during', 'after'] as const) {
    const f = p?.phases.find((x) => x.name === name);
    const have = f !== undefined && f.intervals > 0;
    const v = (n: number) => (have ? n : Number.NaN);
    Object.assign(out, {
      [`${name}.p50`]: v(f?.latency.p50Ms ?? 0), [`${name}.p90`]: v(f?.latency.p90Ms ?? 0), [`${name}.p99`]: v(f?.latency.p99Ms ?? 0),
      [`${name}.p99.9`]: v(f?.latency.p999Ms ?? 0), [`${name}.max`]: v(f?.latency.maxMs ?? 0), [`${name}.rate`]: v(f?.msgsPerSec ?? 0),
      [`${name}.gaps`]: v(f?.gaps ?? 0), [`${name}.resyncs`]: v(f?.resyncs ?? 0), [`${name}.reconnects`]: v(f?.reconnects ?? 0),
      [`${name}.errors`]: v(f?.errors ?? 0), [`${name}.failed_connections`]: v(f?.connectFailures ?? 0), [`${name}.unplanned_closes`]: v(f?.unplannedCloses ?? 0),
    });
  }
  return out;
}
