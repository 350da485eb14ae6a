// A load agent: waits on NATS for a plan, estimates its clock offset to the
// controller, waits at the start barrier, replays its share of the sessions
// with real clients (WebSocket, TCP, gRPC, gRPC-web), and ships a snapshot (counters + encoded
// interval histograms + its own CPU and event-loop delay) every snapshotMs,
// then its totals. Serves one run at a time, as many runs as it is sent.
import { hostname } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';
import { connectNats } from '../../../system/common/nats-bus.ts';
import type { Credential } from '../../../system/common/secrets.ts';
import { nowUs } from '../../../bench/lib/clock.ts';
import { DEFAULT_LIVENESS_MS, LivenessWatch } from './liveness.ts';
import { Meter, newHistogram } from './meter.ts';
import { expandShare, type AgentPlan } from './plan.ts';
import { ReplaySession } from './session-client.ts';
import { PrivateRun } from './private-session.ts';
import {
  DISCOVER, planSubject, runSubject, encodeJson, decodeJson, addCounters, zeroCounters,
  type AgentHello, type AgentHealth, type AgentResult, type AgentSnapshot, type ClockEstimate,
} from './wire.ts';
import { parseConnect, type ClientProtocol, type SessionOp } from './scenario.ts';

export interface AgentHandle {
  name: string;
  stop(): Promise<void>;
}

/** Busy if over 90% of a core or the event loop lags: its latencies then include its own queueing. */
export const SATURATED_CPU = 0.9;
export const SATURATED_LOOP_MS = 50;

export async function estimateClock(nc: NatsConnection, subject: string, samples = 8): Promise<Omit<ClockEstimate, 'applied'>> {
  let best: { rtt: number; offset: number } | undefined;
  let got = 0;
  for (let i = 0; i < samples; i++) {
    const t0 = nowUs();
    try {
      const m = await nc.request(subject, encodeJson({}), { timeout: 1_000 });
      const t1 = nowUs();
      const { us } = decodeJson<{ us: number }>(m.data);
      got++;
      const rtt = t1 - t0;
      // NTP-style: the controller read its clock about half-way through the round trip.
      if (!best || rtt < best.rtt) best = { rtt, offset: us - (t0 + t1) / 2 };
    } catch {
      // a lost sample
    }
  }
  if (!best) throw new Error(`no clock reply from the controller on ${subject}`);
  return { offsetUs: Math.round(best.offset), uncertaintyUs: Math.ceil(best.rtt / 2), samples: got };
}

class HealthSampler {
  #loop = monitorEventLoopDelay({ resolution: 10 });
  #cpu = process.cpuUsage();
  #at = performance.now();
  #runCpu = process.cpuUsage();
  #runAt = performance.now();
  #runLoop = monitorEventLoopDelay({ resolution: 10 });
  cpuMax = 0;

  constructor() {
    this.#loop.enable();
    this.#runLoop.enable();
  }

