// report.html from a real run's recorded snapshots (test/fixtures), opened
// in a real browser (Debian's chromium, headless, via playwright-core): every
// plot has both axes with tick labels, the latency histogram has bars, the
// line plots have their series, and no text sticks out of its SVG.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { writeBenchReport } from '../../cli/lib/bench/report-files.ts';
import { fixtureOutcome } from '../helpers/bench-fixture.ts';

interface Rect { left: number; top: number; right: number; bottom: number; width: number; height: number }
interface ChartView {
  id: string;
  svg: Rect;
  xTicks: string[];
  yTicks: string[];
  axisLabels: string[];
  bars: Array<{ height: number }>;
  paths: Array<{ series: string; width: number; height: number; d: string }>;
  texts: Array<{ text: string; rect: Rect }>;
}

test('report.html in Chromium: axes with tick labels, histogram bars, series paths, no text outside its SVG', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mp-report-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { outcome, scenario } = fixtureOutcome('auto');
  // A fault marked near the run's end: its label must turn inwards, not run off the plot.
  outcome.faults = [{ fault: 'kill gateway-2', ok: true, message: 'killed gateway-2 (pid 1) with SIGKILL', startedMs: 2_800, fromMs: 2_800, toMs: 3_000, window: 'recovered' }];
  const { dir: out } = writeBenchReport(dir, outcome, scenario, { command: 'pushctl bench hot-symbol' });
  const file = join(out, 'report.html');
  const html = readFileSync(file, 'utf8');
  assert.doesNotMatch(html, /<script|<link|src="http/i, 'one self-contained file');

  const profile = await mkdtemp(join(tmpdir(), 'mp-chromium-'));
  t.after(() => rm(profile, { recursive: true, force: true }));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const failed: string[] = [];
  page.on('requestfailed', (r) => failed.push(r.url()));
  await page.goto(`file://${file}`);

  const charts = (await page.evaluate(() => {
    const rect = (e: Element) => {
      const r = e.getBoundingClientRect();
      return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height };
    };
    return [...document.querySelectorAll('svg.chart')].map((svg) => ({
      id: svg.getAttribute('data-chart') ?? '',
      svg: rect(svg),
      xTicks: [...svg.querySelectorAll('.x-axis text.tick')].map((e) => e.textContent ?? ''),
      yTicks: [...svg.querySelectorAll('.y-axis text.tick')].map((e) => e.textContent ?? ''),
      axisLabels: [...svg.querySelectorAll('.axis text.label')].map((e) => e.textContent ?? ''),
      bars: [...svg.querySelectorAll('rect.bar')].map((e) => ({ height: rect(e).height })),
      paths: [...svg.querySelectorAll('path.series')].map((e) => ({ series: e.getAttribute('data-series') ?? '', d: e.getAttribute('d') ?? '', width: rect(e).width, height: rect(e).height })),
      texts: [...svg.querySelectorAll('text')].map((e) => ({ text: e.textContent ?? '', rect: rect(e) })),
    }));
  })) as ChartView[];

  assert.deepEqual(charts.map((c) => c.id), ['histogram', 'percentiles', 'throughput', 'latency-time', 'connections']);
  for (const c of charts) {
    assert.ok(c.xTicks.length >= 2 && c.xTicks.every((l) => l.trim() !== ''), `${c.id}: x tick labels ${JSON.stringify(c.xTicks)}`);
    assert.ok(c.yTicks.length >= 2 && c.yTicks.every((l) => l.trim() !== ''), `${c.id}: y tick labels ${JSON.stringify(c.yTicks)}`);
    assert.equal(c.axisLabels.length, 2, `${c.id}: both axes named`);
    for (const x of c.texts) {
      const r = x.rect;
      const inside = r.left >= c.svg.left - 0.5 && r.right <= c.svg.right + 0.5 && r.top >= c.svg.top - 0.5 && r.bottom <= c.svg.bottom + 0.5;
      assert.ok(inside, `${c.id}: "${x.text}" at ${JSON.stringify(r)} is outside its SVG ${JSON.stringify(c.svg)}`);
    }
  }
  const by = (id: string) => charts.find((c) => c.id === id)!;

  // The histogram: bars over log-scaled buckets whose edges read 1-2-5.
  const hist = by('histogram');
  assert.ok(hist.bars.length >= 3 && hist.bars.some((b) => b.height > 1), `bars ${JSON.stringify(hist.bars)}`);
  assert.match(hist.axisLabels.join(' '), /log scale/);
  const is125 = (l: string) => /^(1|2|5)(0*)$|^0\.0*(1|2|5)$/.test(l.replace(/k$/, '000'));
  assert.ok(hist.xTicks.every(is125), `histogram x ticks ${hist.xTicks}`);

  // The percentile plot: its series, readable log ticks, every percentile label (99.999 % included) visible.
  const pct = by('percentiles');
  assert.equal(pct.paths.length, 1);
  assert.ok(pct.yTicks.every(is125), `percentile y ticks ${pct.yTicks}`);
  assert.deepEqual(pct.xTicks, ['0%', '90%', '99%', '99.9%', '99.99%', '99.999%']);

  // Time axes: seconds since the start, labelled, and each series drawn across them.
  for (const id of ['throughput', 'latency-time', 'connections']) {
    const c = by(id);
    assert.equal(c.axisLabels[1], 'seconds since start', `${id} x axis`);
    assert.ok(c.xTicks.includes('0') && c.xTicks.includes('3'), `${id} x ticks ${c.xTicks}`);
    assert.ok(c.paths.length >= 1 && c.paths.every((p) => /^M[\d.]+,[\d.]+( L[\d.]+,[\d.]+)+$/.test(p.d) && p.width > 10), `${id} paths ${JSON.stringify(c.paths)}`);
  }
  assert.deepEqual(by('latency-time').paths.map((p) => p.series), ['p50', 'p99', 'max']);
  // Linear y ticks are round steps (0, 200, 400 …), never odd fractions of the maximum.
  const thr = by('throughput').yTicks.map((l) => Number(l.replace(/k$/, 'e3')));
  const step = thr[1]! - thr[0]!;
  assert.ok(thr.every((v, i) => Math.abs(v - thr[0]! - i * step) < 1e-9) && is125(String(step)), `throughput ticks ${thr}`);
  // Warm-up and the fault are marked on the time plots.
  const marks = by('throughput').texts.map((x) => x.text);
  assert.ok(marks.includes('warm-up') && marks.includes('kill gateway-2'), `marks ${marks}`);
  assert.deepEqual(failed, [], 'the report loads nothing from anywhere');
});
