// `pushctl tune`: the sysctls `pushctl doctor` asks for, applied and undone
// the way chaos is. Each key's value before the change is written to the
// record (<data-dir>/tune.json, or tune-netns-<name>.json for a network
// namespace) BEFORE the key is written, so `pushctl tune --undo` puts back
// exactly what was there, also after a crash half-way. Tuning again keeps the
// first recorded value: --undo always returns to the state before the first tune.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Shell } from './chaos/shell.ts';
import { covers, FD_HEADROOM, MIN_SOMAXCONN, MIN_SYN_BACKLOG, parsePortList, type DoctorTarget } from './host-checks.ts';
import { PER_NETNS_KEYS, readSysctl, writeSysctl, type SysctlTarget } from './host-sysctl.ts';

export interface TuneChange {
  key: string;
  from: string;
  to: string;
  why: string;
}

export interface TunePlan {
  changes: TuneChange[];
  /** Host-wide keys left out because the target is a network namespace. */
  skipped: TuneChange[];
}

export interface TuneRecord {
  version: 1;
  netns?: string;
  createdAt: string;
  changes: Array<{ key: string; before: string; after: string }>;
}

/** Current values a plan starts from (the host's, or a namespace's for its per-netns keys). */
export function readTuneInputs(target: SysctlTarget): Partial<Record<string, string>> {
  const keys = [
    'net.core.somaxconn',
    'net.ipv4.tcp_max_syn_backlog',
    'net.ipv4.tcp_tw_reuse',
    'net.ipv4.ip_local_port_range',
    'net.ipv4.ip_local_reserved_ports',
    'net.ipv4.tcp_congestion_control',
    'net.ipv4.tcp_available_congestion_control',
    'net.core.default_qdisc',
    'fs.nr_open',
    'fs.file-max',
  ];
  return Object.fromEntries(keys.map((k) => [k, PER_NETNS_KEYS.has(k) || k === 'net.ipv4.tcp_available_congestion_control' ? readSysctl(k, target) : readSysctl(k)]));
}

/** What to change, from the current values: only keys whose value falls short. Pure. */
export function planTune(cur: Partial<Record<string, string>>, t: DoctorTarget, o: { netns?: string; bbrLoadable: boolean }): TunePlan {
  const all: TuneChange[] = [];
  const atLeast = (key: string, min: number, why: string) => {
    const v = Number(cur[key]);
    if (cur[key] !== undefined && !(v >= min)) all.push({ key, from: cur[key]!, to: String(min), why });
  };
  atLeast('net.core.somaxconn', MIN_SOMAXCONN, 'accept backlog for reconnect storms');
  atLeast('net.ipv4.tcp_max_syn_backlog', MIN_SYN_BACKLOG * 2, 'half-open connections during reconnect storms');
  if (cur['net.ipv4.tcp_tw_reuse'] !== undefined && cur['net.ipv4.tcp_tw_reuse'] !== '1')
    all.push({ key: 'net.ipv4.tcp_tw_reuse', from: cur['net.ipv4.tcp_tw_reuse']!, to: '1', why: 'reuse TIME-WAIT ports for new outgoing connections' });
  // Reserve the port plan inside the ephemeral range, so no outgoing connection takes a role's port.
  const range = cur['net.ipv4.ip_local_port_range']?.split(' ').map(Number);
  const reserved = cur['net.ipv4.ip_local_reserved_ports'] ?? '';
  const planLo = t.portBase;
  const planHi = t.portBase + t.portSpan - 1;
  if (range?.length === 2 && cur['net.ipv4.ip_local_reserved_ports'] !== undefined) {
    const lo = Math.max(range[0]!, planLo);
    const hi = Math.min(range[1]!, planHi);
    if (lo <= hi && !covers(parsePortList(reserved), lo, hi))
      all.push({ key: 'net.ipv4.ip_local_reserved_ports', from: reserved, to: [reserved, `${planLo}-${planHi}`].filter(Boolean).join(','), why: `keep the port plan ${planLo}-${planHi} out of the ephemeral range` });
  }
  const available = (cur['net.ipv4.tcp_available_congestion_control'] ?? '').split(' ');
  if (cur['net.ipv4.tcp_congestion_control'] !== undefined && cur['net.ipv4.tcp_congestion_control'] !== 'bbr' && (available.includes('bbr') || o.bbrLoadable)) {
    if (cur['net.core.default_qdisc'] !== undefined && cur['net.core.default_qdisc'] !== 'fq')
      all.push({ key: 'net.core.default_qdisc', from: cur['net.core.default_qdisc']!, to: 'fq', why: 'fair queueing with pacing, the usual pairing for BBR' });
    all.push({ key: 'net.ipv4.tcp_congestion_control', from: cur['net.ipv4.tcp_congestion_control']!, to: 'bbr', why: 'BBR keeps lossy links fuller than cubic' });
  }
  const need = t.connections + FD_HEADROOM;
  atLeast('fs.nr_open', need, `the hard open-file limit can be raised to ${need} only below fs.nr_open`);
  atLeast('fs.file-max', need * 2, 'system-wide open files');
  if (!o.netns) return { changes: all, skipped: [] };
  return { changes: all.filter((c) => PER_NETNS_KEYS.has(c.key)), skipped: all.filter((c) => !PER_NETNS_KEYS.has(c.key)) };
}

