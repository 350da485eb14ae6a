// How busy the whole machine was over a window, from /proc/stat (Linux): in
// cores (2.0 = both of a 2-core machine). Set against the CPU of the
// processes a bench started, it shows when others' work shared the machine.
import { readFileSync } from 'node:fs';

function sample(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    // cpu user nice system idle iowait irq softirq steal …; idle and iowait are not busy.
    const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - f[3]! - f[4]!, total };
  } catch {
    return undefined;
  }
}

/** end(): the machine's busy CPU over the window in cores, or null where /proc/stat is unreadable. */
export function hostCpuWindow(cpus: number): { end(): number | null } {
  const a = sample();
  return {
    end() {
      const b = sample();
      if (!a || !b || b.total <= a.total) return null;
      return Math.round(((b.busy - a.busy) / (b.total - a.total)) * cpus * 100) / 100;
    },
  };
}
