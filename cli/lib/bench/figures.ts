// Turning merged histograms into the figures a reader sees (ms), and the
// latency histogram bars of the dashboard and report.
import { decodeFromCompressedBase64, type Histogram } from 'hdr-histogram-js';
import { latencySummary, type LatencySummary } from '../../../bench/lib/report.ts';

export { latencySummary, type LatencySummary };

/** Decodes an encoded histogram and adds it into `into` (exact merge: bucket counts add). */
export function addEncoded(into: Histogram, encoded: string): void {
  if (!encoded) return;
  const h = decodeFromCompressedBase64(encoded);
  into.add(h);
  h.destroy();
}

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
