// A userspace TCP fault proxy (node:net), after Toxiproxy: latency with
// jitter, bandwidth, slicer per direction; slow close, reset, timeout per
// connection; partitions (stall or reset). Needs no root and no kernel
// feature, so it realises what tc/netem cannot on a given machine.
//
// "up" is client → upstream (what the proxy reads from the accepted socket),
// "down" is upstream → client.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { Distribution } from './profile.ts';

export interface LaneFaults {
  latencyMs?: number;
  jitterMs?: number;
  distribution?: Distribution;
  /** Bits per second. */
  bandwidthBps?: number;
  slicer?: { averageSize: number; sizeVariation: number; delayMs: number };
}

export interface ProxyFaults {
  up?: LaneFaults;
  down?: LaneFaults;
  /** Delay the close (FIN) by this long after the other side closed. */
  slowCloseMs?: number;
  /** Reset each connection this long after it opened. */
  resetAfterMs?: number;
  /** Stop forwarding and close each connection this long after it opened (Toxiproxy's timeout). */
  timeoutMs?: number;
  /** The reader on the client side reads at most this fast (small buffer, so backpressure reaches upstream). */
  slowReaderBps?: number;
}

export type PartitionMode = 'drop' | 'reset';

export interface ProxyOptions {
  listenHost?: string;
  listenPort?: number;
  targetHost: string;
  targetPort: number;
  faults?: ProxyFaults;
}

export interface ProxyStats {
  accepted: number;
  open: number;
  bytesUp: number;
  bytesDown: number;
  resets: number;
  partition: PartitionMode | null;
}

/** One delay sample around `mean` with netem's distributions (pareto approximated by a shape-3 Pareto). */
export function sampleDelay(mean: number, jitter: number, dist: Distribution = 'uniform', rnd = Math.random): number {
  if (!jitter) return mean;
  const normal = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  const pareto = () => Math.pow(1 - rnd(), -1 / 3) - 1.5; // mean 0, long right tail
  let x: number;
  if (dist === 'normal') x = normal();
  else if (dist === 'pareto') x = pareto();
  else if (dist === 'paretonormal') x = 0.25 * normal() + 0.75 * pareto();
  else x = 2 * rnd() - 1;
  return Math.max(0, mean + x * jitter);
}

interface Chunk {
  data: Buffer;
  at: number;
}

/** One direction of one connection: reads `src`, writes `dst` after the lane's faults. */
class Lane {
  readonly #src: Socket;
  readonly #dst: Socket;
  readonly #queue: Chunk[] = [];
  #queued = 0;
  #busyUntil = 0;
  #lastAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #stalled = false;
  #waitingDrain = false;
  #ended = false;
  readonly faults: () => LaneFaults;
  readonly #cap: () => number;
  readonly #count: (n: number) => void;
  onEnd: () => void = () => {};