  sample(): AgentHealth {
    const now = performance.now();
    const d = process.cpuUsage(this.#cpu);
    this.#cpu = process.cpuUsage();
    const cpu = (d.user + d.system) / 1000 / Math.max(1, now - this.#at);
    this.#at = now;
    const loopDelayP99Ms = this.#loop.percentile(99) / 1e6;
    const loopDelayMaxMs = this.#loop.max / 1e6;
    this.#loop.reset();
    this.cpuMax = Math.max(this.cpuMax, cpu);
    return health(cpu, loopDelayP99Ms, loopDelayMaxMs);
  }

  whole(): AgentHealth & { cpuMax: number } {
    const d = process.cpuUsage(this.#runCpu);
    const cpu = (d.user + d.system) / 1000 / Math.max(1, performance.now() - this.#runAt);
    return { ...health(cpu, this.#runLoop.percentile(99) / 1e6, this.#runLoop.max / 1e6), cpuMax: Math.round(this.cpuMax * 100) / 100 };
  }

  stop(): void {
    this.#loop.disable();
    this.#runLoop.disable();
  }
}

function health(cpu: number, p99: number, max: number): AgentHealth {
  const r = (x: number) => Math.round(x * 100) / 100;
  return {
    cpu: r(cpu),
    loopDelayP99Ms: r(p99),
    loopDelayMaxMs: r(max),
    rssMb: Math.round(process.memoryUsage.rss() / 1048576),
    saturated: cpu > SATURATED_CPU || p99 > SATURATED_LOOP_MS,
  };
}

const encodeHist = (h: Histogram) => encodeIntoCompressedBase64(h);

export async function startAgent(o: { nats: string; name: string; log?: (line: string) => void; auth?: Credential }): Promise<AgentHandle> {
  if (!/^[A-Za-z0-9_-]+$/.test(o.name)) throw new Error(`agent name "${o.name}": letters, digits, - and _ only (it is part of a NATS subject)`);
  const log = o.log ?? (() => {});
  const nc = await connectNats(o.nats, `pushctl-agent-${o.name}`, o.auth);
  let current: { abort(): void; done: Promise<void> } | undefined;
  const subs: Subscription[] = [];

  const hello = (): AgentHello => ({ name: o.name, host: hostname(), pid: process.pid, node: process.version, busy: !!current });
  subs.push(nc.subscribe(DISCOVER, { callback: (_e, m) => void m.respond(encodeJson(hello())) }));
  subs.push(
    nc.subscribe(planSubject(o.name), {
      callback: (_e, m) => {
        let plan: AgentPlan;
        try {
          plan = decodeJson<AgentPlan>(m.data);
        } catch {
          return void m.respond(encodeJson({ error: 'plan is not JSON' }));
        }
        if ((plan.pid && plan.pid !== process.pid) || (plan.host && plan.host !== hostname())) return; // meant for a namesake
        if (current) return void m.respond(encodeJson({ error: `agent ${o.name} is busy with another run` }));
        const run = runPlan(nc, o.name, plan, log);
        current = run;
        m.respond(encodeJson({ ok: true, ...hello() }));
        void run.done.finally(() => (current = undefined));
      },
    }),
  );
  await nc.flush();
  return {
    name: o.name,
    stop: async () => {
      current?.abort();
      await current?.done.catch(() => undefined);
      for (const s of subs) s.unsubscribe();
      await nc.drain().catch(() => nc.close());
    },
  };
}

function runPlan(nc: NatsConnection, name: string, plan: AgentPlan, log: (l: string) => void): { abort(): void; done: Promise<void> } {
  let aborted = false;
  let wake: (() => void) | undefined;
  const abort = () => {
    aborted = true;
    wake?.();
  };
  const done = (async () => {
    const startSub = nc.subscribe(runSubject(plan.runId, 'start'), { max: 1 });
    const stopSub = nc.subscribe(runSubject(plan.runId, 'stop'), { callback: () => abort() });
    try {
      const est = await estimateClock(nc, runSubject(plan.runId, 'clock'));
      const clock: ClockEstimate = { ...est, applied: plan.applyClockOffset };
      const meter = new Meter(nowUs);
      if (plan.applyClockOffset) meter.offsetUs = clock.offsetUs;
      // The start barrier: every agent gets the same start time on the controller's clock.
      let startAtUs = 0;
      const barrier = (async () => {
        for await (const m of startSub) startAtUs = decodeJson<{ startAtUs: number }>(m.data).startAtUs;
      })();
      await Promise.race([barrier, new Promise((r) => setTimeout(r, 60_000)), new Promise<void>((r) => (wake = r))]);
      if (aborted || !startAtUs) return;
      const localStart = startAtUs - clock.offsetUs;
      const startedLateMs = Math.max(0, (nowUs() - localStart) / 1000);
      await sleepUntil(localStart, () => aborted);

      const copies = expandShare(plan);
      const timeline: Array<{ t: number; s: ReplaySession; op: SessionOp }> = [];
      let open = 0;
      // One watchdog timer for every session of the run (0: liveness off).
      const livenessMs = plan.livenessMs ?? DEFAULT_LIVENESS_MS;
      const liveness = livenessMs > 0 ? new LivenessWatch({ timeoutMs: livenessMs }) : undefined;
      const env = {
        meter,
        clockUs: nowUs,
        gateways: plan.connect === 'router' ? routerLookup(plan.router) : fixedTarget(plan.connect),
        openDelta: (d: number) => (open += d),
        stopped: () => aborted || ended,
        ...(liveness ? { liveness } : {}),
      };
      let ended = false;
      const sessions = copies.map((c) => {
        const s = new ReplaySession(c.key, c.format, env);
        for (const op of c.ops) timeline.push({ t: op.t, s, op });
        return s;
      });
      timeline.sort((a, b) => a.t - b.t);
      // A private scenario: its order-stream sessions, connected from the start (no timeline).
      const priv = plan.private ? new PrivateRun(plan.private, plan.index, plan.agents, env) : undefined;
      const target = sessions.length + (priv?.sessions.length ?? 0);
      log(`run ${plan.runId}: ${target} sessions, ${timeline.length} operations over ${plan.durationMs} ms`);

      const sampler = new HealthSampler();
      const totals = zeroCounters();
      const totalLatency = newHistogram();
      const totalConnect = newHistogram();
      const errorSamples: string[] = [];
      let snapSeq = 0;
      let lastSnap = performance.now();
      const snapshot = () => {
        const now = performance.now();
        const iv = meter.take();
        addCounters(totals, iv.counters);
        totalLatency.add(iv.latency);
        totalConnect.add(iv.connect);
        for (const e of iv.errorSamples) if (errorSamples.length < 20) errorSamples.push(e);
        const snap: AgentSnapshot = {
          agent: name, seq: ++snapSeq, atMs: (nowUs() + clock.offsetUs) / 1000, intervalMs: now - lastSnap, open, target,
          delta: iv.counters, latency: encodeHist(iv.latency), connect: encodeHist(iv.connect), health: sampler.sample(), errorSamples: iv.errorSamples,
        };
        lastSnap = now;
        nc.publish(runSubject(plan.runId, 'snap'), encodeJson(snap));
      };
      const snapTimer = setInterval(snapshot, plan.snapshotMs);

      // One timer walks the whole timeline: cheap for tens of thousands of sessions.
      let next = 0;
      const t0 = performance.now();
      let stepTimer: NodeJS.Timeout | undefined;
      const step = () => {
        const elapsed = performance.now() - t0;
        while (next < timeline.length && timeline[next]!.t <= elapsed) {
          const e = timeline[next++]!;
          try {
            e.s.apply(e.op);
          } catch (err) {
            meter.error(`${e.s.key}: ${(err as Error).message}`);
          }
        }
        if (next < timeline.length) stepTimer = setTimeout(step, Math.min(1_000, Math.max(1, timeline[next]!.t - elapsed)));
      };
      step();
      void priv?.start();
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, plan.durationMs);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      ended = true;
      clearTimeout(stepTimer);
      clearInterval(snapTimer);
      for (const s of sessions) s.stop();
      priv?.stop();
      liveness?.stop();
      snapshot();
      // Loss is known only now (the union of each user's events): into the totals with the rest.
      const privateResult = priv?.result(encodeHist);
      if (privateResult) totals.gaps += privateResult.gaps;
      const result: AgentResult = {
        agent: name, host: hostname(), pid: process.pid, sessions: target, totals, ...(privateResult ? { private: privateResult } : {}),
        latency: encodeHist(totalLatency), connect: encodeHist(totalConnect), clock, health: sampler.whole(), errorSamples,
        startedLateMs: Math.round(startedLateMs),
      };
      sampler.stop();
      nc.publish(runSubject(plan.runId, 'result'), encodeJson(result));
      await nc.flush();
      log(`run ${plan.runId} done: ${totals.msgs} messages`);
    } catch (err) {
      log(`run ${plan.runId} failed: ${(err as Error).message}`);
      nc.publish(runSubject(plan.runId, 'result'), encodeJson({ agent: name, error: (err as Error).message }));
    } finally {
      startSub.unsubscribe();
      stopSub.unsubscribe();
    }
  })();
  return { abort, done };
}

async function sleepUntil(localUs: number, cancelled: () => boolean): Promise<void> {
  for (;;) {
    const left = (localUs - nowUs()) / 1000;
    if (left <= 0 || cancelled()) return;
    await new Promise((r) => setTimeout(r, Math.min(left, 200)));
  }
}

/** Asks the router for the least-loaded gateways on every connect, as a real client does. */
function routerLookup(router: string): (protocol: ClientProtocol) => Promise<string[]> {
  return async (protocol) => {
    const res = await fetch(`${router}/v1/gateways?protocol=${protocol}&limit=3`, { signal: AbortSignal.timeout(3_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = (await res.json()) as { gateways?: Array<{ url: string }> };
    return (body.gateways ?? []).map((g) => g.url);
  };
}

/** A scenario's fixed `connect:` addresses, one per protocol (checked when the scenario was loaded). */
function fixedTarget(connect: string): (protocol: ClientProtocol) => Promise<string[]> {
  const targets = parseConnect(connect);
  return async (protocol) => {
    const url = targets[protocol];
    if (!url) throw new Error(`connect "${connect}" has no ${protocol} address`);
    return [url];
  };
}
