// CPU used by processes over a window, from /proc/<pid>/stat (Linux): the
// same measure for nats-server, the roles, the raw server and the load
// clients; and write syscalls (/proc/<pid>/io syscw), which set against
// delivered messages tell how well a sender coalesces its socket writes.
// Elsewhere it reports nothing rather than guessing.
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let clkTck = 0;
function ticksPerSecond(): number {
  if (clkTck) return clkTck;
  try {
    clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2_000 }).trim()) || 100;
  } catch {
    clkTck = 100;
  }
  return clkTck;
}

/** Seconds of CPU (user + system) a process has used, or undefined when unknown. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name, which may contain spaces.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** A process and its descendants (a launcher may wrap the real binary in a shell). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  try {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        const list = children.get(ppid) ?? [];
        list.push(Number(d));
        children.set(ppid, list);
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    return [root];
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length && out.length < 1_000) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** Write syscalls a process has made (write, writev, sendmsg…), or undefined when unknown. */
export function writeSyscalls(pid: number): number | undefined {
  try {
    const m = /^syscw:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function treeSample(root: number, read: (pid: number) => number | undefined): Map<number, number> | undefined {
  if (read(root) === undefined) return undefined;
  const m = new Map<number, number>();
  for (const pid of processTree(root)) {
    const c = read(pid);
    if (c !== undefined) m.set(pid, c);
  }
  return m;
}

function delta(a: Map<number, number> | undefined, b: Map<number, number> | undefined): number | undefined {
  if (!a || !b) return undefined;
  let used = 0;
  for (const [p, c] of b) used += c - (a.get(p) ?? 0);
  return used;
}

/** Write syscalls per second of each named process (with descendants) over a window. */
export function writesWindow(procs: Record<string, number>): { end(): Record<string, number | null> } {
  const t0 = performance.now();
  const start = Object.fromEntries(Object.entries(procs).map(([name, pid]) => [name, treeSample(pid, writeSyscalls)]));
  return {
    end() {
      const secs = (performance.now() - t0) / 1000;
      const out: Record<string, number | null> = {};
      for (const [name, pid] of Object.entries(procs)) {
        const d = delta(start[name], treeSample(pid, writeSyscalls));
        out[name] = d === undefined || secs <= 0 ? null : Math.round(d / secs);
      }
      return out;
    },
  };
}

/** Start a window over named processes (each with its descendants); end() gives each one's CPU share (1.0 = one core), to `digits` decimals. */
export function cpuWindow(procs: Record<string, number>, digits = 2): { end(): Record<string, number | null> } {
  const scale = 10 ** digits;
  const t0 = performance.now();
  const start = Object.fromEntries(Object.entries(procs).map(([name, pid]) => [name, treeSample(pid, cpuSeconds)]));
  return {
    end() {
      const secs = (performance.now() - t0) / 1000;
      const out: Record<string, number | null> = {};
      for (const [name, pid] of Object.entries(procs)) {
        const d = delta(start[name], treeSample(pid, cpuSeconds));
        out[name] = d === undefined || secs <= 0 ? null : Math.round((d / secs) * scale) / scale;
      }
      return out;
    },
  };
}
