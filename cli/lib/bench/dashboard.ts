// The live view of `pushctl bench` (Ink), and the plain-text lines and final
// table used without a terminal (--no-dashboard, CI logs).
import React from 'react';
import { Box, Text } from 'ink';
import type { DashboardState } from './controller.ts';
import { cpuPct } from './figures.ts';

const h = React.createElement;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function bar(count: number, max: number, width = 30): string {
  return max > 0 ? '█'.repeat(Math.round((count / max) * width)) : '';
}

export function BenchDashboard({ s }: { s: DashboardState }): React.ReactElement {
  const l = s.latency;
  const maxBar = Math.max(0, ...s.bars.map((b) => b.count));
  const c = s.counters;
  return h(
    Box,
    { flexDirection: 'column' },
    h(Text, { bold: true }, `pushctl bench · ${s.scenario} → ${s.target}   ${s.elapsedS.toFixed(0)}/${s.durationS.toFixed(0)} s${s.done ? '  (done)' : ''}`),
    h(Text, null, `connections  target ${fmt(s.connections.target)}  open ${fmt(s.connections.open)}  failed ${fmt(s.connections.failed)}   msgs/s ${fmt(s.msgsPerSec)}`),
    h(Text, null, `${latencyLabel(s)}p50 ${l.p50Ms}  p90 ${l.p90Ms}  p99 ${l.p99Ms}  p99.9 ${l.p999Ms}  max ${l.maxMs}  (n=${fmt(l.count)})`),
    ...warmupRow(s),
    h(Text, { color: c.gaps || c.errors ? 'yellow' : undefined }, `gaps ${fmt(c.gaps)}  resyncs ${fmt(c.resyncs)}  reconnects ${fmt(c.reconnects)}  rejected ${fmt(c.rejected)}  errors ${fmt(c.errors)}`),
    ...faultRows(s),
    h(
      Box,
      { flexDirection: 'column', marginTop: 1 },
      ...s.bars.map((b) => h(Text, { key: b.label }, `${b.label.padStart(11)} ${bar(b.count, maxBar).padEnd(30)} ${fmt(b.count)}`)),
    ),
    h(
      Box,
      { flexDirection: 'column', marginTop: 1 },
      h(Text, { bold: true }, 'agent                      state     open/target   msgs/s  CPU %core  loop p99'),
      ...s.agents.map((a) =>
        h(
          Text,
          { key: a.name, color: a.state === 'dead' || a.state === 'failed' ? 'red' : a.health?.saturated ? 'yellow' : undefined },
          `${a.name.padEnd(26).slice(0, 26)} ${a.state.padEnd(8)} ${`${fmt(a.open)}/${fmt(a.target)}`.padStart(12)} ${fmt(a.msgsPerSec).padStart(8)} ${(a.health ? `${cpuPct(a.health.cpu)}%` : '?').padStart(10)} ${a.health ? `${a.health.loopDelayP99Ms} ms` : '?'}${a.why ? `  ${a.why}` : ''}`,
        ),
      ),
    ),
    ...(s.http.length
      ? [h(Box, { flexDirection: 'column', marginTop: 1 }, ...s.http.map((x) => h(Text, { key: x.name }, `http ${x.name}: ${fmt(x.rps)} req/s  p99 ${x.latencyMs.p99} ms  errors ${fmt(x.errors)} ${JSON.stringify(x.statusCodes)}`)))]
      : []),
    ...s.warnings.map((w, i) => h(Text, { key: `w${i}`, color: 'yellow' }, `! ${w}`)),
  );
}

/** The headline's label: steady state once the warm-up ended, the warm-up's own figures while it lasts. */
function latencyLabel(s: DashboardState): string {
  if (!s.warmup) return 'latency ms   ';
  return s.warmup.endS === undefined ? 'latency ms (warm-up, not the headline)   ' : `latency ms (steady, from ${s.warmup.endS} s)   `;
}

function warmupRow(s: DashboardState): React.ReactElement[] {
  const w = s.warmup;
  if (!w || w.endS === undefined || w.endS === 0) return [];
  const l = w.latency;
  return [h(Text, { key: 'warmup', dimColor: true }, `warm-up 0–${w.endS} s   p50 ${l.p50Ms}  p99 ${l.p99Ms}  max ${l.maxMs}  (n=${fmt(l.count)}; not in the headline)`)];
}

const PHASE_COLOR = { before: 'green', during: 'red', after: 'cyan' } as const;

/** Fault markers (✓ applied, ✗ failed, · pending, with their windows), the current phase, and each phase's figures. */
function faultRows(s: DashboardState): React.ReactElement[] {
  if (!s.faults?.length) return [];
  const marks = s.faults.map((f) =>
    f.startedMs === undefined
      ? `· ${f.fault}`
      : `${f.ok ? '✓' : '✗'} ${f.fault} @${(f.startedMs / 1000).toFixed(1)}s${f.ok && f.toMs !== undefined ? `→${(f.toMs / 1000).toFixed(1)}s` : ''}${f.ok ? '' : ` (${f.message.slice(0, 60)})`}`,
  );
  const rows: React.ReactElement[] = [
    h(Box, { key: 'faults', marginTop: 1 }, h(Text, { bold: true, color: s.phase ? PHASE_COLOR[s.phase] : undefined }, `phase ${s.phase ?? '?'}`), h(Text, null, `   ${marks.join('   ')}`)),
  ];
  if (s.phases?.length) {
    rows.push(h(Text, { key: 'ph-head', bold: true }, 'phase     time s     msgs/s   p50 ms   p99 ms  p99.9 ms  reconn  closes    gaps  resyncs  errors'));
    for (const p of s.phases)
      rows.push(
        h(
          Text,
          { key: `ph-${p.name}`, color: p.name === s.phase ? PHASE_COLOR[p.name] : undefined },
          `${p.name.padEnd(8)} ${(p.fromS !== undefined ? `${p.fromS}–${p.toS}` : '–').padStart(8)} ${fmt(p.msgsPerSec).padStart(10)} ${String(p.latency.p50Ms).padStart(8)} ${String(p.latency.p99Ms).padStart(8)} ${String(p.latency.p999Ms).padStart(9)} ${fmt(p.reconnects).padStart(7)} ${fmt(p.unplannedCloses).padStart(7)} ${fmt(p.gaps).padStart(7)} ${fmt(p.resyncs).padStart(8)} ${fmt(p.errors).padStart(7)}`,
        ),
      );
  }
  return rows;
}

/** One line per update when there is no dashboard. */
export function progressLine(s: DashboardState): string {
  const l = s.latency;
  const warm = s.warmup && s.warmup.endS === undefined ? ' [warm-up]' : '';
  return `${s.elapsedS.toFixed(0).padStart(4)}s${warm}${s.phase ? ` [${s.phase}]` : ''}  open ${s.connections.open}/${s.connections.target}  ${fmt(s.msgsPerSec)} msgs/s  p50 ${l.p50Ms} p99 ${l.p99Ms} max ${l.maxMs} ms  gaps ${s.counters.gaps}  errors ${s.counters.errors}${s.faults?.length ? `  reconnects ${s.counters.reconnects}` : ''}${s.warnings.length ? `  ! ${s.warnings[s.warnings.length - 1]}` : ''}`;
}
