// CPU used by processes over a window, from /proc/<pid>/stat (Linux): the
// same measure for nats-server, the roles, the raw server and the load
// clients. Elsewhere it reports nothing rather than guessing.
import { readFileSync } from 'node:fs';
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

/** Start a window over named processes; end() gives each one's CPU share (1.0 = one core). */
export function cpuWindow(procs: Record<string, number>): { end(): Record<string, number | null> } {
  const t0 = performance.now();
  const start = Object.fromEntries(Object.entries(procs).map(([name, pid]) => [name, cpuSeconds(pid)]));
  return {
    end() {
      const secs = (performance.now() - t0) / 1000;
      const out: Record<string, number | null> = {};
      for (const [name, pid] of Object.entries(procs)) {
        const a = start[name];
        const b = cpuSeconds(pid);
        out[name] = a === undefined || b === undefined || secs <= 0 ? null : Math.round(((b - a) / secs) * 100) / 100;
      }
      return out;
    },
  };
}
