// How many gateways and servers `pushctl up` starts when not told: each role
// is one single-threaded Node process, so counts follow the CPUs this
// process may really use — the cgroup's CPU quota (containers, systemd
// slices) when it is lower than the CPUs the kernel lists.
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';

export interface CpuBudget {
  cpus: number;
  /** Where the number came from, for the printed plan. */
  source: string;
}

/** cgroup v2 `cpu.max` ("max 100000" or "200000 100000") → CPUs, or undefined when unlimited/unreadable. */
export function cpusFromCgroupMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  if (!quota || quota === 'max') return undefined;
  const q = Number(quota);
  const p = Number(period ?? 100_000);
  if (!(q > 0) || !(p > 0)) return undefined;
  return q / p;
}

export function cpuBudget(readCgroup: () => string | undefined = () => {
  try {
    return readFileSync('/sys/fs/cgroup/cpu.max', 'utf8');
  } catch {
    return undefined;
  }
}, listed = availableParallelism()): CpuBudget {
  const raw = readCgroup();
  const quota = raw === undefined ? undefined : cpusFromCgroupMax(raw);
  if (quota !== undefined && quota < listed) return { cpus: Math.max(1, Math.floor(quota)), source: `cgroup quota ${quota.toFixed(2)} of ${listed} CPUs` };
  return { cpus: listed, source: `${listed} CPUs` };
}

/**
 * Defaults: gateways carry nearly all the CPU (client writes), servers little
 * (one fan-out per gateway stream), so about one gateway per two CPUs and one
 * server per four; never fewer than two of each, so a kill or drain always
 * has somewhere to go.
 */
export function defaultRoleCounts(cpus: number): { gateways: number; servers: number } {
  return { gateways: Math.min(16, Math.max(2, Math.ceil(cpus / 2))), servers: Math.min(8, Math.max(2, Math.ceil(cpus / 4))) };
}
