// Which gateways in the registry are gone before their entry expires. A
// gateway killed with -9 never deregisters; its entry would stay listed until
// the registry expiry (5 s by default) and every client sent there would
// waste a connect on it. So a gateway whose heartbeat is overdue (more than
// 1.5 heartbeat intervals old) is probed — GET its /healthz with a short
// timeout — before it is handed out, and left out of answers when nothing
// answers (refused, reset, unreachable, timeout) or another node answers on
// its port. A healthy gateway is never probed (its heartbeats are on time),
// and a late but live one answers the probe and stays listed.
//
// The verdicts are this router's own soft state, not the registry's: each
// router probes for itself, so routers reading the same registry reach the
// same verdict from the same gateway. A "gone" verdict holds only for the
// heartbeat it was made about: a newer heartbeat clears it, and the registry
// entry itself is left to expire as always.
import type { NodeRecord } from '../common/registry.ts';

export type Verdict = 'alive' | 'gone';

/** GET <http>/healthz: alive when the node itself answers (any HTTP status), gone otherwise. */
export async function probeHealthz(node: NodeRecord, timeoutMs: number): Promise<Verdict> {
  const base = node.urls.http;
  if (!base) return 'alive'; // nothing to ask: left to the expiry
  try {
    const res = await fetch(new URL('/healthz', base), { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json().catch(() => ({}))) as { id?: unknown };
    // A new process on the dead one's port is not that gateway.
    return typeof body.id === 'string' && body.id !== node.id ? 'gone' : 'alive';
  } catch {
    return 'gone';
  }
}

interface State {
  /** The heartbeat (seenAt) the verdict is about. */
  seenAt: number;
  verdict?: Verdict;
  /** When the verdict was reached: an "alive" one is rechecked after an interval if the heartbeat is still overdue. */
  at: number;
  pending?: Promise<void>;
}

export interface GatewayProbeOptions {
  /** The cluster's heartbeat interval (the router's heartbeatMs: every role beats at the same rate by default). */
  intervalMs: number;
  /** Probe timeout; default half an interval, 200 ms … 1 s. */
  timeoutMs?: number;
  now?: () => number;
  probe?: (node: NodeRecord, timeoutMs: number) => Promise<Verdict>;
  /** Told about every verdict reached (stats, logs). */
  onVerdict?: (node: NodeRecord, verdict: Verdict) => void;
}

export class GatewayProbe {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly overdueMs: number;
  readonly #now: () => number;
  readonly #probe: (node: NodeRecord, timeoutMs: number) => Promise<Verdict>;
  readonly #onVerdict: (node: NodeRecord, verdict: Verdict) => void;
  readonly #states = new Map<string, State>();

  constructor(o: GatewayProbeOptions) {
    this.intervalMs = o.intervalMs;
    this.timeoutMs = o.timeoutMs ?? Math.max(200, Math.min(1_000, Math.floor(o.intervalMs / 2)));
    this.overdueMs = Math.round(1.5 * o.intervalMs);
    this.#now = o.now ?? Date.now;
    this.#probe = o.probe ?? probeHealthz;
    this.#onVerdict = o.onVerdict ?? (() => {});
  }

  overdue(n: NodeRecord, now = this.#now()): boolean {
    return now - n.seenAt > this.overdueMs;
  }

  /** Gateways known gone, as of their current heartbeat. */
  gone(n: NodeRecord): boolean {
    const s = this.#states.get(n.id);
    return s?.seenAt === n.seenAt && s.verdict === 'gone';
  }

  /**
   * `nodes` without the gateways that are gone. Overdue gateways with no
   * verdict on their current heartbeat are probed first (at most the probe
   * timeout); probes already running are shared, not repeated.
   */
  async filter(nodes: NodeRecord[]): Promise<NodeRecord[]> {
    const waits = this.check(nodes);
    if (waits.length) await Promise.all(waits);
    return nodes.filter((n) => n.role !== 'gateway' || !this.gone(n));
  }

  /** Starts the probes `nodes` need now; returns them. Also forgets gateways no longer listed. */
  check(nodes: NodeRecord[]): Promise<void>[] {
    const now = this.#now();
    const listed = new Set<string>();
    const waits: Promise<void>[] = [];
    for (const n of nodes) {
      if (n.role !== 'gateway') continue;
      listed.add(n.id);
      let s = this.#states.get(n.id);
      if (s && s.seenAt !== n.seenAt && !s.pending) {
        // A newer heartbeat: whatever was said of the old one no longer holds.
        this.#states.delete(n.id);
        s = undefined;
      }
      if (!this.overdue(n, now)) continue;
      if (s?.pending) {
        waits.push(s.pending);
        continue;
      }
      if (s?.verdict === 'gone' || (s?.verdict === 'alive' && now - s.at < this.intervalMs)) continue;
      const st: State = { seenAt: n.seenAt, at: now };
      st.pending = this.#probe(n, this.timeoutMs)
        .catch((): Verdict => 'gone')
        .then((v) => {
          st.verdict = v;
          st.at = this.#now();
          st.pending = undefined;
          this.#onVerdict(n, v);
        });
      this.#states.set(n.id, st);
      waits.push(st.pending);
    }
    for (const id of this.#states.keys()) if (!listed.has(id) && !this.#states.get(id)!.pending) this.#states.delete(id);
    return waits;
  }

  /** Settles every probe under way (shutdown). */
  async idle(): Promise<void> {
    await Promise.all([...this.#states.values()].map((s) => s.pending));
  }
}
