// Inline SVG charts for report.html: line series and histogram bars on
// linear or log axes, with 1-2-5 ticks (ticks.ts), tick labels on both
// axes, fault windows shaded, and every label placed inside the viewBox
// (nothing clipped). No scripts, no network: the report stays one file.
import { linearTicks, logTicks125, tickLabel } from './ticks.ts';

export interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
}

export interface Axis {
  label: string;
  log?: boolean;
  /** Fixed ticks (value, label); else 1-2-5 ticks over the data. */
  ticks?: Array<[number, string]>;
}

/** A histogram bar from x0 to x1 (on the x axis's scale), `y` high. */
export interface Bar {
  x0: number;
  x1: number;
  y: number;
  title: string;
}

export interface Mark {
  x0: number;
  x1?: number;
  label: string;
}

export interface ChartSpec {
  id: string;
  title: string;
  x: Axis;
  y: Axis;
  series?: Series[];
  bars?: Bar[];
  barColor?: string;
  marks?: Mark[];
}

const W = 720;
const H = 280;
const LEFT = 66;
const RIGHT = 28;
const TOP = 14;
const BOTTOM = 46;
/** Roughly 11 px sans-serif: enough to keep labels off the edges. */
const CHAR_W = 6.5;

export const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

interface Scale {
  at: (v: number) => number;
  ticks: Array<[number, string]>;
}

/** Domain and ticks of one axis over `values`, mapped onto [p0, p1] pixels. */
function scale(axis: Axis, values: number[], p0: number, p1: number): Scale {
  const finite = values.filter((v) => Number.isFinite(v));
  let ticks: Array<[number, string]>;
  if (axis.ticks) ticks = axis.ticks;
  else if (axis.log) {
    const pos = finite.filter((v) => v > 0);
    const lo = pos.length ? Math.min(...pos) : 1;
    ticks = logTicks125(lo, Math.max(lo, ...pos)).map((v) => [v, tickLabel(v)]);
  } else ticks = linearTicks(Math.min(0, ...finite), Math.max(0, ...finite)).map((v) => [v, tickLabel(v)]);
  const tv = ticks.map((t) => t[0]);
  // Fixed ticks may not cover the data: the domain covers both (a log axis only its positive values).
  const inDomain = axis.log ? finite.filter((v) => v > 0) : finite;
  const lo = Math.min(tv[0]!, ...inDomain);
  const hi = Math.max(tv.at(-1)!, ...inDomain);
  const t = (v: number) => (axis.log ? Math.log10(Math.max(v, lo)) : v);
  const [a, b] = [t(lo), t(hi) > t(lo) ? t(hi) : t(lo) + 1];
  return { at: (v) => p0 + ((t(v) - a) / (b - a)) * (p1 - p0), ticks };
}

/** A text's x so that `width` px of it, anchored middle, stays within [lo, hi]. */
const within = (x: number, width: number, lo: number, hi: number) => Math.min(Math.max(x, lo + width / 2), hi - width / 2);

export function svgChart(c: ChartSpec): string {
  const series = c.series ?? [];
  const bars = c.bars ?? [];
  const xs = [...series.flatMap((s) => s.points.map((p) => p[0])), ...bars.flatMap((b) => [b.x0, b.x1])];
  const ys = [...series.flatMap((s) => s.points.map((p) => p[1])), ...bars.map((b) => b.y)];
  if (!xs.length) return `<h3>${esc(c.title)}</h3><p class="no-data">no data</p>`;
  const plotR = W - RIGHT;
  const plotB = H - BOTTOM;
  const X = scale(c.x, xs, LEFT, plotR);
  const Y = scale(c.y, ys, plotB, TOP);
  const px = (v: number) => X.at(v).toFixed(1);
  const py = (v: number) => Y.at(v).toFixed(1);
  const out = [
    `<h3>${esc(c.title)}</h3>`,
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="${esc(c.id)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
  ];
  // Grid and y ticks.
  out.push('<g class="axis y-axis">');
  for (const [v, label] of Y.ticks) {
    out.push(`<line x1="${LEFT}" x2="${plotR}" y1="${py(v)}" y2="${py(v)}" stroke="#eee"/><text class="tick" x="${LEFT - 6}" y="${(Y.at(v) + 4).toFixed(1)}" text-anchor="end">${esc(label)}</text>`);
  }
  out.push(`<line x1="${LEFT}" y1="${TOP}" x2="${LEFT}" y2="${plotB}" stroke="#888"/>`);
  out.push(`<text class="label" x="14" y="${(TOP + plotB) / 2}" transform="rotate(-90 14 ${(TOP + plotB) / 2})" text-anchor="middle">${esc(c.y.label)}</text></g>`);
  // X ticks: labels kept inside the chart's width.
  out.push('<g class="axis x-axis">');
  for (const [v, label] of X.ticks) {
    const x = X.at(v);
    out.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${plotB}" y2="${plotB + 4}" stroke="#888"/><text class="tick" x="${within(x, label.length * CHAR_W, 2, W - 2).toFixed(1)}" y="${plotB + 16}" text-anchor="middle">${esc(label)}</text>`);
  }
  out.push(`<line x1="${LEFT}" y1="${plotB}" x2="${plotR}" y2="${plotB}" stroke="#888"/>`);
  out.push(`<text class="label" x="${(LEFT + plotR) / 2}" y="${H - 8}" text-anchor="middle">${esc(c.x.label)}</text></g>`);
  // Fault windows: shaded from start to end, a dashed line at the start; the label turns left near the right edge.
  for (const m of c.marks ?? []) {
    const a = Math.max(LEFT, Math.min(plotR, X.at(m.x0)));
    const b = m.x1 !== undefined ? Math.max(a, Math.min(plotR, X.at(m.x1))) : a;
    const right = a + 3 + m.label.length * CHAR_W <= plotR;
    if (b > a) out.push(`<rect class="mark" x="${a.toFixed(1)}" y="${TOP}" width="${(b - a).toFixed(1)}" height="${plotB - TOP}" fill="#c62828" fill-opacity="0.08"/>`);
    out.push(`<line x1="${a.toFixed(1)}" x2="${a.toFixed(1)}" y1="${TOP}" y2="${plotB}" stroke="#c62828" stroke-dasharray="4 3"/><text x="${(right ? a + 3 : a - 3).toFixed(1)}" y="${TOP + 22}" text-anchor="${right ? 'start' : 'end'}" fill="#c62828">${esc(m.label)}</text>`);
  }
  for (const b of bars) {
    const x0 = X.at(b.x0);
    const x1 = X.at(b.x1);
    const y = Y.at(b.y);
    out.push(`<rect class="bar" x="${(x0 + 1).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(1, x1 - x0 - 2).toFixed(1)}" height="${Math.max(0, plotB - y).toFixed(1)}" fill="${c.barColor ?? '#1565c0'}"><title>${esc(b.title)}</title></rect>`);
  }
  for (const s of series) {
    if (!s.points.length) continue;
    const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${px(p[0])},${py(p[1])}`).join(' ');
    out.push(`<path class="series" data-series="${esc(s.name)}" fill="none" stroke="${s.color}" stroke-width="1.8" d="${d}"/>`);
  }
  // Legend: top right, inside the plot.
  series.forEach((s, i) => out.push(`<text class="legend" x="${plotR - 6}" y="${TOP + 12 + i * 14}" text-anchor="end" fill="${s.color}">${esc(s.name)}</text>`));
  out.push('</svg>');
  return out.join('\n');
}
