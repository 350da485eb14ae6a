// Turns a scenario into each agent's share: every captured session ×K
// (amplify), each copy shifted by a jittered offset, timings divided by the
// speed factor, cut at the run's duration. Deterministic from the seed, so a
// controller and its agents agree without shipping every copy over NATS.
import { WIRE_FORMATS, type CapturedSession, type SessionOp, type WireFormat } from './scenario.ts';
import { privateConnections, type PrivatePlan, type PrivateSpec } from './private-spec.ts';

export interface AgentPlan {
  runId: string;
  agent: string;
  /** The process the plan is for: another agent wrongly sharing the name ignores it. */
  pid?: number;
  host?: string;
  /** This agent's index among `agents`: it takes global copies g with g % agents === index. */
  index: number;
  agents: number;
  sessions: CapturedSession[];
  amplify: number;
  jitterMs: number;
  speed: number;
  durationMs: number;
  seed: number;
  /** "router" or a ws:// base URL */
  connect: string;
  router: string;
  formats?: Partial<Record<WireFormat, number>>;
  snapshotMs: number;
  /** A connection silent this long is dead (0: off; absent: DEFAULT_LIVENESS_MS). */
  livenessMs?: number;
  /** Add the estimated clock offset to receive times (an agent on another host). */
  applyClockOffset: boolean;
  /** A private scenario: order-stream sessions (private-session.ts) instead of replayed ones. */
  private?: PrivatePlan;
}

export interface PlannedCopy {
  key: string;
  format: WireFormat;
  offsetMs: number;
  /** Op times relative to the run start (offset + captured t / speed). */
  ops: SessionOp[];
}

/** mulberry32: small, fast, good enough to spread offsets. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pickFormat(weights: Partial<Record<WireFormat, number>>, r: number): WireFormat {
  const all = WIRE_FORMATS.map((f) => [f, Math.max(0, weights[f] ?? 0)] as const);
  const total = all.reduce((s, [, w]) => s + w, 0);
  if (total <= 0) return 'json';
  let x = r * total;
  for (const [f, w] of all) if ((x -= w) < 0) return f;
  return 'json';
}

/** Every connection of the run: the amplified captured sessions, plus a private scenario's. */
export function totalCopies(p: Pick<AgentPlan, 'sessions' | 'amplify'> & { private?: Pick<PrivateSpec, 'users' | 'perUser'> }): number {
  return p.sessions.length * p.amplify + privateConnections(p.private);
}

export function expandShare(p: AgentPlan): PlannedCopy[] {
  const out: PlannedCopy[] = [];
  p.sessions.forEach((s, si) => {
    for (let k = 0; k < p.amplify; k++) {
      const g = si * p.amplify + k;
      if (g % p.agents !== p.index) continue;
      const r = rng(p.seed + g * 7919);
      const offsetMs = p.jitterMs > 0 ? r() * p.jitterMs : 0;
      const format = p.formats ? pickFormat(p.formats, r()) : s.format;
      const ops = s.ops
        .map((op) => ({ ...op, t: offsetMs + op.t / p.speed, ...(op.ev === 'connect' ? { format } : {}) }) as SessionOp)
        .filter((op) => op.t < p.durationMs);
      if (ops.length && ops[0]!.ev === 'connect') out.push({ key: `${s.id}#${k}`, format, offsetMs, ops });
    }
  });
  return out;
}
