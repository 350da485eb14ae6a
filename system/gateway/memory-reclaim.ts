// Gives memory back after a load ends. V8 collects its old generation when
// allocation pushes it to its limit, or through its memory reducer, which
// runs only when the process looks idle (no callbacks into JS for seconds).
// A gateway is never idle (heartbeats, events, stats), so after thousands of
// clients leave, the heap they used (and the Buffers it keeps alive: queued
// frames, socket buffers, counted as "external") stays until the next load
// happens to need the room. This asks V8 for one major collection once the
// load (client connections plus REST queries in flight) has fallen well below
// its peak on two checks in a row (closing sockets keep their buffers for a
// moment: a collection during the exodus frees little), at most once per
// minIntervalMs. It needs `--expose-gc`
// (node-flags.ts); without it (embedded mode) it does nothing.

export interface ReclaimPolicy {
  /** Least drop from the peak load, absolute and as a fraction of the peak. */
  minDrop: number;
  minDropFraction: number;
  minIntervalMs: number;
}

export const DEFAULT_RECLAIM: ReclaimPolicy = { minDrop: 50, minDropFraction: 0.2, minIntervalMs: 30_000 };

/** Whether the load fell far enough from its peak, long enough after the last collection. */
export function shouldReclaim(p: ReclaimPolicy, peak: number, load: number, sinceLastMs: number): boolean {
  const drop = peak - load;
  return sinceLastMs >= p.minIntervalMs && drop >= p.minDrop && drop >= peak * p.minDropFraction;
}

export class MemoryReclaim {
  #load: () => number;
  #policy: ReclaimPolicy;
  #checkMs: number;
  #timer: NodeJS.Timeout | undefined;
  #peak = 0;
  #lastAt = 0;
  #running = false;
  #dropSeen = false;
  /** Collections asked for, and the heap they freed (MB), for /stats. */
  collections = 0;
  freedMb = 0;

  constructor(o: { load: () => number; policy?: ReclaimPolicy; checkMs?: number }) {
    this.#load = o.load;
    this.#policy = o.policy ?? DEFAULT_RECLAIM;
    this.#checkMs = o.checkMs ?? 5_000;
  }

  get enabled(): boolean {
    return typeof globalThis.gc === 'function';
  }

  start(): void {
    if (!this.enabled || this.#timer) return;
    this.#timer = setInterval(() => this.check(), this.#checkMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One look at the load; public so a test can drive it. */
  check(now = Date.now()): void {
    const load = this.#load();
    this.#peak = Math.max(this.#peak, load);
    if (this.#running || !shouldReclaim(this.#policy, this.#peak, load, now - this.#lastAt)) {
      this.#dropSeen = false;
      return;
    }
    if (!this.#dropSeen) {
      this.#dropSeen = true;
      return;
    }
    this.#dropSeen = false;
    this.#lastAt = now;
    this.#peak = load;
    this.#running = true;
    const before = process.memoryUsage().heapUsed;
    // Async: V8 runs it as a task between event-loop turns, not inside this callback.
    void globalThis.gc!({ type: 'major', execution: 'async' }).then(
      () => {
        this.collections++;
        this.freedMb += Math.max(0, Math.round((before - process.memoryUsage().heapUsed) / 1048576));
        this.#running = false;
      },
      () => {
        this.#running = false;
      },
    );
  }
}
