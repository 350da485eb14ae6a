// Axis ticks a reader can read at a glance: 1-2-5 steps on log axes (1, 2,
// 5, 10, 20, 50 ms …) and on linear ones (0, 200, 400 … not 209/418/628),
// and the short labels they carry. Pure: used by the report's SVG charts.

const STEPS = [1, 2, 5];

/** The 1-2-5 value at or below v (v > 0). */
export function floor125(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  let best = p;
  for (const m of STEPS) if (m * p <= v * (1 + 1e-9)) best = m * p;
  return tidy(best);
}

/** The 1-2-5 value at or above v (v > 0). */
export function ceil125(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [...STEPS, 10]) if (m * p >= v * (1 - 1e-9)) return tidy(m * p);
  return tidy(10 * p);
}

/** Removes floating-point dust (0.30000000000000004 → 0.3). */
const tidy = (v: number): number => Number(v.toPrecision(12));

/**
 * Log-axis ticks: every 1-2-5 value from the one at or below `min` to the one at or above `max`
 * (min, max > 0). With more than `maxTicks`, only the powers of ten (then every other one) are kept,
 * always including both ends.
 */
export function logTicks125(min: number, max: number, maxTicks = 12): number[] {
  if (!(min > 0) || !(max > 0)) throw new Error(`log ticks need positive bounds (got ${min}, ${max})`);
  const lo = floor125(Math.min(min, max));
  const hi = ceil125(Math.max(min, max));
  const all: number[] = [];
  for (let p = 10 ** Math.floor(Math.log10(lo)); p <= hi * (1 + 1e-9); p *= 10)
    for (const m of STEPS) {
      const v = tidy(m * p);
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) all.push(v);
    }
  if (all.length <= maxTicks) return all;
  let decades = all.filter((v) => Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9);
  for (let every = 2; decades.length + 2 > maxTicks; every++) decades = decades.filter((_, i) => i % every === 0);
  return [...new Set([lo, ...decades, hi])].sort((a, b) => a - b);
}

/**
 * Linear-axis ticks from 0 (or `min` when it is below 0) to the first tick at or above `max`, the step a
 * 1-2-5 value chosen so there are at most `maxTicks` intervals.
 */
export function linearTicks(min: number, max: number, maxTicks = 6): number[] {
  const lo = Math.min(0, min);
  // A flat-zero series still gets a readable 0–1 axis.
  const span = max - lo > 0 ? max - lo : 1;
  if (!(max > lo)) max = lo + 1;
  let step = ceil125(span / maxTicks);
  if (Math.ceil(span / step - 1e-9) > maxTicks) step = ceil125(step * 1.0001);
  const out: number[] = [];
  const first = Math.floor(lo / step + 1e-9) * step;
  for (let v = first; v < max + step - 1e-9 * step; v += step) out.push(tidy(v));
  if (out.length < 2) out.push(tidy(first + step));
  return out;
}

/** A tick's label: no trailing zeros, thousands as k and millions as M (1500 → 1.5k). */
export function tickLabel(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${tidy(v / 1e6)}M`;
  if (a >= 1e4) return `${tidy(v / 1e3)}k`;
  return String(tidy(v));
}
