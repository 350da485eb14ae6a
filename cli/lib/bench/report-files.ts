// reports/<time>-<scenario>/: summary.json (every figure), latency.hlog (the
// merged per-interval histograms, HdrHistogram log format 1.3, µs),
// report.html (self-contained: inline SVG, no scripts, no network) and
// snapshots.jsonl (every agent snapshot as received: the raw material).
// A run with faults adds each fault (what, when, ok, its window) and the
// before / during / after figures to all three.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HistogramLogWriter, type Histogram } from 'hdr-histogram-js';
import { machineInfo } from '../../../bench/lib/report.ts';
import { CPU_UNIT, cpuPct, latencyBuckets, latencySummary } from './figures.ts';
import { esc, svgChart, type Mark } from './svg-chart.ts';
import type { AgentHealth } from './wire.ts';
import { DEFAULT_LIVENESS_MS } from './liveness.ts';
import type { Outcome } from './controller.ts';
import type { Scenario } from './scenario.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** An agent's health as the report shows it: CPU in CPU_UNIT (`cpuPct`), never a bare share. */
function healthForReaders(h: (AgentHealth & { cpuMax?: number }) | undefined): Record<string, unknown> | undefined {
  if (!h) return undefined;
  const { cpu, cpuMax, ...rest } = h;
  return { cpuPct: cpuPct(cpu), ...(cpuMax !== undefined ? { cpuMaxPct: cpuPct(cpuMax) } : {}), ...rest };
}

const PRIVATE_HOW = {
  orderLatency: "results.latencyMs: client receive time − the order event's engine event time (T, ms: the Order's update/event time); events stored on the bus (pt) before the connection's SUBSCRIBE (resumed with `after`) are counted in catchup, not sampled; the engine's own publish queueing is part of the latency",
  fromBus: 'receive − the time JetStream stored the event (pt), same events as the order latency: the push system\'s part, without the engine\'s publish queueing',
  ackRtt: 'an ACK with an id every private.ackEvery events; round trip = the gateway\'s {"result":null,"id":…} reply − the send',
  connectRate: 'connections opened / (last first-time open − first connect attempt), all agents, on the controller clock',
  duplicates: 'per connection, an order seq at or below the last one it had (JetStream stream seqs rise per user)',
  gaps: "per connection, the user's events inside its [first, last] seq window that another of that user's connections on the same agent received and it did not",
  memory: 'Σ gateway RSS (admin /stats) shortly before the end − before the run, over the connections the gateways gained meanwhile',
};

