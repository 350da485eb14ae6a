// report.html of bench:peers: the latency-vs-rate plot (p99 per system, one
// point per repetition, log scale) as inline SVG, and the table; no scripts,
// no CDN.
export interface PlotPoint {
  system: string;
  rate: number;
  p99Ms: number;
  keptUp: boolean;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export function latencyPlotSvg(points: PlotPoint[], systems: string[]): string {
  const W = 720, H = 380, L = 70, R = 150, T = 20, B = 50;
  const rates = [...new Set(points.map((p) => p.rate))].sort((a, b) => a - b);
  const ys = points.map((p) => Math.max(p.p99Ms, 0.1));
  const yMin = Math.pow(10, Math.floor(Math.log10(Math.min(...ys, 1))));
  const yMax = Math.pow(10, Math.ceil(Math.log10(Math.max(...ys, 10))));
  const x = (r: number) => L + (rates.length <= 1 ? (W - L - R) / 2 : (rates.indexOf(r) * (W - L - R)) / (rates.length - 1));
  const y = (v: number) => T + (H - T - B) * (1 - (Math.log10(Math.max(v, 0.1)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin)));
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`];
  parts.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#999"/>`);
  for (let d = yMin; d <= yMax; d *= 10) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(d)}" y2="${y(d)}" stroke="#eee"/><text x="${L - 6}" y="${y(d) + 4}" text-anchor="end">${d} ms</text>`);
  }
  for (const r of rates) parts.push(`<text x="${x(r)}" y="${H - B + 18}" text-anchor="middle">${Math.round(r / 1000)}k/s</text>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">intended delivered msgs/s</text>`);
  parts.push(`<text x="14" y="${(T + H - B) / 2}" transform="rotate(-90 14 ${(T + H - B) / 2})" text-anchor="middle">p99 latency (log)</text>`);
  systems.forEach((s, i) => {
    const c = COLORS[i % COLORS.length]!;
    const mine = points.filter((p) => p.system === s);
    const best = rates.map((r) => mine.filter((p) => p.rate === r)).filter((g) => g.length).map((g) => g.reduce((a, p) => (p.p99Ms < a.p99Ms ? p : a)));
    if (best.length > 1) parts.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${best.map((p) => `${x(p.rate)},${y(p.p99Ms)}`).join(' ')}"/>`);
    for (const p of mine) {
      parts.push(`<circle cx="${x(p.rate)}" cy="${y(p.p99Ms)}" r="4" fill="${p.keptUp ? c : 'white'}" stroke="${c}"><title>${esc(s)} ${p.rate}/s: p99 ${p.p99Ms} ms${p.keptUp ? '' : ' (did not keep up)'}</title></circle>`);
    }
    parts.push(`<rect x="${W - R + 12}" y="${T + 8 + i * 20}" width="12" height="12" fill="${c}"/><text x="${W - R + 30}" y="${T + 18 + i * 20}">${esc(s)}</text>`);
  });
  parts.push(`<text x="${W - R + 12}" y="${T + 18 + systems.length * 20 + 10}" font-size="10">hollow: did not keep up</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}

/** warnings: systems not measured and the like (shown in red); idleMemory: one line per process. */
export function reportHtml(title: string, intro: string, svg: string, header: string[], rows: string[][], warnings: string[], idleMemory: string[]): string {
  const th = header.map((h) => `<th>${esc(h)}</th>`).join('');
  const trs = rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:24px;max-width:1200px}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}.warn{color:#b00;font-weight:bold}</style>
</head><body>
<h1>${esc(title)}</h1>
<p>${esc(intro)}</p>
${warnings.map((n) => `<p class="warn">${esc(n)}</p>`).join('\n')}
<h2>p99 latency against rate</h2>
${svg}
<table><thead><tr>${th}</tr></thead><tbody>
${trs}
</tbody></table>
${idleMemory.length ? `<h2>Idle memory per subscribed connection</h2>\n<ul>${idleMemory.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
</body></html>
`;
}