export const tuneRecordPath = (dataDir: string, netns?: string) => join(dataDir, netns ? `tune-netns-${netns}.json` : 'tune.json');

export function readTuneRecord(dataDir: string, netns?: string): TuneRecord | undefined {
  const file = tuneRecordPath(dataDir, netns);
  let raw: string;
  try {
    raw = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const rec = JSON.parse(raw) as TuneRecord;
    if (rec.version !== 1 || !Array.isArray(rec.changes)) throw new Error('bad shape');
    return rec;
  } catch {
    throw new Error(`${file} is not a tune record pushctl wrote; fix or remove it (the values it held are lost)`);
  }
}

function writeTuneRecord(dataDir: string, rec: TuneRecord): void {
  const file = tuneRecordPath(dataDir, rec.netns);
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(rec, null, 2) + '\n');
  renameSync(tmp, file);
}

/** Applies a plan: records each key's value, then writes it. Dry run: prints the commands, records nothing. */
export function applyTune(shell: Shell, dataDir: string, plan: TunePlan, target: SysctlTarget): void {
  const rec: TuneRecord = readTuneRecord(dataDir, target.netns) ?? {
    version: 1,
    ...(target.netns ? { netns: target.netns } : {}),
    createdAt: new Date().toISOString(),
    changes: [],
  };
  for (const c of plan.changes) {
    if (!shell.dryRun) {
      const known = rec.changes.find((x) => x.key === c.key);
      if (known) known.after = c.to;
      else rec.changes.push({ key: c.key, before: c.from, after: c.to });
      writeTuneRecord(dataDir, rec);
    }
    writeSysctl(shell, c.key, c.to, target);
  }
}

/** Puts every recorded key back (last changed first) and removes the record. Returns what was restored. */
export function undoTune(shell: Shell, dataDir: string, target: SysctlTarget): { restored: Array<{ key: string; value: string }>; failed: string[] } {
  const rec = readTuneRecord(dataDir, target.netns);
  if (!rec) return { restored: [], failed: [] };
  const restored: Array<{ key: string; value: string }> = [];
  const failed: string[] = [];
  for (const c of [...rec.changes].reverse()) {
    try {
      writeSysctl(shell, c.key, c.before, target);
      restored.push({ key: c.key, value: c.before });
    } catch (err) {
      failed.push(`${c.key}=${c.before}: ${(err as Error).message}`);
    }
  }
  if (!shell.dryRun && failed.length === 0) rmSync(tuneRecordPath(dataDir, target.netns), { force: true });
  return { restored, failed };
}

