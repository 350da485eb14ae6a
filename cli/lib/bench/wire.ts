// What a bench controller and its agents say to each other over NATS.
//   pushctl.bench.discover          request-many: agents answer with AgentHello
//   pushctl.agent.<name>.plan       request: AgentPlan → {ok} | {error}
//   pushctl.bench.<run>.clock       request: {} → {us: controller clock}
//   pushctl.bench.<run>.start       publish: {startAtUs} (controller clock): the start barrier
//   pushctl.bench.<run>.stop        publish: end now
//   pushctl.bench.<run>.snap        agent publishes AgentSnapshot every snapshotMs
//   pushctl.bench.<run>.result      agent publishes AgentResult once at the end

import type { PrivateAgentResult } from './private-session.ts';

export const DISCOVER = 'pushctl.bench.discover';
export const planSubject = (agent: string) => `pushctl.agent.${agent}.plan`;
export const runSubject = (runId: string, what: 'clock' | 'start' | 'stop' | 'snap' | 'result') => `pushctl.bench.${runId}.${what}`;

const enc = new TextEncoder();
const dec = new TextDecoder();
export const encodeJson = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));
export const decodeJson = <T>(b: Uint8Array): T => JSON.parse(dec.decode(b)) as T;

export interface AgentHello {
  name: string;
  host: string;
  pid: number;
  node: string;
  busy: boolean;
}

/** Counters an agent keeps; snapshots carry the change since the previous one, results the totals. */
export interface Counters {
  /** Market events received. */
  msgs: number;
  bytes: number;
  /** Depth snapshots: state, not latency samples. */
  snapshots: number;
  /** Events published before the client asked for their topic (snapshot, catch-up on subscribe): not latency samples. */
  catchup: number;
  /** Messages missing from per-topic sequences, and how many jumps there were. */
  gaps: number;
  gapEvents: number;
  /** A seq at or below the last one seen (duplicate or reordered). */
  outOfOrder: number;
  resyncs: number;
  epochChanges: number;
  /** Receive time before pt (clock skew): recorded as 0. */
  negative: number;
  connects: number;
  connectFailures: number;
  /** Upgrades refused with 503 (admission control, draining) and retried. */
  rejected: number;
  reconnects: number;
  unplannedCloses: number;
  /** Of the unplanned closes, those the client found itself: nothing arrived for the liveness timeout. */
  livenessTimeouts: number;
  subscribes: number;
  unsubscribes: number;
  errors: number;
}

export const zeroCounters = (): Counters => ({
  msgs: 0, bytes: 0, snapshots: 0, catchup: 0, gaps: 0, gapEvents: 0, outOfOrder: 0, resyncs: 0, epochChanges: 0, negative: 0,
  connects: 0, connectFailures: 0, rejected: 0, reconnects: 0, unplannedCloses: 0, livenessTimeouts: 0, subscribes: 0, unsubscribes: 0, errors: 0,
});

export function addCounters(into: Counters, c: Counters): Counters {
  for (const k of Object.keys(into) as Array<keyof Counters>) into[k] += c[k] ?? 0;
  return into;
}

export interface AgentHealth {
  /** CPU share over the last interval, 1.0 = one core. */
  cpu: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  rssMb: number;
  saturated: boolean;
}

export interface ClockEstimate {
  /** Add to the agent's clock to get the controller's, µs. */
  offsetUs: number;
  /** Half the best round trip, µs. */
  uncertaintyUs: number;
  samples: number;
  applied: boolean;
}

export interface AgentSnapshot {
  agent: string;
  seq: number;
  /** Controller clock, ms (agent clock + offset). */
  atMs: number;
  intervalMs: number;
  open: number;
  target: number;
  delta: Counters;
  /** Encoded (compressed base64) HdrHistograms of this interval, µs. */
  latency: string;
  connect: string;
  health: AgentHealth;
  errorSamples: string[];
}

export interface AgentResult {
  agent: string;
  host: string;
  pid: number;
  sessions: number;
  totals: Counters;
  latency: string;
  connect: string;
  clock: ClockEstimate;
  /** Over the whole run. */
  health: AgentHealth & { cpuMax: number };
  errorSamples: string[];
  startedLateMs: number;
  /** A private scenario's figures (private-session.ts). */
  private?: PrivateAgentResult;
}
