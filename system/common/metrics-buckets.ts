// Prometheus-style histogram buckets filled where a figure is already
// measured (one call per event, not per subscriber): a few comparisons and
// one array increment, read only when Prometheus scrapes. Never reset, so
// the exposed counts only grow (a benchmark may reset its own HDR windows;
// these are separate).

/** Latency bounds in seconds: 0.5 ms to 10 s. */
export const LATENCY_BOUNDS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
/** Fan-out slice bounds in seconds: 0.1 ms to 250 ms. */
export const SLICE_BOUNDS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25] as const;

export interface BucketSnapshot {
  /** Upper bounds (le), ascending. */
  bounds: readonly number[];
  /** Cumulative count of observations ≤ each bound. */
  counts: number[];
  sum: number;
  count: number;
}

export class FixedBuckets {
  readonly bounds: readonly number[];
  #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) if (!(bounds[i]! > bounds[i - 1]!)) throw new Error('bucket bounds must ascend');
    this.bounds = bounds;
    this.#counts = new Float64Array(bounds.length + 1); // the last slot: above every bound
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.#counts[i] = this.#counts[i]! + 1;
    this.#sum += v;
    this.#count++;
  }

  cumulative(): BucketSnapshot {
    const counts: number[] = [];
    let run = 0;
    for (let i = 0; i < this.bounds.length; i++) counts.push((run += this.#counts[i]!));
    return { bounds: this.bounds, counts, sum: this.#sum, count: this.#count };
  }
}
