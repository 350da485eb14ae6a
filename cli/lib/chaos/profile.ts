// Weak-network profiles: small YAML files in netem/, parsed into one
// normalised shape (milliseconds, bits per second, percentages) with errors
// that name the file and the field.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse as parseYaml } from 'yaml';

export const DISTRIBUTIONS = ['uniform', 'normal', 'pareto', 'paretonormal'] as const;
export type Distribution = (typeof DISTRIBUTIONS)[number];

/** Per direction: `up` is from the weak side (clients) towards the cluster, `down` towards the weak side. */
export interface PerDirection<T> {
  up?: T;
  down?: T;
}

export interface PartitionSpec {
  /** drop: packets vanish (a blackhole; TCP retransmits until it times out); reset: connections are refused / reset. */
  mode: 'drop' | 'reset';
  /** Flapping: the link is up for `upMs`, then cut for `downMs`, repeatedly. Without it the cut lasts while the profile does. */
  schedule?: { upMs: number; downMs: number };
  /** Cut once after this long (ms) instead of from the start. */
  afterMs?: number;
}

export interface Profile {
  name: string;
  description: string;
  /** Where the numbers come from (a URL or a document and the place in it). */
  source: string;
  /** One-way added delay per direction, ms. */
  delayMs: PerDirection<number>;
  jitterMs?: number;
  distribution?: Distribution;
  loss?: { percent: number; correlation?: number };
  duplicate?: number;
  reorder?: { percent: number; correlation?: number; gap?: number };
  corrupt?: number;
  /** Bits per second. */
  bandwidth: PerDirection<number>;
  partition?: PartitionSpec;
  /** The weak side reads at most this many bits per second (the proxy stops reading, so backpressure reaches the sender). */
  slowReaderBps?: number;
  /** Toxiproxy-style faults only the userspace proxy can do. */
  proxy?: {
    slowCloseMs?: number;
    resetAfterMs?: number;
    timeoutMs?: number;
    slicer?: { averageSize: number; sizeVariation: number; delayMs: number };
  };
  file?: string;
}

export class ProfileError extends Error {}

const DURATION = /^(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h)?$/;
const DURATION_MS: Record<string, number> = { us: 0.001, µs: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "150ms", "2s", "1.5m", a bare number = ms. */
export function parseDuration(v: unknown, field: string): number {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
  if (typeof v === 'string') {
    const m = DURATION.exec(v.trim());
    if (m) return Number(m[1]) * DURATION_MS[m[2] ?? 'ms']!;
  }
  throw new ProfileError(`${field}: expected a duration such as 150ms or 2s, got ${JSON.stringify(v)}`);
}

const RATE = /^(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps|B\/s|KB\/s|kB\/s|MB\/s|Bps|KBps|MBps)?$/;
const RATE_BPS: Record<string, number> = {
  bit: 1, bps: 1, kbit: 1e3, kbps: 1e3, mbit: 1e6, mbps: 1e6, gbit: 1e9, gbps: 1e9,
  'B/s': 8, Bps: 8, 'KB/s': 8e3, 'kB/s': 8e3, KBps: 8e3, 'MB/s': 8e6, MBps: 8e6,
};

/** "1mbit", "768kbit", "50000B/s" (bytes), a bare number = bits per second. Result in bits per second. */
export function parseRate(v: unknown, field: string): number {
  if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v;
  if (typeof v === 'string') {
    const m = RATE.exec(v.trim());
    if (m && Number(m[1]) > 0) return Number(m[1]) * RATE_BPS[m[2] ?? 'bit']!;
  }
  throw new ProfileError(`${field}: expected a rate such as 1mbit, 768kbit or 50000B/s, got ${JSON.stringify(v)}`);
}

/** "2%", "2.5 %", a bare number = percent; 0..100. */
export function parsePercent(v: unknown, field: string): number {
  let n: number | undefined;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^\d+(\.\d+)?\s*%?$/.test(v.trim())) n = Number.parseFloat(v);
  if (n === undefined || !Number.isFinite(n) || n < 0 || n > 100)
    throw new ProfileError(`${field}: expected a percentage between 0 and 100 such as 2%, got ${JSON.stringify(v)}`);
  return n;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function only(o: Obj, allowed: string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new ProfileError(`${where}${k}: unknown field (allowed: ${allowed.join(', ')})`);
  }
}

function perDirection(v: unknown, field: string, parse: (x: unknown, f: string) => number): PerDirection<number> {
  if (v === undefined) return {};
  if (isObj(v)) {
    only(v, ['up', 'down'], `${field}.`);
    const out: PerDirection<number> = {};
    if (v.up !== undefined) out.up = parse(v.up, `${field}.up`);
    if (v.down !== undefined) out.down = parse(v.down, `${field}.down`);
    return out;
  }
  const n = parse(v, field);
  return { up: n, down: n };
}