export function buildSummary(o: Outcome, sc: Scenario, extra: Record<string, unknown>): Record<string, unknown> {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
  const durS = o.durationMs / 1000;
  return {
    runId: o.runId,
    startedAt: o.startedAt.toISOString(),
    endedAt: o.endedAt.toISOString(),
    ...extra,
    scenario: {
      name: sc.name, description: sc.description, file: sc.file, captureFile: sc.captureFile, capturedSessions: sc.sessions.length,
      amplify: sc.amplify, jitterMs: sc.jitterMs, speed: sc.speed, durationMs: sc.durationMs, connect: sc.connect, formats: sc.formats,
      http: sc.http, livenessMs: sc.livenessMs ?? DEFAULT_LIVENESS_MS, warmup: sc.warmup === undefined ? 0 : sc.warmup === 'auto' ? 'auto' : `${sc.warmup.ms}ms`,
    },
    versions: { pushctl: pkg.version, node: process.version, ws: pkg.dependencies.ws, 'hdr-histogram-js': pkg.dependencies['hdr-histogram-js'], autocannon: pkg.dependencies.autocannon },
    machine: machineInfo(ROOT),
    measurement: {
      latency: 'client receive time − the event\'s intended publish time (pt, stamped by the feed), µs recorded, ms reported; events published before the client asked for their topic (snapshots and catch-up sent on subscribe: counters.catchup) and depth snapshots (counters.snapshots) are not latency samples',
      merge: 'per-agent HDR histograms added bucket by bucket (exact); percentiles are read from the merged histogram',
      headline: o.warmup.endMs > 0
        ? `results.latencyMs and results.msgsPerSec are the steady state (${o.steady.fromS ?? '–'}–${o.steady.toS ?? '–'} s, after the warm-up: warmup); counts (msgs, counters, errors, connections) are the whole run; total.latencyMs is the whole run's latency`
        : 'no warm-up: every figure is the whole run',
      cpu: `agents' cpuPct / cpuMaxPct: ${CPU_UNIT} (100 = one core fully busy)`,
    },
    results: {
      latencyMs: latencySummary(o.latency),
      connectMs: latencySummary(o.connect),
      connections: o.connections,
      msgs: o.counters.msgs,
      msgsPerSec: o.warmup.endMs > 0 ? o.steady.msgsPerSec : Math.round(o.counters.msgs / durS),
      bytesPerSec: Math.round(o.counters.bytes / durS),
      counters: o.counters,
      errorRatePct: (() => {
        const ops = o.counters.connects + o.counters.connectFailures + o.counters.subscribes + o.counters.unsubscribes;
        return ops ? Math.round((o.counters.errors / ops) * 100_000) / 1000 : 0;
      })(),
    },
    // endS: where the rule put the end; fromS/toS: the whole intervals that fell in it (midpoint rule).
    warmup: { endS: o.warmup.endMs / 1000, how: o.warmup.how, ...o.warmup.figures },
    total: { latencyMs: latencySummary(o.totalLatency), msgsPerSec: Math.round(o.counters.msgs / durS) },
    http: o.http,
    thresholds: o.thresholds.map((t) => ({ threshold: t.text, metric: t.metric, actual: t.actual, limit: `${t.op}${t.value}${t.percent ? '%' : ''}`, pass: t.pass })),
    passed: o.thresholds.every((t) => t.pass),
    agents: o.agents.map(({ health, healthOverRun, ...a }) => ({ ...a, health: healthForReaders(health), healthOverRun: healthForReaders(healthOverRun) })),
    // A private scenario: results.latencyMs is its order latency (receive − the engine's event time T); the rest here.
    ...(o.private ? { private: { ...o.private, how: PRIVATE_HOW } } : {}),
    ...(o.faults.length
      ? {
          faults: o.faults,
          phases: o.phases
            ? {
                duringFromS: o.phases.duringFromMs / 1000,
                duringToS: o.phases.duringToMs / 1000,
                how: `each ${o.intervals.length ? (o.intervals[0]!.endMs - o.intervals[0]!.startMs) / 1000 : 1} s interval belongs to the phase its midpoint is in; a phase's histograms are the intervals' added bucket by bucket (exact), its counters their sums`,
                phases: o.phases.phases,
              }
            : null,
          ...(o.clientNet ? { clientNet: o.clientNet } : {}),
        }
      : {}),
    timeline: o.intervals.map((i) => ({
      tS: i.tS, msgsPerSec: i.msgsPerSec, open: i.open, p50Ms: i.latency.p50Ms, p99Ms: i.latency.p99Ms, maxMs: i.latency.maxMs, errors: i.errors, gaps: i.gaps,
      reconnects: i.counters.reconnects, unplannedCloses: i.counters.unplannedCloses, livenessTimeouts: i.counters.livenessTimeouts, resyncs: i.counters.resyncs,
    })),
    warnings: o.warnings,
  };
}

export function hlogText(o: Outcome): string {
  const lines: string[] = [];
  const w = new HistogramLogWriter((s) => lines.push(s));
  const base = o.startedAt.getTime();
  w.outputLogFormatVersion();
  w.outputComment('[pushctl bench: end-to-end latency (receive time - intended publish time), microseconds; Interval_Max in ms]');
  w.outputComment('[Untagged lines: all agents merged per interval; Tag=connect: connect times over the run]');
  w.outputStartTime(base);
  w.outputComment(`[BaseTime: ${(base / 1000).toFixed(3)} (seconds since epoch)]`);
  w.baseTime = base;
  for (const f of o.faults)
    if (f.startedMs !== undefined) w.outputComment(`[fault: ${f.fault} at ${(f.startedMs / 1000).toFixed(3)} s, ${f.ok ? 'ok' : 'failed'}${f.toMs !== undefined ? `, window to ${(f.toMs / 1000).toFixed(3)} s (${f.window})` : ''}]`);
  w.outputLegend();
  for (const iv of o.intervals) {
    iv.hist.tag = 'NO TAG';
    w.outputIntervalHistogram(iv.hist, Math.max(0, (iv.startMs - base) / 1000), Math.max(0, (iv.endMs - base) / 1000), 1000);
  }
  o.connect.tag = 'connect';
  w.outputIntervalHistogram(o.connect, 0, o.durationMs / 1000, 1000);
  return lines.join('').replace(/\n\n+/g, '\n');
}

// --- report.html

