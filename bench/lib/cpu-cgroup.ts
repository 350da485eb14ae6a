// A CPU quota for a benchmark's processes through cgroups (root, Linux):
// a parent group /sys/fs/cgroup[/cpu]/<name> with one child per share, each
// capped at `cpus` of one core — cgroup v2 `cpu.max` where the cpu controller
// is on the unified hierarchy, else cgroup v1 `cpu.cfs_quota_us` (hybrid
// hosts mount cpu as v1). remove() moves any process still inside back to the
// root group and deletes the groups, so nothing is left behind.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PERIOD_US = 100_000;

export interface CpuGroup {
  name: string;
  dir: string;
  /** Moves these processes (every thread: cgroup.procs) into the group. */
  add(pids: number[]): void;
  /** CFS periods the group ran in, and those it ran out of quota in (cpu.stat). */
  throttled(): { periods: number; throttledPeriods: number };
}

export interface CpuGroups {
  version: 1 | 2;
  root: string;
  child(name: string, cpus: number): CpuGroup;
  remove(): void;
}

function detect(): { version: 1 | 2; mount: string } {
  const v2 = '/sys/fs/cgroup';
  try {
    if (readFileSync(join(v2, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('cpu')) return { version: 2, mount: v2 };
  } catch {
    // not a pure v2 host
  }
  if (existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us') || existsSync('/sys/fs/cgroup/cpu/cgroup.procs')) return { version: 1, mount: '/sys/fs/cgroup/cpu' };
  throw new Error('no cgroup cpu controller found (neither /sys/fs/cgroup/cgroup.controllers with cpu nor /sys/fs/cgroup/cpu)');
}

function statOf(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const line of readFileSync(join(dir, 'cpu.stat'), 'utf8').split('\n')) {
      const [k, v] = line.trim().split(/\s+/);
      if (k && v !== undefined) out[k] = Number(v);
    }
  } catch {
    // gone
  }
  return out;
}

/** Creates the parent group `name`; needs root. */
export function createCpuGroups(name: string): CpuGroups {
  if (process.getuid?.() !== 0) throw new Error('CPU quotas through cgroups need root');
  if (!/^[a-zA-Z0-9_.-]+$/.test(name)) throw new Error(`cgroup name "${name}" has characters other than [a-zA-Z0-9_.-]`);
  const { version, mount } = detect();
  const root = join(mount, name);
  mkdirSync(root);
  const children: string[] = [];
  if (version === 2) {
    // Children get the cpu controller only if every ancestor hands it down.
    try {
      const sub = readFileSync(join(mount, 'cgroup.subtree_control'), 'utf8');
      if (!sub.split(/\s+/).includes('cpu')) writeFileSync(join(mount, 'cgroup.subtree_control'), '+cpu');
      writeFileSync(join(root, 'cgroup.subtree_control'), '+cpu');
    } catch (err) {
      rmdirSync(root);
      throw new Error(`cannot enable the cpu controller for ${root}: ${(err as Error).message}`);
    }
  }
  return {
    version,
    root,
    child(childName, cpus) {
      if (!(cpus > 0 && cpus <= 64)) throw new Error(`CPU share ${cpus} is not in (0, 64]`);
      const dir = join(root, childName);
      mkdirSync(dir);
      children.push(dir);
      const quota = Math.round(cpus * PERIOD_US);
      if (version === 2) writeFileSync(join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`);
      else {
        writeFileSync(join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
        writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quota));
      }
      return {
        name: childName,
        dir,
        add(pids) {
          for (const pid of pids) {
            try {
              writeFileSync(join(dir, 'cgroup.procs'), String(pid));
            } catch (err) {
              // A helper that exited meanwhile is fine; the main pid must go in.
              if (pid === pids[0]) throw new Error(`cannot move pid ${pid} into ${dir}: ${(err as Error).message}`);
            }
          }
        },
        throttled() {
          const s = statOf(dir);
          return { periods: s.nr_periods ?? 0, throttledPeriods: s.nr_throttled ?? 0 };
        },
      };
    },
    remove() {
      for (const dir of [...children.reverse(), root]) {
        if (!existsSync(dir)) continue;
        // A process still inside keeps the group busy (EBUSY): hand it back to the root group first.
        let left: string[] = [];
        try {
          left = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
        } catch {
          // unreadable: rmdir will say
        }
        for (const pid of left.slice(0, 10_000)) {
          try {
            writeFileSync(join(mount, 'cgroup.procs'), pid);
          } catch {
            // exited meanwhile
          }
        }
        rmdirSync(dir);
      }
    },
  };
}
