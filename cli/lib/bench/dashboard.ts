// The live view of `pushctl bench` (Ink), and the plain-text lines and final
// table used without a terminal (--no-dashboard, CI logs).
import React from 'react';
import { Box, Text } from 'ink';
import type { DashboardState } from './controller.ts';

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
    h(Text, null, `latency ms   p50 ${l.p50Ms}  p90 ${l.p90Ms}  p99 ${l.p99Ms}  p99.9 ${l.p999Ms}  max ${l.maxMs}  (n=${fmt(l.count)})`),
    h(Text, { color: c.gaps || c.errors ? 'yellow' : undefined }, `gaps ${fmt(c.gaps)}  resyncs ${fmt(c.resyncs)}  reconnects ${fmt(c.reconnects)}  rejected ${fmt(c.rejected)}  errors ${fmt(c.errors)}`),
    h(
      Box,
      { flexDirection: 'column', marginTop: 1 },
      ...s.bars.map((b) => h(Text, { key: b.label }, `${b.label.padStart(11)} ${bar(b.count, maxBar).padEnd(30)} ${fmt(b.count)}`)),
    ),
    h(
      Box,
      { flexDirection: 'column', marginTop: 1 },
      h(Text, { bold: true }, 'agent                      state     open/target   msgs/s     CPU  loop p99'),
      ...s.agents.map((a) =>
        h(
          Text,
          { key: a.name, color: a.state === 'dead' || a.state === 'failed' ? 'red' : a.health?.saturated ? 'yellow' : undefined },
          `${a.name.padEnd(26).slice(0, 26)} ${a.state.padEnd(8)} ${`${fmt(a.open)}/${fmt(a.target)}`.padStart(12)} ${fmt(a.msgsPerSec).padStart(8)} ${a.health ? `${Math.round(a.health.cpu * 100)}%`.padStart(6) : '     ?'} ${a.health ? `${a.health.loopDelayP99Ms} ms` : '?'}${a.why ? `  ${a.why}` : ''}`,
        ),
      ),
    ),
    ...(s.http.length
      ? [h(Box, { flexDirection: 'column', marginTop: 1 }, ...s.http.map((x) => h(Text, { key: x.name }, `http ${x.name}: ${fmt(x.rps)} req/s  p99 ${x.latencyMs.p99} ms  errors ${fmt(x.errors)} ${JSON.stringify(x.statusCodes)}`)))]
      : []),
    ...s.warnings.map((w, i) => h(Text, { key: `w${i}`, color: 'yellow' }, `! ${w}`)),
  );
}

/** One line per update when there is no dashboard. */
export function progressLine(s: DashboardState): string {
  const l = s.latency;
  return `${s.elapsedS.toFixed(0).padStart(4)}s  open ${s.connections.open}/${s.connections.target}  ${fmt(s.msgsPerSec)} msgs/s  p50 ${l.p50Ms} p99 ${l.p99Ms} max ${l.maxMs} ms  gaps ${s.counters.gaps}  errors ${s.counters.errors}${s.warnings.length ? `  ! ${s.warnings[s.warnings.length - 1]}` : ''}`;
}
