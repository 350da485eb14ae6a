// Before / during / after a run's faults: each fault's window from its
// recorded times, then the run's per-second intervals cut at those windows
// and merged per phase (histograms added bucket by bucket: exact within the
// interval resolution). Pure: no I/O, so the dashboard and the report compute
// the same figures from the same intervals.
import type { Histogram } from 'hdr-histogram-js';
import type { FaultEvent } from '../chaos/schedule.ts';
import { describeFault } from '../chaos/schedule.ts';
import { newHistogram } from './meter.ts';
import { latencySummary, type LatencySummary } from './figures.ts';
import { addCounters, zeroCounters, type Counters } from './wire.ts';

/** One snapshot interval of the run, ms since the run's start. */
export interface RunInterval {
  fromMs: number;
  toMs: number;
  counters: Counters;
  open: number;
  hist: Histogram;
}

export type PhaseName = 'before' | 'during' | 'after';

export interface FaultWindow {
  fault: string;
  ok: boolean;
  message: string;
  /** ms since the run's start; undefined when it never started. */
  startedMs?: number;
  endedMs?: number;
  /** The window the phases use: [fromMs, toMs). */
  fromMs?: number;
  toMs?: number;
  /**
   * recorded: the fault's own start and end (profiles, a pause until its resume);
   * recovered: an instant fault (kill, restart, resume) until the first calm interval after it;
   * not recovered: no calm interval came before the run ended.
   */
  window?: 'recorded' | 'recovered' | 'not recovered';
}

/** Figures of a span of intervals (a fault phase, the warm-up, the steady state). */
export interface SpanFigures {
  /** Interval-aligned bounds, seconds since the run's start (empty phase: both undefined). */
  fromS?: number;
  toS?: number;
  intervals: number;
  msgs: number;
  msgsPerSec: number;
  latency: LatencySummary;
  connects: number;
  reconnects: number;
  unplannedCloses: number;
  connectFailures: number;
  rejected: number;
  gaps: number;
  resyncs: number;
  errors: number;
  openMin: number;
  openMax: number;
  /** Open connections in the phase's last interval. */
  openEnd: number;
}

export interface PhaseFigures extends SpanFigures {
  name: PhaseName;
}

export interface Phases {
  /** The during phase: from the first fault window's start to the last one's end (ms since the run's start). */
  duringFromMs: number;
  duringToMs: number;
  phases: PhaseFigures[];
}

const INSTANT = new Set(['kill', 'restart', 'resume']);

/**
 * The first interval starting at or after `atMs` in which no session closed unexpectedly, reconnected, failed or
 * was refused, and at least as many were open as in the last interval before `atMs`; its start, or undefined.
 */
export function recoveredAt(intervals: RunInterval[], atMs: number): number | undefined {
  const before = intervals.filter((i) => i.toMs <= atMs).at(-1);
  const baseline = before?.open ?? 0;
  for (const i of intervals) {
    if (i.fromMs < atMs) continue;
    const c = i.counters;
    if (c.reconnects === 0 && c.unplannedCloses === 0 && c.connectFailures === 0 && c.rejected === 0 && i.open >= baseline) return i.fromMs;
  }
  return undefined;
}

/**
 * Each fault's window; `runEndMs` closes windows still open (a profile without `for`, an unrecovered kill).
 * Live, pass settled intervals only: the one still filling may yet show a reconnect.
 */
export function faultWindows(events: FaultEvent[], intervals: RunInterval[], runEndMs: number): FaultWindow[] {
  return events.map((e) => {
    const w: FaultWindow = { fault: describeFault(e.spec), ok: e.ok, message: e.message };
    if (e.startedMs !== undefined) w.startedMs = e.startedMs;
    if (e.endedMs !== undefined) w.endedMs = e.endedMs;
    if (!e.ok || e.startedMs === undefined) return w;
    w.fromMs = e.startedMs;
    if ('fault' in e.spec && INSTANT.has(e.spec.fault)) {
      const r = recoveredAt(intervals, e.startedMs);
      w.toMs = r ?? Math.max(runEndMs, e.startedMs);
      w.window = r === undefined ? 'not recovered' : 'recovered';
    } else {
      w.toMs = Math.max(e.endedMs ?? runEndMs, e.startedMs);
      w.window = 'recorded';
    }
    return w;
  });
}

/** A span's figures: counters summed, histograms added bucket by bucket (exact), rates over the span's own length. */
export function spanFigures(list: RunInterval[]): SpanFigures {
  const c = zeroCounters();
  const h = newHistogram();
  for (const i of list) {
    addCounters(c, i.counters);
    h.add(i.hist);
  }
  const durMs = list.reduce((s, i) => s + (i.toMs - i.fromMs), 0);
  const opens = list.map((i) => i.open);
  const f: SpanFigures = {
    ...(list.length ? { fromS: list[0]!.fromMs / 1000, toS: list.at(-1)!.toMs / 1000 } : {}),
    intervals: list.length,
    msgs: c.msgs,
    msgsPerSec: durMs > 0 ? Math.round((c.msgs * 1000) / durMs) : 0,
    latency: latencySummary(h),
    connects: c.connects,
    reconnects: c.reconnects,
    unplannedCloses: c.unplannedCloses,
    connectFailures: c.connectFailures,
    rejected: c.rejected,
    gaps: c.gaps,
    resyncs: c.resyncs,
    errors: c.errors,
    openMin: opens.length ? Math.min(...opens) : 0,
    openMax: opens.length ? Math.max(...opens) : 0,
    openEnd: opens.at(-1) ?? 0,
  };
  h.destroy();
  return f;
}

export const midpoint = (i: Pick<RunInterval, 'fromMs' | 'toMs'>): number => (i.fromMs + i.toMs) / 2;

/** Which phase an interval is in: by its midpoint (so the cut is exact to half an interval). */
export function phaseOf(i: Pick<RunInterval, 'fromMs' | 'toMs'>, duringFromMs: number, duringToMs: number): PhaseName {
  const mid = midpoint(i);
  return mid < duringFromMs ? 'before' : mid < duringToMs ? 'during' : 'after';
}

/** The before / during / after split; undefined when no fault started (nothing to compare). */
export function splitPhases(windows: FaultWindow[], intervals: RunInterval[]): Phases | undefined {
  const applied = windows.filter((w) => w.fromMs !== undefined && w.toMs !== undefined);
  if (!applied.length) return undefined;
  const duringFromMs = Math.min(...applied.map((w) => w.fromMs!));
  const duringToMs = Math.max(...applied.map((w) => w.toMs!));
  const by: Record<PhaseName, RunInterval[]> = { before: [], during: [], after: [] };
  for (const i of intervals) by[phaseOf(i, duringFromMs, duringToMs)].push(i);
  return { duringFromMs, duringToMs, phases: (['before', 'during', 'after'] as const).map((name) => ({ name, ...spanFigures(by[name]) })) };
}
