// Liveness checks and group-wide stops for the processes `up` starts. Each
// process leads its own process group, so signalling -pgid reaches anything
// it may have started too.
import { readFileSync } from 'node:fs';

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), to tell a reused pid apart. Linux only. */
export function processStartTime(pid: number): number | undefined {
  const stat = procStat(pid);
  return stat ? Number(stat[19]) : undefined;
}

/** Fields after "(comm)" of /proc/<pid>/stat: [0] is the state letter. */
function procStat(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return raw.slice(raw.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * True while `pid` runs. A zombie counts as gone (it holds no ports and no
 * memory; its parent just has not reaped it), and so does a pid that now
 * belongs to a process started later than the one we recorded.
 */
export function isAlive(pid: number, startTime?: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStat(pid);
  if (!stat) return process.platform !== 'linux';
  if (stat[0] === 'Z' || stat[0] === 'X') return false;
  if (startTime !== undefined && Number(stat[19]) !== startTime) return false;
  return true;
}

function signalGroup(pgid: number, pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface StoppableProcess {
  id: string;
  pid: number;
  pgid: number;
  startTime?: number;
}

/** SIGTERM the group, wait up to `graceMs`, then SIGKILL it. Resolves true once the process is gone. */
export async function stopProcess(p: StoppableProcess, graceMs = 5_000): Promise<boolean> {
  if (!isAlive(p.pid, p.startTime)) return true;
  signalGroup(p.pgid, p.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(p.pid, p.startTime)) break;
    await sleep(50);
  }
  if (isAlive(p.pid, p.startTime)) {
    signalGroup(p.pgid, p.pid, 'SIGKILL');
    const killDeadline = Date.now() + 2_000;
    while (Date.now() < killDeadline && isAlive(p.pid, p.startTime)) await sleep(50);
  } else {
    // The leader is gone; anything it left in its group goes too.
    try {
      process.kill(-p.pgid, 'SIGKILL');
    } catch {
      // empty group: nothing left
    }
  }
  return !isAlive(p.pid, p.startTime);
}

/**
 * Stops processes in the reverse of their start order, one tier at a time
 * (processes of a tier in parallel). Returns the ids still alive afterwards.
 */
export async function stopInReverse<T extends StoppableProcess & { tier: number }>(
  procs: T[],
  opts: { graceMs?: number; onStopped?: (p: T, gone: boolean) => void } = {},
): Promise<string[]> {
  const tiers = [...new Set(procs.map((p) => p.tier))].sort((a, b) => b - a);
  const survivors: string[] = [];
  for (const tier of tiers) {
    const group = procs.filter((p) => p.tier === tier).reverse();
    const results = await Promise.all(group.map((p) => stopProcess(p, opts.graceMs)));
    group.forEach((p, i) => {
      opts.onStopped?.(p, results[i]!);
      if (!results[i]) survivors.push(p.id);
    });
  }
  return survivors;
}
