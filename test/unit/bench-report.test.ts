// What report.html and the summary show a reader: 1-2-5 ticks on log and
// linear axes, the latency histogram's log buckets (exact counts from the
// HDR histogram), one CPU unit in the dashboard, summary.json and report,
// and the bundled scenario list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import React from 'react';
import { render } from 'ink-testing-library';
import { ceil125, floor125, linearTicks, logTicks125, tickLabel } from '../../cli/lib/bench/ticks.ts';
import { CPU_UNIT, cpuPct, cpuText, latencyBuckets, latencySummary, latencyBars } from '../../cli/lib/bench/figures.ts';
import { newHistogram } from '../../cli/lib/bench/meter.ts';
import { svgChart } from '../../cli/lib/bench/svg-chart.ts';
import { writeBenchReport } from '../../cli/lib/bench/report-files.ts';
import { saturationWarning } from '../../cli/lib/bench/live-merge.ts';
import { BenchDashboard } from '../../cli/lib/bench/dashboard.ts';
import { bundledScenarios, oneLine, resolveScenario, scenarioList } from '../../cli/lib/bench/bundled.ts';
import { zeroCounters } from '../../cli/lib/bench/wire.ts';
import { fixtureOutcome } from '../helpers/bench-fixture.ts';

const ONE_TWO_FIVE = (v: number) => [1, 2, 5].includes(Number((v / 10 ** Math.floor(Math.log10(v) + 1e-9)).toPrecision(6)));

test('log ticks follow 1-2-5 and cover the range, for sub-ms to seconds; wide ranges keep whole decades', () => {
  assert.deepEqual(logTicks125(1, 50), [1, 2, 5, 10, 20, 50]);
  assert.deepEqual(logTicks125(0.3, 259), [0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500]);
  assert.deepEqual(logTicks125(7, 7), [5, 10]);
  assert.deepEqual(logTicks125(0.004, 0.03), [0.002, 0.005, 0.01, 0.02, 0.05]);
  assert.deepEqual(logTicks125(1, 100_000), [1, 10, 100, 1_000, 10_000, 100_000]);
  for (const [lo, hi] of [[0.05, 3_000], [1.3, 837], [0.001, 1e6], [2, 2.5]] as const) {
    const t = logTicks125(lo, hi);
    assert.ok(t.every(ONE_TWO_FIVE), `${lo}–${hi}: ${t}`);
    assert.ok(t[0]! <= lo && t.at(-1)! >= hi, `${lo}–${hi} covered by ${t}`);
    assert.ok(t.length <= 12, `${lo}–${hi}: ${t.length} ticks`);
    assert.deepEqual([...t].sort((a, b) => a - b), t);
  }
  assert.deepEqual([floor125(259), ceil125(259), floor125(0.07), ceil125(0.3)], [200, 500, 0.05, 0.5]);
  assert.throws(() => logTicks125(0, 10), /positive/);
});

