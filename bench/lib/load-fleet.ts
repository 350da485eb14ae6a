// Parent side of the load clients: spreads the connections over N load
// processes, and merges their snaps (counts summed, histograms added).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, decodeFromCompressedBase64, type Histogram } from 'hdr-histogram-js';
import { BenchChild } from './child.ts';
import type { ConnectReply, SnapReply, WireProtocol } from './load-clients.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ENTRY = join(HERE, 'load-clients.ts');
const TAP_ENTRY = join(HERE, 'bus-tap.ts');

export interface FleetSnap {
  events: number;
  other: number;
  resyncs: number;
  bytes: number;
  negative: number;
  /** Times the clients paused reading to stay responsive: they were the bottleneck then. */
  pauses: number;
  open: number;
  closed: number;
  closeCodes: Record<string, number>;
  /** Events per second summed over the processes, each over its own interval. */
  eventsPerSec: number;
  intervalMs: number;
  hist: Histogram;
}

export interface FleetTotals {
  events: number;
  other: number;
  resyncs: number;
  negative: number;
  closed: number;
  closeCodes: Record<string, number>;
}

export class LoadFleet {
  readonly children: BenchChild[];
  /** Everything counted since the fleet started, measured windows or not. */
  readonly totals: FleetTotals = { events: 0, other: 0, resyncs: 0, negative: 0, closed: 0, closeCodes: {} };

  private constructor(children: BenchChild[]) {
    this.children = children;
  }

  static start(procs: number, maxMs: number): Promise<LoadFleet> {
    return LoadFleet.#spawn(Array.from({ length: procs }, (_, i) => new BenchChild(`load-clients-${i + 1}`, ENTRY, [String(maxMs)])));
  }

  /** One process watching the bus itself (bus-tap.ts): the feed → NATS part of the latency, on these subjects (default every trade). */
  static tap(natsUrl: string, maxMs: number, subjects: string[] = ['md.trade.>']): Promise<LoadFleet> {
    return LoadFleet.#spawn([new BenchChild('bus-tap', TAP_ENTRY, [natsUrl, String(maxMs), subjects.join(',')])]);
  }

  static async #spawn(children: BenchChild[]): Promise<LoadFleet> {
    const fleet = new LoadFleet(children);
    try {
      await Promise.all(children.map((c) => c.waitFor('ready', 20_000)));
    } catch (err) {
      await fleet.stop();
      throw err;
    }
    return fleet;
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid);
  }

  /** Opens every URL, round-robin over the processes; bounded by timeoutMs. With ackEvery, clients send a tiny frame per that many messages (raw baseline's credit); protocol 'socketio' subscribes each to topics[i] after the Engine.IO handshake. */
  async connect(urls: string[], timeoutMs: number, ackEvery = 0, protocol: WireProtocol = 'ws', topics: string[][] = []): Promise<{ open: number; failed: number; retries: number; errors: string[]; ms: number }> {
    const parts = this.children.map(() => [] as string[]);
    const topicParts = this.children.map(() => [] as string[][]);
    urls.forEach((u, i) => {
      parts[i % parts.length]!.push(u);
      topicParts[i % parts.length]!.push(topics[i] ?? []);
    });
    const replies = await Promise.all(
      this.children.map((c, i) =>
        c.request<ConnectReply>({ type: 'connect', urls: parts[i]!, concurrency: 50, timeoutMs, ackEvery, protocol, topics: topicParts[i]! }, timeoutMs + 15_000),
      ),
    );
    return {
      open: replies.reduce((a, r) => a + r.open, 0),
      failed: replies.reduce((a, r) => a + r.failed, 0),
      retries: replies.reduce((a, r) => a + r.retries, 0),
      errors: replies.flatMap((r) => r.errors).slice(0, 5),
      ms: Math.max(...replies.map((r) => r.ms)),
    };
  }

  /** Counts and latencies since the previous snap, merged over the processes. */
  async snap(): Promise<FleetSnap> {
    const replies = await Promise.all(this.children.map((c) => c.request<SnapReply>({ type: 'snap' }, 30_000)));
    const hist = build({ numberOfSignificantValueDigits: 3 });
    const out: FleetSnap = {
      events: 0, other: 0, resyncs: 0, bytes: 0, negative: 0, pauses: 0, open: 0, closed: 0, closeCodes: {},
      eventsPerSec: 0, intervalMs: 0, hist,
    };
    for (const r of replies) {
      out.events += r.events;
      out.other += r.other;
      out.resyncs += r.resyncs;
      out.bytes += r.bytes;
      out.negative += r.negative;
      out.pauses += r.pauses ?? 0;
      out.open += r.open;
      out.closed += r.closed;
      for (const [k, v] of Object.entries(r.closeCodes)) {
        out.closeCodes[k] = (out.closeCodes[k] ?? 0) + v;
        this.totals.closeCodes[k] = (this.totals.closeCodes[k] ?? 0) + v;
      }
      for (const k of ['events', 'other', 'resyncs', 'negative', 'closed'] as const) this.totals[k] += r[k];
      out.eventsPerSec += r.intervalMs > 0 ? (r.events * 1000) / r.intervalMs : 0;
      out.intervalMs = Math.max(out.intervalMs, r.intervalMs);
      const h = decodeFromCompressedBase64(r.hist);
      hist.add(h);
      h.destroy();
    }
    return out;
  }

  async closeConnections(): Promise<void> {
    await Promise.all(this.children.filter((c) => c.alive).map((c) => c.request({ type: 'close' }, 10_000).catch(() => undefined)));
  }

  async stop(): Promise<void> {
    await Promise.all(this.children.map((c) => c.kill()));
  }
}
