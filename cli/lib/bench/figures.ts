// Turning merged histograms into the figures a reader sees (ms), and the
// latency histogram bars of the dashboard and report.
import { decodeFromCompressedBase64, type Histogram } from 'hdr-histogram-js';
import { latencySummary, type LatencySummary } from '../../../bench/lib/report.ts';
import { logTicks125 } from './ticks.ts';

export { latencySummary, type LatencySummary };

/** Decodes an encoded histogram and adds it into `into` (exact merge: bucket counts add). */
export function addEncoded(into: Histogram, encoded: string): void {
  if (!encoded) return;
  const h = decodeFromCompressedBase64(encoded);
  into.add(h);
  h.destroy();
}

/**
 * CPU, everywhere a reader sees it (dashboard, summary.json, report.html): percent of one core
 * (100 = one core fully busy; above 100 a process uses more than one). Agents measure a share of one
 * core (1.0 = one core); this is the one conversion.
 */
export const CPU_UNIT = '% of one core';
export const cpuPct = (shareOfOneCore: number): number => Math.round(shareOfOneCore * 100);
export const cpuText = (shareOfOneCore: number): string => `${cpuPct(shareOfOneCore)}% of a core`;

export const BAR_BOUNDS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

/** Share of samples ≤ value (µs), by bisecting the percentile axis. */
function shareAtOrBelow(h: Histogram, us: number): number {
  if (h.totalCount === 0) return 0;
  if (h.maxValue <= us) return 1;
  let lo = 0;
  let hi = 100;
  for (let i = 0; i < 24; i++) {
    const mid = (lo + hi) / 2;
    if (h.getValueAtPercentile(mid) <= us) lo = mid;
    else hi = mid;
  }
  return lo / 100;
}

/** Sample counts per latency band: ≤1 ms, 1–2 ms, …, > 1000 ms. */
export function latencyBars(h: Histogram): Array<{ label: string; count: number }> {
  const out: Array<{ label: string; count: number }> = [];
  let prevShare = 0;
  let prev = 0;
  for (const b of BAR_BOUNDS_MS) {
    const share = shareAtOrBelow(h, b * 1000);
    out.push({ label: prev === 0 ? `≤${b}ms` : `${prev}–${b}ms`, count: Math.round((share - prevShare) * h.totalCount) });
    prevShare = share;
    prev = b;
  }
  out.push({ label: `>${prev}ms`, count: Math.round((1 - prevShare) * h.totalCount) });
  return out;
}

export interface LatencyBucket {
  /** Bucket bounds, ms: (fromMs, toMs]; the first bucket also holds everything at or below its fromMs. */
  fromMs: number;
  toMs: number;
  count: number;
}

/**
 * The report's latency histogram: sample counts over log-scaled 1-2-5 buckets (…, 1, 2, 5, 10 ms, …)
 * spanning the histogram's recorded range, counted exactly from the HDR histogram's recorded values.
 */
export function latencyBuckets(h: Histogram): LatencyBucket[] {
  if (h.totalCount === 0) return [];
  const minMs = Math.max(h.minNonZeroValue, 1) / 1000;
  const maxMs = Math.max(h.maxValue / 1000, minMs * 1.0001);
  const edges = logTicks125(minMs, maxMs, Number.POSITIVE_INFINITY);
  const out = edges.slice(0, -1).map((e, i) => ({ fromMs: e, toMs: edges[i + 1]!, count: 0 }));
  const at = (ms: number) => {
    let i = 0;
    while (i < out.length - 1 && ms > out[i]!.toMs) i++;
    return out[i]!;
  };
  const js = h as unknown as {
    recordedValuesIterator?: { reset(): void; hasNext(): boolean; next(): { valueIteratedTo: number; countAtValueIteratedTo: number } };
    lowestEquivalentValue?(v: number): number;
  };
  const it = js.recordedValuesIterator;
  if (it && js.lowestEquivalentValue) {
    it.reset();
    while (it.hasNext()) {
      const v = it.next();
      // The iterator gives an HDR bucket's top; its bottom is the recorded value to within the histogram's precision.
      at(js.lowestEquivalentValue(v.valueIteratedTo) / 1000).count += v.countAtValueIteratedTo;
    }
  } else {
    // A histogram without value iteration (WebAssembly): counts from the percentile axis.
    let prev = 0;
    for (const b of out) {
      const upTo = Math.round(shareAtOrBelow(h, b.toMs * 1000) * h.totalCount);
      b.count = upTo - prev;
      prev = upTo;
    }
    out.at(-1)!.count += h.totalCount - prev;
  }
  return out;
}