/** A percentage alone, or {percent, correlation[, gap]}. */
function pctWith(v: unknown, field: string, extra: string[]): Obj & { percent: number } {
  if (isObj(v)) {
    only(v, ['percent', 'correlation', ...extra], `${field}.`);
    const out: Obj & { percent: number } = { percent: parsePercent(v.percent, `${field}.percent`) };
    if (v.correlation !== undefined) out.correlation = parsePercent(v.correlation, `${field}.correlation`);
    return Object.assign(v, out);
  }
  return { percent: parsePercent(v, field) };
}

const FIELDS = [
  'name', 'description', 'source', 'delay', 'jitter', 'distribution', 'loss', 'duplicate', 'reorder', 'corrupt',
  'bandwidth', 'partition', 'slowReader', 'proxy',
];

/** Validates one parsed YAML document. `name` defaults to the file name. */
export function parseProfile(doc: unknown, fallbackName: string, file?: string): Profile {
  const where = file ? `${file}: ` : '';
  try {
    if (!isObj(doc)) throw new ProfileError('a profile is a YAML mapping (name:, source:, delay:, …)');
    only(doc, FIELDS, '');
    const name = doc.name === undefined ? fallbackName : String(doc.name);
    if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) throw new ProfileError(`name: ${JSON.stringify(name)} must be lower-case letters, digits, . _ -`);
    if (typeof doc.source !== 'string' || doc.source.trim() === '')
      throw new ProfileError('source: required; say where the numbers come from (a URL, or "project choice: why")');
    const p: Profile = {
      name,
      description: typeof doc.description === 'string' ? doc.description : '',
      source: doc.source.trim(),
      delayMs: perDirection(doc.delay, 'delay', parseDuration),
      bandwidth: perDirection(doc.bandwidth, 'bandwidth', parseRate),
    };
    if (file) p.file = file;
    if (doc.jitter !== undefined) p.jitterMs = parseDuration(doc.jitter, 'jitter');
    if (doc.distribution !== undefined) {
      if (!DISTRIBUTIONS.includes(doc.distribution as Distribution))
        throw new ProfileError(`distribution: one of ${DISTRIBUTIONS.join(', ')}, got ${JSON.stringify(doc.distribution)}`);
      if (p.jitterMs === undefined) throw new ProfileError('distribution: needs jitter');
      p.distribution = doc.distribution as Distribution;
    }
    if (doc.loss !== undefined) {
      const l = pctWith(doc.loss, 'loss', []);
      p.loss = { percent: l.percent, ...(l.correlation !== undefined ? { correlation: l.correlation as number } : {}) };
    }
    if (doc.duplicate !== undefined) p.duplicate = parsePercent(doc.duplicate, 'duplicate');
    if (doc.corrupt !== undefined) p.corrupt = parsePercent(doc.corrupt, 'corrupt');
    if (doc.reorder !== undefined) {
      const r = pctWith(doc.reorder, 'reorder', ['gap']);
      p.reorder = { percent: r.percent };
      if (r.correlation !== undefined) p.reorder.correlation = r.correlation as number;
      if (r.gap !== undefined) {
        if (!Number.isInteger(r.gap) || (r.gap as number) < 1) throw new ProfileError('reorder.gap: a positive integer');
        p.reorder.gap = r.gap as number;
      }
      // netem reorders by sending some packets without the delay: no delay, nothing to reorder.
      if (!p.delayMs.up && !p.delayMs.down) throw new ProfileError('reorder: needs a delay (reordering sends some packets ahead of the delayed ones)');
    }
    if (doc.partition !== undefined) p.partition = parsePartition(doc.partition);
    if (doc.slowReader !== undefined) {
      const s = doc.slowReader;
      p.slowReaderBps = parseRate(isObj(s) ? s.rate : s, 'slowReader.rate');
    }
    if (doc.proxy !== undefined) p.proxy = parseProxy(doc.proxy);
    return p;
  } catch (err) {
    if (err instanceof ProfileError) throw new ProfileError(`${where}${err.message}`);
    throw err;
  }
}

function parsePartition(v: unknown): PartitionSpec {
  if (v === true) return { mode: 'drop' };
  if (!isObj(v)) throw new ProfileError('partition: a mapping {mode: drop|reset, schedule: {up: 20s, down: 5s}}');
  only(v, ['mode', 'schedule', 'after'], 'partition.');
  const mode = v.mode ?? 'drop';
  if (mode !== 'drop' && mode !== 'reset') throw new ProfileError(`partition.mode: drop or reset, got ${JSON.stringify(mode)}`);
  const out: PartitionSpec = { mode };
  if (v.schedule !== undefined) {
    if (!isObj(v.schedule)) throw new ProfileError('partition.schedule: {up: 20s, down: 5s}');
    only(v.schedule, ['up', 'down'], 'partition.schedule.');
    const upMs = parseDuration(v.schedule.up, 'partition.schedule.up');
    const downMs = parseDuration(v.schedule.down, 'partition.schedule.down');
    if (upMs <= 0 || downMs <= 0) throw new ProfileError('partition.schedule: up and down must both be longer than 0');
    out.schedule = { upMs, downMs };
  }
  if (v.after !== undefined) out.afterMs = parseDuration(v.after, 'partition.after');
  return out;
}