test('linear ticks are round 1-2-5 steps from 0 past the maximum (not 209/418/628/837)', () => {
  assert.deepEqual(linearTicks(0, 837), [0, 200, 400, 600, 800, 1_000]);
  assert.deepEqual(linearTicks(0, 20), [0, 5, 10, 15, 20]);
  assert.deepEqual(linearTicks(0, 3), [0, 0.5, 1, 1.5, 2, 2.5, 3]);
  assert.deepEqual(linearTicks(0, 0), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(linearTicks(0, 123_456), [0, 50_000, 100_000, 150_000]);
  assert.deepEqual([tickLabel(150_000), tickLabel(0.2), tickLabel(2_500_000), tickLabel(1_000)], ['150k', '0.2', '2.5M', '1000']);
});

test('latency histogram buckets: 1-2-5 edges over the recorded range, every sample counted once in its bucket', () => {
  const h = newHistogram();
  for (let i = 1; i <= 1000; i++) h.recordValue(i * 100); // 0.1 … 100 ms
  h.recordValue(0);
  const b = latencyBuckets(h);
  assert.deepEqual(b.map((x) => x.fromMs), [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50]);
  assert.equal(b.at(-1)!.toMs, 100);
  assert.deepEqual(b.map((x) => x.count), [3, 3, 5, 10, 30, 50, 100, 300, 500]);
  assert.equal(b.reduce((s, x) => s + x.count, 0), h.totalCount);
  assert.deepEqual(latencyBuckets(newHistogram()), []);
});

test('CPU has one unit: % of one core in the dashboard, the saturation warning, summary.json and report.html', () => {
  assert.equal(CPU_UNIT, '% of one core');
  assert.equal(cpuPct(0.18), 18);
  assert.equal(cpuPct(1.5), 150);
  assert.equal(cpuText(0.42), '42% of a core');
  const health = { cpu: 0.42, loopDelayP99Ms: 3, loopDelayMaxMs: 4, rssMb: 90, saturated: true };
  assert.match(saturationWarning({ name: 'a1', health })!, /CPU 42% of a core/);
  const h = newHistogram();
  h.recordValue(1_000);
  const { lastFrame, unmount } = render(React.createElement(BenchDashboard, {
    s: {
      scenario: 'x', target: 't', elapsedS: 1, durationS: 2, connections: { target: 1, open: 1, failed: 0 }, msgsPerSec: 1, latency: latencySummary(h), bars: latencyBars(h),
      counters: zeroCounters(), agents: [{ name: 'a1', host: 'h', state: 'running', open: 1, target: 1, msgsPerSec: 1, health }], http: [], warnings: [], done: false,
    },
  }));
  const frame = lastFrame() ?? '';
  unmount();
  assert.match(frame, /CPU %core/);
  assert.match(frame, /\s42%\s/);
  assert.doesNotMatch(frame, /0\.42/);

  const dir = mkdtempSync(join(tmpdir(), 'mp-benchux-'));
  try {
    const { outcome, scenario } = fixtureOutcome('auto');
    const { dir: out, summary } = writeBenchReport(dir, outcome, scenario, {});
    const agents = summary.agents as Array<{ healthOverRun: Record<string, unknown>; health: Record<string, unknown> }>;
    for (const a of agents) {
      assert.equal(a.healthOverRun.cpu, undefined, 'no bare share of a core');
      assert.equal(a.healthOverRun.cpuPct, cpuPct(outcome.agents.find((x) => x.healthOverRun)!.healthOverRun!.cpu));
      assert.equal(typeof a.healthOverRun.cpuMaxPct, 'number');
      assert.equal(typeof a.health.cpuPct, 'number');
    }
    assert.match(String((summary.measurement as { cpu: string }).cpu), /% of one core/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /<th>CPU, % of one core \(run \/ max\)<\/th>/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('summary.json: the headline is the steady state, the warm-up and the whole run are kept apart and add up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mp-benchux-'));
  try {
    const { outcome, scenario } = fixtureOutcome({ ms: 1_000 });
    const { summary } = writeBenchReport(dir, outcome, scenario, {});
    const r = summary.results as { latencyMs: { count: number; maxMs: number }; msgsPerSec: number };
    const w = summary.warmup as { endS: number; fromS: number; toS: number; latency: { count: number }; how: string };
    const total = summary.total as { latencyMs: { count: number } };
    assert.deepEqual([w.endS, w.fromS, w.toS], [1, 0, 1]);
    assert.match(w.how, /fixed: 1 s/);
    assert.equal((summary.scenario as { warmup: string }).warmup, '1000ms', 'the setting is recorded with the scenario');
    assert.ok(w.latency.count > 0 && r.latencyMs.count > 0);
    assert.equal(w.latency.count + r.latencyMs.count, total.latencyMs.count);
    assert.equal(total.latencyMs.count, 861, "the fixture run's own total");
    assert.equal(r.msgsPerSec, outcome.steady.msgsPerSec);
    const none = fixtureOutcome({ ms: 0 });
    const s0 = writeBenchReport(dir, { ...none.outcome, runId: 'none', startedAt: new Date(0) }, none.scenario, {}).summary;
    assert.equal((s0.results as { latencyMs: { count: number } }).latencyMs.count, 861);
    assert.match(String((s0.measurement as { headline: string }).headline), /no warm-up/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('charts: fixed ticks outside the data still place, labels near the right edge stay inside the viewBox, bars and paths are drawn', () => {
  const svg = svgChart({
    id: 't', title: 'T', x: { label: 'percentile', log: true, ticks: [[1, '0%'], [100_000, '99.999%']] }, y: { label: 'ms', log: true },
    series: [{ name: 's', color: '#000', points: [[1, 0], [10, 3], [100_000, 250]] }],
    bars: [{ x0: 1, x1: 10, y: 5, title: 'b' }],
    marks: [{ x0: 99_000, label: 'a long fault label at the end' }],
  });
  assert.match(svg, /viewBox="0 0 720 280"/);
  assert.match(svg, /<path class="series" data-series="s"[^>]* d="M[\d.]+,[\d.]+ L/);
  assert.match(svg, /<rect class="bar"/);
  assert.match(svg, /text-anchor="end" fill="#c62828">a long fault label/, 'a mark label near the right edge turns left');
  for (const m of svg.matchAll(/<text class="tick" x="([\d.]+)"[^>]*>([^<]*)</g)) {
    const x = Number(m[1]);
    assert.ok(x - (m[2]!.length * 6.5) / 2 >= 0 && x + (m[2]!.length * 6.5) / 2 <= 720, `${m[2]} at ${x}`);
  }
  for (const v of ['2', '5', '10', '20', '50', '100', '200', '500']) assert.match(svg, new RegExp(`text-anchor="end">${v}</text>`), `y tick ${v}`);
  assert.match(svgChart({ id: 'e', title: 'E', x: { label: 'x' }, y: { label: 'y' }, series: [] }), /no data/);
});

test('bundled scenarios: every scenario file has a description; --list lines fit 80 columns; an unknown name lists them', () => {
  const list = bundledScenarios();
  assert.ok(list.length >= 7);
  for (const name of ['hot-symbol', 'zipf-symbols', 'churn', 'reconnect-storm', 'gateway-kill', 'kline-history', 'router-discovery'])
    assert.ok(list.some((s) => s.name === name), name);
  for (const s of list) assert.notEqual(s.description, '(no description)', `${s.name} has a description:`);
  const lines = scenarioList(list);
  assert.equal(lines.length, list.length);
  for (const l of lines) assert.ok(l.length <= 80, `${l.length} columns: ${l}`);
  assert.match(lines.find((l) => l.includes('hot-symbol'))!, /^ {2}hot-symbol\s+One hot symbol to 500 clients$/);
  assert.equal(oneLine('A short first sentence. Then details.', 80), 'A short first sentence');
  assert.equal(oneLine('word '.repeat(30).trim(), 22), 'word word word word…');
  assert.throws(() => resolveScenario('no-such-scenario'), (err: Error) => /no scenario "no-such-scenario"/.test(err.message) && /hot-symbol\s+One hot symbol/.test(err.message) && /gateway-kill/.test(err.message));
  assert.match(resolveScenario('hot-symbol'), /scenarios\/hot-symbol\.yaml$/);
  const dir = mkdtempSync(join(tmpdir(), 'mp-benchux-'));
  try {
    writeFileSync(join(dir, 'bare.yaml'), 'name: bare\nduration: 1s\n');
    writeFileSync(join(dir, 'broken.yaml'), 'name: [\n');
    assert.deepEqual(bundledScenarios(dir), [{ name: 'bare', description: '(no description)' }, { name: 'broken', description: '(not a valid scenario file)' }]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
