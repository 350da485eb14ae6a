// Reading and writing kernel settings (sysctl keys) on the host or inside a
// network namespace. Writes go through the chaos Shell, so --dry-run prints
// exactly the commands it would run. Only net.* keys that the kernel keeps per
// network namespace can be changed in one (tune's test relies on that to never
// touch the host).
import { readFileSync } from 'node:fs';
import { runQuiet, type Shell } from './chaos/shell.ts';

/** Keys the kernel keeps per network namespace (writing them in a netns leaves the host as it is). */
export const PER_NETNS_KEYS = new Set([
  'net.core.somaxconn',
  'net.ipv4.tcp_max_syn_backlog',
  'net.ipv4.tcp_tw_reuse',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_congestion_control',
  'net.ipv4.tcp_fin_timeout',
]);

export interface SysctlTarget {
  /** Absent: the host. */
  netns?: string;
}

const procPath = (key: string) => `/proc/sys/${key.replace(/\./g, '/')}`;

/** The value of a key (whitespace-normalised: "32768 60999"), or undefined when the kernel has no such key. */
export function readSysctl(key: string, target: SysctlTarget = {}): string | undefined {
  try {
    const raw = target.netns
      ? runQuiet(['ip', 'netns', 'exec', target.netns, 'cat', procPath(key)])
      : readFileSync(procPath(key), 'utf8');
    return raw.trim().split(/\s+/).join(' ');
  } catch {
    return undefined;
  }
}

/** The command that sets a key (printed in dry runs and as a fix). */
export function sysctlCommand(key: string, value: string, target: SysctlTarget = {}): string[] {
  const set = ['sysctl', '-w', `${key}=${value}`];
  return target.netns ? ['ip', 'netns', 'exec', target.netns, ...set] : set;
}

export function writeSysctl(shell: Shell, key: string, value: string, target: SysctlTarget = {}): void {
  if (target.netns && !PER_NETNS_KEYS.has(key)) throw new Error(`${key} is host-wide: it cannot be set inside network namespace ${target.netns}`);
  shell.run(sysctlCommand(key, value, target));
}
