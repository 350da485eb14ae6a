// Delivers each message to its subscribers without holding the event loop:
// jobs run in arrival order (so a topic's messages never overtake each
// other), and a job with many targets is split into slices of at most
// sliceMs, yielding to I/O between slices. When a slice yields, onSliceEnd
// runs first, so subscribers of a long fan-out get their data meanwhile.
// When the queue simply drains, nothing is flushed here: the owner flushes
// once per event-loop turn (setImmediate), so every message that arrived in
// that turn — many network reads, many upstream batches — leaves each
// connection in one write. (Flushing at every drain made it one write per
// upstream batch: ~1 message per syscall, measured by bench:fanout.)

import { FixedBuckets, SLICE_BOUNDS_S } from './metrics-buckets.ts';

interface Job<T> {
  targets: Iterator<T>;
  deliver: (target: T) => void;
  /** Runs once every target was handed the message. */
  done?: () => void;
  failed?: boolean;
}

export class ChunkedFanout<T> {
  #queue: Job<T>[] = [];
  #head = 0;
  #scheduled = false;
  #sliceMs: number;
  #onSliceEnd: () => void;
  slices = 0;
  yields = 0;
  /** How long each slice held the event loop (seconds), for GET /metrics: one observation per slice. */
  readonly sliceTimes = new FixedBuckets(SLICE_BOUNDS_S);

  constructor(opts: { sliceMs: number; onSliceEnd: () => void }) {
    this.#sliceMs = opts.sliceMs;
    this.#onSliceEnd = opts.onSliceEnd;
  }

  /** Queues delivery of one message to every target; targets are read lazily (a live Set skips removed members). */
  push(targets: Iterable<T>, deliver: (target: T) => void, done?: () => void): void {
    this.#queue.push({ targets: targets[Symbol.iterator](), deliver, ...(done ? { done } : {}) });
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#run());
    }
  }

  get pending(): number {
    return this.#queue.length - this.#head;
  }

  #run(): void {
    const start = performance.now();
    let sinceCheck = 0;
    while (this.#head < this.#queue.length) {
      const job = this.#queue[this.#head]!;
      for (;;) {
        const next = job.targets.next();
        if (next.done) break;
        // One bad message (or target) must not wedge the queue for everyone else.
        try {
          job.deliver(next.value);
        } catch (err) {
          if (!job.failed) console.error('fan-out delivery failed:', err);
          job.failed = true;
        }
        if (++sinceCheck >= 256) {
          sinceCheck = 0;
          if (performance.now() - start > this.#sliceMs) {
            this.sliceTimes.observe((performance.now() - start) / 1000);
            this.#endSlice();
            this.yields++;
            setImmediate(() => this.#run());
            return;
          }
        }
      }
      this.#queue[this.#head++] = undefined as unknown as Job<T>;
      job.done?.();
    }
    this.#queue = [];
    this.#head = 0;
    this.#scheduled = false;
    this.slices++;
    this.sliceTimes.observe((performance.now() - start) / 1000);
  }

  #endSlice(): void {
    this.slices++;
    try {
      this.#onSliceEnd();
    } catch (err) {
      console.error('fan-out flush failed:', err);
    }
  }
}
