// Summarises V8 .cpuprofile files (node --cpu-prof) by self time per
// function, so a fan-out run can say where a role spent its CPU.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  fn: string;
  where: string;
  selfMs: number;
  pct: number;
}

/**
 * Self time per function, as a share of the busy (non-idle) time; with a
 * window (µs on the profile's clock, CLOCK_MONOTONIC on Linux), only the
 * samples taken within it.
 */
export function summariseProfile(file: string, root: string, top = 20, window?: { fromUs: number; toUs: number }): { totalMs: number; busyMs: number; functions: HotFunction[] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, { fn: string; where: string; us: number }>();
  let total = 0;
  let at = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]!);
    const dt = p.timeDeltas[i] ?? 0;
    at += dt;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    if (!n || dt <= 0) continue;
    total += dt;
    const cf = n.callFrame;
    const url = cf.url.startsWith('file://') ? relative(root, cf.url.slice(7)) : cf.url;
    const where = url ? `${url}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName}|${where}`;
    const e = self.get(key) ?? { fn: cf.functionName || '(anonymous)', where, us: 0 };
    e.us += dt;
    self.set(key, e);
  }
  const idle = self.get('(idle)|')?.us ?? 0;
  const busy = Math.max(1, total - idle);
  self.delete('(idle)|');
  const functions = [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ fn: e.fn, where: e.where, selfMs: Math.round(e.us / 1000), pct: Math.round((e.us / busy) * 1000) / 10 }));
  return { totalMs: Math.round(total / 1000), busyMs: Math.round(busy / 1000), functions };
}

export function profilesIn(dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f));
  } catch {
    return [];
  }
}