function percentileSeries(h: Histogram): Array<[number, number]> {
  // x = 1/(1-q): the HdrHistogram percentile-distribution axis (90% → 10, 99.9% → 1000).
  const qs = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999];
  return qs.map((q) => [1 / (1 - q / 100), h.getValueAtPercentile(q) / 1000] as [number, number]);
}

export function reportHtml(summary: Record<string, unknown>, o: Outcome): string {
  const r = summary.results as { latencyMs: Record<string, number>; connectMs: Record<string, number>; msgsPerSec: number; counters: Record<string, number>; connections: Record<string, number> };
  const sc = summary.scenario as { name: string; description: string };
  const th = summary.thresholds as Array<{ threshold: string; actual: number; pass: boolean }>;
  const row = (k: string, v: unknown) => `<tr><th>${esc(k)}</th><td>${esc(String(v))}</td></tr>`;
  // Timeline x is the interval's end (tS); fault times are since the start.
  const marks: Mark[] = o.faults.filter((f) => f.fromMs !== undefined).map((f) => ({ x0: f.fromMs! / 1000, x1: f.toMs! / 1000, label: f.fault }));
  // Shaded over the whole intervals its figures come from.
  if (o.warmup.endMs > 0) marks.unshift({ x0: 0, x1: o.warmup.figures.toS ?? o.warmup.endMs / 1000, label: 'warm-up' });
  const steadyS = `${o.steady.fromS ?? '–'}–${o.steady.toS ?? '–'} s`;
  const wl = o.warmup.figures.latency;
  const tl = latencySummary(o.totalLatency);
  const parts = [
    `<!doctype html><html><head><meta charset="utf-8"><title>pushctl bench · ${esc(sc.name)}</title>`,
    '<style>body{font-family:sans-serif;margin:24px;max-width:900px}table{border-collapse:collapse}th,td{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}.fail{color:#b00}.pass{color:#070}</style></head><body>',
    `<h1>pushctl bench · ${esc(sc.name)}</h1><p>${esc(sc.description)}</p><p>${esc(String(summary.startedAt))} · run ${esc(o.runId)} · ${(o.durationMs / 1000).toFixed(1)} s</p>`,
    '<h2>Results</h2><table>',
    row(`latency p50 / p90 / p99 / p99.9 / max (ms)${o.warmup.endMs > 0 ? `, steady state ${steadyS}` : ''}`, `${r.latencyMs.p50Ms} / ${r.latencyMs.p90Ms} / ${r.latencyMs.p99Ms} / ${r.latencyMs.p999Ms} / ${r.latencyMs.maxMs} (n=${r.latencyMs.count})`),
    ...(o.warmup.endMs > 0
      ? [
          row(`warm-up 0–${o.warmup.figures.toS ?? 0} s (not in the headline): p50 / p99 / max (ms), msgs/s`, `${wl.p50Ms} / ${wl.p99Ms} / ${wl.maxMs} (n=${wl.count}), ${o.warmup.figures.msgsPerSec} msgs/s — ${o.warmup.how}`),
          row('whole run: p50 / p99 / max (ms)', `${tl.p50Ms} / ${tl.p99Ms} / ${tl.maxMs} (n=${tl.count})`),
        ]
      : []),
    row('connect p50 / p99 / max (ms)', `${r.connectMs.p50Ms} / ${r.connectMs.p99Ms} / ${r.connectMs.maxMs}`),
    row('connections target / peak open / failed', `${r.connections.target} / ${r.connections.peakOpen} / ${r.connections.failed}`),
    row(`messages (whole run) / per second${o.warmup.endMs > 0 ? ' (steady state)' : ''}`, `${r.counters.msgs} / ${r.msgsPerSec}`),
    row('gaps / resyncs / reconnects / errors', `${r.counters.gaps} / ${r.counters.resyncs} / ${r.counters.reconnects} / ${r.counters.errors}`),
    row('unplanned closes (of them liveness timeouts)', `${r.counters.unplannedCloses} (${r.counters.livenessTimeouts ?? 0})`),
    '</table>',
  ];
  if (o.private) {
    const p = o.private;
    parts.push('<h2>Private order streams</h2><p>The latency above is the order latency: receive − the engine\'s event time.</p><table>',
      row('users × connections per user', `${p.users} × ${p.perUser} = ${p.connections} (${p.opened} opened)`),
      row('subscribed / SUBSCRIBEs refused (retried)', `${p.subscribed} / ${p.subscribeRefusals}`),
      row('connect rate (connections/s)', `${p.connectRate} (all open in ${(p.connectSpanMs / 1000).toFixed(1)} s)`),
      row('order events received / caught up on subscribe', `${p.orders} / ${p.catchup}`),
      row('from the bus (JetStream stored → received) p50 / p99 (ms)', `${p.fromBus.p50Ms} / ${p.fromBus.p99Ms}`),
      row('duplicates / gaps', `${p.duplicates} / ${p.gaps}`),
      row('ack round trip p50 / p99 / max (ms)', `${p.ackRtt.p50Ms} / ${p.ackRtt.p99Ms} / ${p.ackRtt.maxMs} (${p.ackReplies} of ${p.acksSent} answered)`),
      row('memory per private connection', p.memory ? `${p.memory.kbPerConnection} KB (gateway RSS ${p.memory.beforeMb} → ${p.memory.underLoadMb} MB, ${p.memory.connections} connections)` : 'not measured'),
      '</table>');
  }
  if (o.faults.length) {
    parts.push('<h2>Faults</h2><table><tr><th>fault</th><th>started (s)</th><th>window (s)</th><th></th><th>what happened</th></tr>',
      ...o.faults.map((f) => `<tr class="${f.ok ? '' : 'fail'}"><td>${esc(f.fault)}</td><td>${f.startedMs !== undefined ? (f.startedMs / 1000).toFixed(2) : 'never'}</td><td>${f.fromMs !== undefined ? `${(f.fromMs / 1000).toFixed(2)}–${(f.toMs! / 1000).toFixed(2)} (${esc(f.window ?? '')})` : ''}</td><td>${f.ok ? 'ok' : 'failed'}</td><td>${esc(f.message)}</td></tr>`), '</table>');
    if (o.phases) {
      const ph = o.phases.phases;
      const line = (k: string, f: (p: (typeof ph)[number]) => string | number) => `<tr><th>${esc(k)}</th>${ph.map((p) => `<td>${p.intervals ? esc(String(f(p))) : '–'}</td>`).join('')}</tr>`;
      parts.push('<h2>Before / during / after</h2>', `<p>During: ${(o.phases.duringFromMs / 1000).toFixed(2)}–${(o.phases.duringToMs / 1000).toFixed(2)} s; each 1 s interval counts in the phase its midpoint is in; latency percentiles from the phase's merged histograms.</p>`,
        `<table><tr><th></th>${ph.map((p) => `<th>${p.name}${p.fromS !== undefined ? ` (${p.fromS}–${p.toS} s)` : ''}</th>`).join('')}</tr>`,
        line('msgs/s', (p) => p.msgsPerSec), line('latency p50 / p99 / p99.9 / max (ms)', (p) => `${p.latency.p50Ms} / ${p.latency.p99Ms} / ${p.latency.p999Ms} / ${p.latency.maxMs}`),
        line('reconnects', (p) => p.reconnects), line('unplanned closes', (p) => p.unplannedCloses), line('gaps', (p) => p.gaps), line('resyncs', (p) => p.resyncs),
        line('errors', (p) => p.errors), line('failed connections', (p) => p.connectFailures), line('open (min–max, at end)', (p) => `${p.openMin}–${p.openMax}, ${p.openEnd}`), '</table>');
    }
  }
  if (th.length) parts.push('<h2>Thresholds</h2><table>', ...th.map((t) => `<tr class="${t.pass ? 'pass' : 'fail'}"><th>${esc(t.threshold)}</th><td>${t.pass ? 'pass' : 'FAIL'} (actual ${t.actual})</td></tr>`), '</table>');
  const buckets = latencyBuckets(o.latency);
  const time = (id: string, title: string, yLabel: string, series: Array<{ name: string; color: string; points: Array<[number, number]> }>, log = false) =>
    svgChart({ id, title, series, marks, x: { label: 'seconds since start' }, y: { label: yLabel, log } });
  parts.push(
    svgChart({
      id: 'histogram', title: `Latency histogram${o.warmup.endMs > 0 ? ` (steady state ${steadyS})` : ''}, all agents merged`,
      x: { label: 'end-to-end latency, ms (log scale)', log: true }, y: { label: 'samples' },
      bars: buckets.map((b) => ({ x0: b.fromMs, x1: b.toMs, y: b.count, title: `${b.fromMs}–${b.toMs} ms: ${b.count} samples` })),
    }),
    svgChart({
      id: 'percentiles', title: `Latency by percentile${o.warmup.endMs > 0 ? ` (steady state ${steadyS})` : ''}, all agents merged`,
      series: [{ name: 'end-to-end', color: '#1565c0', points: percentileSeries(o.latency) }],
      x: { label: 'percentile', log: true, ticks: [[1, '0%'], [10, '90%'], [100, '99%'], [1000, '99.9%'], [10000, '99.99%'], [100000, '99.999%']] },
      y: { label: 'ms (log scale)', log: true },
    }),
    time('throughput', 'Throughput over time', 'msgs/s', [{ name: 'msgs/s', color: '#2e7d32', points: o.intervals.map((i) => [i.tS, i.msgsPerSec] as [number, number]) }]),
    time('latency-time', 'Latency over time', 'ms (log scale)', [
      { name: 'p50', color: '#1565c0', points: o.intervals.map((i) => [i.tS, i.latency.p50Ms] as [number, number]) },
      { name: 'p99', color: '#ef6c00', points: o.intervals.map((i) => [i.tS, i.latency.p99Ms] as [number, number]) },
      { name: 'max', color: '#c62828', points: o.intervals.map((i) => [i.tS, i.latency.maxMs] as [number, number]) },
    ], true),
    time('connections', 'Connections over time', 'count', [
      { name: 'open', color: '#1565c0', points: o.intervals.map((i) => [i.tS, i.open] as [number, number]) },
      { name: 'reconnects', color: '#ef6c00', points: o.intervals.map((i) => [i.tS, i.counters.reconnects] as [number, number]) },
      { name: 'gaps', color: '#c62828', points: o.intervals.map((i) => [i.tS, i.counters.gaps] as [number, number]) },
    ]),
  );
  if (o.http.length) parts.push('<h2>HTTP phases (autocannon)</h2><table><tr><th>name</th><th>url</th><th>req/s</th><th>p50/p99 ms</th><th>errors</th><th>status codes</th></tr>',
    ...o.http.map((h) => `<tr><td>${esc(h.name)}</td><td>${esc(h.url)}</td><td>${h.rps}</td><td>${h.latencyMs.p50}/${h.latencyMs.p99}</td><td>${h.errors}</td><td>${esc(JSON.stringify(h.statusCodes))}${h.error ? ' ' + esc(h.error) : ''}</td></tr>`), '</table>');
  parts.push('<h2>Agents</h2><table><tr><th>agent</th><th>host</th><th>state</th><th>sessions</th><th>msgs</th><th>p99 ms (whole run)</th><th>CPU, ' + esc(CPU_UNIT) + ' (run / max)</th><th>loop p99 ms</th><th>clock offset ± µs</th></tr>',
    ...o.agents.map((a) => `<tr><td>${esc(a.name)}</td><td>${esc(a.host)}</td><td>${esc(a.state)}${a.why ? ' — ' + esc(a.why) : ''}</td><td>${a.sessions}</td><td>${a.counters.msgs}</td><td>${a.latency.p99Ms}</td><td>${a.healthOverRun ? `${cpuPct(a.healthOverRun.cpu)} / ${cpuPct(a.healthOverRun.cpuMax)}` : '?'}</td><td>${a.healthOverRun?.loopDelayP99Ms ?? '?'}</td><td>${a.clock ? `${a.clock.offsetUs} ± ${a.clock.uncertaintyUs}${a.clock.applied ? ' (applied)' : ''}` : '?'}</td></tr>`), '</table>');
  if (o.warnings.length) parts.push('<h2>Warnings</h2><ul>', ...o.warnings.map((w) => `<li>${esc(w)}</li>`), '</ul>');
  parts.push('<h2>summary.json</h2><details><summary>every figure</summary><pre>', esc(JSON.stringify(summary, null, 2)), '</pre></details></body></html>');
  return parts.join('\n');
}

export function writeBenchReport(outRoot: string, o: Outcome, sc: Scenario, extra: Record<string, unknown>): { dir: string; summary: Record<string, unknown> } {
  const safe = sc.name.replace(/[^A-Za-z0-9_.-]+/g, '-');
  const dir = join(outRoot, `${o.startedAt.toISOString().replace(/[:.]/g, '-')}-${safe}`);
  mkdirSync(dir, { recursive: true });
  const summary = buildSummary(o, sc, extra);
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  writeFileSync(join(dir, 'latency.hlog'), hlogText(o));
  writeFileSync(join(dir, 'report.html'), reportHtml(summary, o));
  writeFileSync(join(dir, 'snapshots.jsonl'), o.snapshots.map((x) => JSON.stringify(x)).join('\n') + (o.snapshots.length ? '\n' : ''));
  return { dir, summary };
}
