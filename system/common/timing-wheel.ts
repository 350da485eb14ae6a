// One timer for many deadlines (heartbeats, idle timeouts). A Node timer per
// connection costs a heap entry and a re-arm per ping; a wheel costs one
// interval for all of them and O(1) to (re)schedule or cancel.

export class TimingWheel<T> {
  #slots: Set<T>[];
  #where = new Map<T, { slot: number; rounds: number }>();
  #cursor = 0;
  #tickMs: number;
  #timer: NodeJS.Timeout | undefined;
  #onExpire: (item: T) => void;

  constructor(opts: { tickMs: number; slots: number; onExpire: (item: T) => void }) {
    if (opts.tickMs <= 0 || opts.slots < 2) throw new Error('timing wheel needs tickMs > 0 and at least 2 slots');
    this.#tickMs = opts.tickMs;
    this.#slots = Array.from({ length: opts.slots }, () => new Set<T>());
    this.#onExpire = opts.onExpire;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.tick(), this.#tickMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** (Re)schedules item to expire after delayMs, rounded up to whole ticks (at least one). */
  schedule(item: T, delayMs: number): void {
    this.cancel(item);
    const ticks = Math.max(1, Math.ceil(delayMs / this.#tickMs));
    const n = this.#slots.length;
    const slot = (this.#cursor + ticks) % n;
    const rounds = Math.floor((ticks - 1) / n);
    this.#slots[slot]!.add(item);
    this.#where.set(item, { slot, rounds });
  }

  cancel(item: T): void {
    const w = this.#where.get(item);
    if (!w) return;
    this.#slots[w.slot]!.delete(item);
    this.#where.delete(item);
  }

  has(item: T): boolean {
    return this.#where.has(item);
  }

  get size(): number {
    return this.#where.size;
  }

  /** Advances one tick and fires what is due; public so tests drive time. */
  tick(): void {
    this.#cursor = (this.#cursor + 1) % this.#slots.length;
    const slot = this.#slots[this.#cursor]!;
    if (slot.size === 0) return;
    const due: T[] = [];
    for (const item of slot) {
      const w = this.#where.get(item)!;
      if (w.rounds > 0) w.rounds--;
      else due.push(item);
    }
    for (const item of due) {
      slot.delete(item);
      this.#where.delete(item);
    }
    for (const item of due) {
      try {
        this.#onExpire(item);
      } catch (err) {
        console.error('timing wheel callback failed:', err);
      }
    }
  }
}
