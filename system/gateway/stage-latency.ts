// One stage of end-to-end latency inside the gateway: for each market event,
// its intended publish time (pt, stamped by the feed) → the moment it passed
// this stage — its arrival (recordNow), or the end of the flush that wrote it
// to the last of its subscribers' sockets (handedOver + flushed). Recorded
// once per event, not per subscriber. A benchmark compares the stages with
// what clients measure (pt → receipt) to place a latency tail.
import { build, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';
import { FixedBuckets, LATENCY_BOUNDS_S } from '../common/metrics-buckets.ts';

const nowUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

export interface StageLatencySnapshot {
  count: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** Events whose pt lay after the write (another clock): counted as 0. */
  negative: number;
  /** Base64 compressed HdrHistogram (V2), µs. */
  hist: string;
}

export class StageLatency {
  #hist: Histogram = build({ numberOfSignificantValueDigits: 3 });
  #pending: number[] = [];
  #negative = 0;
  /** p99 of the last stats interval, ms (shown in /stats). */
  intervalP99Ms = 0;
  #interval: Histogram = build({ numberOfSignificantValueDigits: 3 });
  /** The same values in Prometheus buckets (seconds), never reset: GET /metrics reads them. */
  readonly buckets = new FixedBuckets(LATENCY_BOUNDS_S);

  /** The same measure at one instant (e.g. an event's arrival from the push-server). */
  recordNow(publishTimeUs: number): void {
    if (publishTimeUs > 0) this.#record(nowUs() - publishTimeUs);
  }

  /** An event's fan-out reached every subscriber; it is on the wire at the next flush. */
  handedOver(publishTimeUs: number): void {
    if (publishTimeUs > 0) this.#pending.push(publishTimeUs);
  }

  /** A flush wrote every dirty connection: everything handed over before it is out. */
  flushed(): void {
    const n = this.#pending.length;
    if (n === 0) return;
    const now = nowUs();
    for (let i = 0; i < n; i++) this.#record(now - this.#pending[i]!);
    this.#pending.length = 0;
  }

  #record(us: number): void {
    if (us < 0) {
      this.#negative++;
      us = 0;
    }
    this.#hist.recordValue(us);
    this.#interval.recordValue(us);
    this.buckets.observe(us / 1e6);
  }

  /** Closes a stats interval. */
  sample(): void {
    this.intervalP99Ms = this.#interval.totalCount ? this.#interval.getValueAtPercentile(99) / 1000 : 0;
    this.#interval.reset();
  }

  /** Everything since the last reset; reset=true starts a new window (a benchmark's measured phase). */
  snapshot(reset: boolean): StageLatencySnapshot {
    const h = this.#hist;
    const ms = (p: number) => (h.totalCount ? h.getValueAtPercentile(p) / 1000 : 0);
    const out = {
      count: h.totalCount,
      p50Ms: ms(50),
      p99Ms: ms(99),
      p999Ms: ms(99.9),
      maxMs: h.totalCount ? h.maxValue / 1000 : 0,
      negative: this.#negative,
      hist: encodeIntoCompressedBase64(h),
    };
    if (reset) {
      h.reset();
      this.#negative = 0;
    }
    return out;
  }

  stop(): void {
    this.#hist.destroy();
    this.#interval.destroy();
  }
}
