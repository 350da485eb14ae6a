// Turns the fan-out figures into what a reader gets: a short table on
// stdout, and a report folder with summary.json (every figure, the options,
// the machine) and latency.hlog (HdrHistogram interval log, µs values,
// one tagged line per measured interval).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, platform, release } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { HistogramLogWriter, type Histogram } from 'hdr-histogram-js';

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
}

const ms = (us: number) => Math.round(us) / 1000;

export function latencySummary(h: Histogram): LatencySummary {
  if (h.totalCount === 0) return { count: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0, meanMs: 0 };
  return {
    count: h.totalCount,
    p50Ms: ms(h.getValueAtPercentile(50)),
    p90Ms: ms(h.getValueAtPercentile(90)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    p999Ms: ms(h.getValueAtPercentile(99.9)),
    maxMs: ms(h.maxValue),
    meanMs: ms(h.mean),
  };
}

export interface IntervalHistogram {
  tag: string;
  startMs: number;
  endMs: number;
  hist: Histogram;
}

export function machineInfo(root: string): Record<string, unknown> {
  const git = (args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: root, encoding: 'utf8', timeout: 5_000 }).trim();
    } catch {
      return undefined;
    }
  };
  const c = cpus();
  return {
    cpus: c.length,
    cpuModel: c[0]?.model,
    loadavgAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    platform: `${platform()} ${release()}`,
    node: process.version,
    gitCommit: git(['rev-parse', 'HEAD']),
    gitDirty: (git(['status', '--porcelain', '--', 'system', 'bench']) ?? '') !== '',
  };
}

/** Writes summary.json and latency.hlog into a fresh folder under outRoot; returns the folder. */
export function writeReport(outRoot: string, startedAt: Date, summary: object, intervals: IntervalHistogram[]): string {
  const dir = join(outRoot, `${startedAt.toISOString().replace(/[:.]/g, '-')}-fanout`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  const lines: string[] = [];
  const w = new HistogramLogWriter((s) => lines.push(s));
  w.outputLogFormatVersion();
  w.outputComment('[Latency: receive time - intended publish time, microseconds; Interval_Max in ms]');
  w.outputStartTime(startedAt.getTime());
  w.outputComment(`[BaseTime: ${(startedAt.getTime() / 1000).toFixed(3)} (seconds since epoch)]`);
  w.baseTime = startedAt.getTime();
  w.outputLegend();
  for (const iv of intervals) {
    iv.hist.tag = iv.tag;
    w.outputIntervalHistogram(iv.hist, (iv.startMs - w.baseTime) / 1000, (iv.endMs - w.baseTime) / 1000, 1000);
  }
  // The library's StartTime line ends in an extra newline; a blank line is noise for readers.
  writeFileSync(join(dir, 'latency.hlog'), lines.join('').replace(/\n\n+/g, '\n'));
  return dir;
}

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');

export function table(rows: Array<[string, string]>): string {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n');
}

export function fmtRate(perSec: number): string {
  return `${fmtInt(perSec)} msgs/s`;
}

export function fmtLatency(l: LatencySummary): string {
  return `p50 ${l.p50Ms} ms · p90 ${l.p90Ms} ms · p99 ${l.p99Ms} ms · p99.9 ${l.p999Ms} ms · max ${l.maxMs} ms (n=${fmtInt(l.count)})`;
}

export function fmtCpu(cpu: Record<string, number | null>): string {
  return Object.entries(cpu)
    .map(([k, v]) => `${k} ${v === null ? '?' : `${Math.round(v * 100)}%`}`)
    .join(' · ');
}