function parseProxy(v: unknown): NonNullable<Profile['proxy']> {
  if (!isObj(v)) throw new ProfileError('proxy: a mapping of proxy faults (slowClose, resetAfter, timeout, slicer)');
  only(v, ['slowClose', 'resetAfter', 'timeout', 'slicer'], 'proxy.');
  const out: NonNullable<Profile['proxy']> = {};
  if (v.slowClose !== undefined) out.slowCloseMs = parseDuration(v.slowClose, 'proxy.slowClose');
  if (v.resetAfter !== undefined) out.resetAfterMs = parseDuration(v.resetAfter, 'proxy.resetAfter');
  if (v.timeout !== undefined) out.timeoutMs = parseDuration(v.timeout, 'proxy.timeout');
  if (v.slicer !== undefined) {
    const s = v.slicer;
    if (!isObj(s)) throw new ProfileError('proxy.slicer: {averageSize: 64, sizeVariation: 32, delay: 5ms}');
    only(s, ['averageSize', 'sizeVariation', 'delay'], 'proxy.slicer.');
    const averageSize = Number(s.averageSize);
    const sizeVariation = Number(s.sizeVariation ?? 0);
    if (!Number.isInteger(averageSize) || averageSize < 1) throw new ProfileError('proxy.slicer.averageSize: a positive integer (bytes)');
    if (!Number.isInteger(sizeVariation) || sizeVariation < 0 || sizeVariation >= averageSize)
      throw new ProfileError('proxy.slicer.sizeVariation: an integer from 0 to averageSize-1');
    out.slicer = { averageSize, sizeVariation, delayMs: parseDuration(s.delay ?? 0, 'proxy.slicer.delay') };
  }
  return out;
}

export function parseProfileText(text: string, fallbackName: string, file?: string): Profile {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ProfileError(`${file ?? fallbackName}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  return parseProfile(doc, fallbackName, file);
}

/** The shipped profiles directory (netem/ at the repository root). */
export const PROFILE_DIR = join(import.meta.dirname, '..', '..', '..', 'netem');

export function loadProfiles(dir = PROFILE_DIR): Profile[] {
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
  const out = files.map((f) => parseProfileText(readFileSync(join(dir, f), 'utf8'), basename(f).replace(/\.ya?ml$/, ''), join(dir, f)));
  const seen = new Set<string>();
  for (const p of out) {
    if (seen.has(p.name)) throw new ProfileError(`${p.file}: a second profile named ${p.name}`);
    seen.add(p.name);
  }
  return out;
}

/** By name from netem/, or a path to a YAML file. */
export function resolveProfile(nameOrPath: string, dir = PROFILE_DIR): Profile {
  if (/\.ya?ml$/.test(nameOrPath) || nameOrPath.includes('/')) {
    return parseProfileText(readFileSync(nameOrPath, 'utf8'), basename(nameOrPath).replace(/\.ya?ml$/, ''), nameOrPath);
  }
  const all = loadProfiles(dir);
  const p = all.find((x) => x.name === nameOrPath);
  if (!p) throw new ProfileError(`no profile named ${nameOrPath} in ${dir}; known: ${all.map((x) => x.name).join(', ')}`);
  return p;
}

const fmtRate = (bps: number) => (bps >= 1e6 ? `${+(bps / 1e6).toFixed(3)} Mbit/s` : bps >= 1e3 ? `${+(bps / 1e3).toFixed(2)} kbit/s` : `${bps} bit/s`);
const fmtDir = (d: PerDirection<number>, f: (n: number) => string) =>
  d.up === d.down ? (d.up === undefined ? '' : f(d.up)) : `↓${d.down === undefined ? '-' : f(d.down)} ↑${d.up === undefined ? '-' : f(d.up)}`;

/** One line of numbers, for `pushctl chaos profiles`. */
export function summarize(p: Profile): string {
  const parts: string[] = [];
  const delay = fmtDir(p.delayMs, (n) => `${n}ms`);
  if (delay) parts.push(`delay ${delay}${p.jitterMs ? ` ±${p.jitterMs}ms${p.distribution ? ` ${p.distribution}` : ''}` : ''}`);
  else if (p.jitterMs) parts.push(`jitter ${p.jitterMs}ms`);
  const bw = fmtDir(p.bandwidth, fmtRate);
  if (bw) parts.push(`bw ${bw}`);
  if (p.loss) parts.push(`loss ${p.loss.percent}%${p.loss.correlation ? ` corr ${p.loss.correlation}%` : ''}`);
  if (p.duplicate) parts.push(`dup ${p.duplicate}%`);
  if (p.reorder) parts.push(`reorder ${p.reorder.percent}%`);
  if (p.corrupt) parts.push(`corrupt ${p.corrupt}%`);
  if (p.partition)
    parts.push(`partition ${p.partition.mode}${p.partition.schedule ? ` up ${p.partition.schedule.upMs / 1000}s/down ${p.partition.schedule.downMs / 1000}s` : ''}`);
  if (p.slowReaderBps) parts.push(`slow reader ${fmtRate(p.slowReaderBps)}`);
  if (p.proxy) parts.push(`proxy ${Object.keys(p.proxy).join(',')}`);
  return parts.join(', ') || '(no impairment)';
}