  constructor(src: Socket, dst: Socket, faults: () => LaneFaults, cap: () => number, count: (n: number) => void) {
    this.#src = src;
    this.#dst = dst;
    this.faults = faults;
    this.#cap = cap;
    this.#count = count;
    src.on('data', (d: Buffer) => this.#push(d));
    src.on('end', () => {
      this.#ended = true;
      this.#maybeEnd();
    });
  }

  #push(data: Buffer): void {
    const f = this.faults();
    const now = performance.now();
    // Slice so bandwidth pacing is smooth and the slicer toxic has pieces to space out.
    const sliceBytes = f.slicer
      ? () => Math.max(1, f.slicer!.averageSize + Math.round((2 * Math.random() - 1) * f.slicer!.sizeVariation))
      : f.bandwidthBps
        ? () => Math.max(256, Math.floor(f.bandwidthBps! / 8 / 50))
        : () => data.length;
    for (let off = 0; off < data.length; ) {
      const n = Math.min(sliceBytes(), data.length - off);
      const piece = data.subarray(off, off + n);
      off += n;
      let sent = Math.max(now, this.#busyUntil);
      if (f.bandwidthBps) sent += (n * 8 * 1000) / f.bandwidthBps;
      if (f.slicer) sent += f.slicer.delayMs;
      this.#busyUntil = sent;
      // A byte stream keeps its order: a later piece never overtakes an earlier one.
      const at = Math.max(sent + sampleDelay(f.latencyMs ?? 0, f.jitterMs ?? 0, f.distribution), this.#lastAt);
      this.#lastAt = at;
      this.#queue.push({ data: piece, at });
      this.#queued += n;
    }
    if (this.#queued > this.#cap()) this.#src.pause();
    this.#schedule();
  }

  /** Partition "drop": hold everything (as TCP would keep retransmitting) until released. */
  stall(on: boolean): void {
    this.#stalled = on;
    if (on) {
      this.#src.pause();
      clearTimeout(this.#timer);
      this.#timer = undefined;
    } else {
      // Held data goes out now, as a healed link would deliver the retransmissions.
      const now = performance.now();
      for (const c of this.#queue) c.at = Math.max(c.at, now);
      this.#busyUntil = Math.max(this.#busyUntil, now);
      if (this.#queued <= this.#cap()) this.#src.resume();
      this.#schedule();
    }
  }

  #schedule(): void {
    if (this.#timer || this.#stalled || this.#waitingDrain) return;
    const head = this.#queue[0];
    if (!head) return this.#maybeEnd();
    const wait = head.at - performance.now();
    if (wait <= 0.5) return this.#flush();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, wait);
  }

  #flush(): void {
    if (this.#stalled) return;
    const now = performance.now();
    let ok = true;
    while (this.#queue.length > 0 && this.#queue[0]!.at <= now + 0.5 && ok) {
      const c = this.#queue.shift()!;
      this.#queued -= c.data.length;
      this.#count(c.data.length);
      if (this.#dst.destroyed) return;
      ok = this.#dst.write(c.data);
    }
    if (!ok) {
      this.#waitingDrain = true;
      this.#dst.once('drain', () => {
        this.#waitingDrain = false;
        this.#schedule();
      });
    }
    if (this.#queued <= this.#cap() / 2 && !this.#stalled && !this.#src.destroyed) this.#src.resume();
    this.#schedule();
  }

  #maybeEnd(): void {
    if (this.#ended && this.#queue.length === 0 && !this.#stalled) this.onEnd();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
  }
}

class Link {
  readonly client: Socket;
  readonly upstream: Socket;
  readonly up: Lane;
  readonly down: Lane;
  readonly #timers: NodeJS.Timeout[] = [];
  #closed = false;

  constructor(proxy: ChaosProxy, client: Socket, upstream: Socket) {
    this.client = client;
    this.upstream = upstream;
    const f = () => proxy.faults;
    const bigCap = () => 1 << 20;
    this.up = new Lane(client, upstream, () => f().up ?? {}, bigCap, (n) => (proxy.stats.bytesUp += n));
    this.down = new Lane(
      upstream,
      client,
      () => {
        const d = f().down ?? {};
        const slow = f().slowReaderBps;
        return slow && (!d.bandwidthBps || slow < d.bandwidthBps) ? { ...d, bandwidthBps: slow } : d;
      },
      // A slow reader keeps little in flight, so the sender sees it quickly.
      () => (f().slowReaderBps ? 16 * 1024 : 1 << 20),
      (n) => (proxy.stats.bytesDown += n),
    );
    const halfClose = (dst: Socket) => () => {
      const ms = f().slowCloseMs ?? 0;
      const end = () => !dst.destroyed && dst.end();
      if (ms > 0) this.#timers.push(setTimeout(end, ms));
      else end();
    };
    this.up.onEnd = halfClose(upstream);
    this.down.onEnd = halfClose(client);
    for (const s of [client, upstream]) {
      s.on('error', () => this.destroy(false));
      s.on('close', () => this.destroy(false));
    }
    const { resetAfterMs, timeoutMs } = f();
    if (resetAfterMs) this.#timers.push(setTimeout(() => this.destroy(true), resetAfterMs));
    if (timeoutMs) {
      // Toxiproxy's timeout: data stops at once, the connection closes after the timeout.
      this.up.stall(true);
      this.down.stall(true);
      this.#timers.push(setTimeout(() => this.destroy(false), timeoutMs));
    }
  }

  stall(on: boolean): void {
    this.up.stall(on);
    this.down.stall(on);
  }

  /** `reset` sends an RST to both sides (as REJECT --reject-with tcp-reset would). */
  destroy(reset: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.up.stop();
    this.down.stop();
    for (const s of [this.client, this.upstream]) {
      if (reset && !s.destroyed && typeof s.resetAndDestroy === 'function' && s.readyState !== 'opening') s.resetAndDestroy();
      else s.destroy();
    }
  }
}

export class ChaosProxy {
  readonly #opts: ProxyOptions;
  readonly #server: Server;
  readonly #links = new Set<Link>();
  readonly #pending = new Set<Socket>();
  faults: ProxyFaults;
  readonly stats: ProxyStats = { accepted: 0, open: 0, bytesUp: 0, bytesDown: 0, resets: 0, partition: null };
  port = 0;

  constructor(opts: ProxyOptions) {
    this.#opts = opts;
    this.faults = opts.faults ?? {};
    this.#server = createServer({ noDelay: true, pauseOnConnect: true, allowHalfOpen: true }, (c) => this.#accept(c));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#opts.listenPort ?? 0, this.#opts.listenHost ?? '127.0.0.1', () => resolve());
    });
    this.port = (this.#server.address() as { port: number }).port;
    return this.port;
  }

  #accept(client: Socket): void {
    this.stats.accepted++;
    client.on('error', () => {});
    if (this.stats.partition === 'reset') {
      this.stats.resets++;
      client.resetAndDestroy();
      return;
    }
    // While partitioned by "drop", a new connection waits (its SYN would be retransmitted) until the link heals.
    this.#pending.add(client);
    client.once('close', () => this.#pending.delete(client));
    if (this.stats.partition !== 'drop') this.#connectUpstream(client);
  }

  #connectUpstream(client: Socket): void {
    this.#pending.delete(client);
    if (client.destroyed) return;
    const upstream = connect({ host: this.#opts.targetHost, port: this.#opts.targetPort, noDelay: true, allowHalfOpen: true });
    upstream.on('error', () => {});
    // Neither side flows until the upstream connection is there (a 'data' listener would start it).
    client.pause();
    upstream.pause();
    const link = new Link(this, client, upstream);
    this.#links.add(link);
    this.stats.open++;
    const gone = () => {
      if (this.#links.delete(link)) this.stats.open--;
    };
    client.once('close', gone);
    upstream.once('close', gone);
    upstream.once('connect', () => {
      client.resume();
      upstream.resume();
    });
  }

  setFaults(f: ProxyFaults): void {
    this.faults = f;
  }

  /** Cut (drop: stall; reset: RST every connection and refuse new ones) or heal (null). */
  setPartition(mode: PartitionMode | null): void {
    const was = this.stats.partition;
    this.stats.partition = mode;
    if (mode === 'reset') {
      for (const l of this.#links) {
        this.stats.resets++;
        l.destroy(true);
      }
      for (const c of this.#pending) c.resetAndDestroy();
    } else if (mode === 'drop') {
      for (const l of this.#links) l.stall(true);
    } else if (was === 'drop') {
      for (const l of this.#links) l.stall(false);
      for (const c of [...this.#pending]) this.#connectUpstream(c);
    }
  }

  async close(): Promise<void> {
    for (const l of this.#links) l.destroy(false);
    for (const c of this.#pending) c.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Toggles a proxy's partition on a flapping schedule (up for upMs, cut for downMs). Returns a stop function that heals it. */
export function flap(proxy: { setPartition(m: PartitionMode | null): void }, mode: PartitionMode, upMs: number, downMs: number, afterMs = upMs): () => void {
  let timer: NodeJS.Timeout;
  const cut = () => {
    proxy.setPartition(mode);
    timer = setTimeout(heal, downMs);
  };
  const heal = () => {
    proxy.setPartition(null);
    timer = setTimeout(cut, upMs);
  };
  timer = setTimeout(cut, afterMs);
  return () => {
    clearTimeout(timer);
    proxy.setPartition(null);
  };
}
