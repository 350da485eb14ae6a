// `pushctl doctor`: what a gateway host needs, read from this machine, each
// finding OK or WARN with the fix. Facts are gathered once (readHostFacts);
// the judgement (hostChecks) is pure, so it is tested on made-up hosts too.
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, release } from 'node:os';
import { cpusFromCgroupMax } from './cpu-budget.ts';
import { runQuiet } from './chaos/shell.ts';
import { readSysctl } from './host-sysctl.ts';
import { readFdLimit } from '../../system/common/fd-limit.ts';

export interface HostFacts {
  /** This process's open-file limit: a role started the same way gets the same hard limit and raises its soft one to it. */
  nofile?: { soft: number; hard: number };
  nrOpen?: number;
  fileMax?: number;
  somaxconn?: number;
  synBacklog?: number;
  portRange?: [number, number];
  reservedPorts: string;
  twReuse?: number;
  congestion?: string;
  availableCongestion: string[];
  /** tcp_bbr is built in or its module file is there (the kernel loads it when asked for bbr). */
  bbrLoadable: boolean;
  defaultQdisc?: string;
  netem: { ok: boolean; detail: string };
  cpu: { listed: number; quota?: number };
}

export interface DoctorTarget {
  /** Client connections one host should hold. */
  connections: number;
  /** The port plan's first port and span (cli/lib/port-plan.ts). */
  portBase: number;
  portSpan: number;
}

export type CheckStatus = 'ok' | 'warn';

export interface Check {
  id: string;
  title: string;
  status: CheckStatus;
  /** What was found. */
  detail: string;
  /** How to fix it (WARN only): commands or settings. */
  fix?: string;
}

/** Headroom over the client connections: listeners, NATS/gRPC streams, log files, REST sockets. */
export const FD_HEADROOM = 1024;
export const MIN_SOMAXCONN = 4096;
export const MIN_SYN_BACKLOG = 4096;
/** Below this, a load host runs out of ports towards one gateway address. */
export const MIN_EPHEMERAL_PORTS = 28_000;

/** "7100-8199,9000" → ranges. */
export function parsePortList(text: string): Array<[number, number]> {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const [a, b] = s.split('-').map(Number);
      return [a!, b ?? a!] as [number, number];
    });
}

export const covers = (ranges: Array<[number, number]>, lo: number, hi: number) => {
  for (let p = lo; p <= hi; p++) if (!ranges.some(([a, b]) => p >= a && p <= b)) return false;
  return true;
};

const fmtLimit = (n: number) => (n === Infinity ? 'unlimited' : String(n));

export function hostChecks(f: HostFacts, t: DoctorTarget): Check[] {
  const out: Check[] = [];
  const need = t.connections + FD_HEADROOM;

  // Open files: roles raise their soft limit to the hard one at start, so the hard limit is what counts.
  if (!f.nofile) {
    out.push({ id: 'nofile', title: 'open-file limit', status: 'warn', detail: 'cannot read /proc/self/limits', fix: 'run pushctl doctor on the Linux host the gateways run on' });
  } else {
    const ok = f.nofile.hard >= need && (f.nrOpen === undefined || f.nrOpen >= need);
    const detail = `hard ${fmtLimit(f.nofile.hard)} (soft ${fmtLimit(f.nofile.soft)}; every role raises its soft limit to the hard one at start) for ${t.connections} connections + ${FD_HEADROOM} headroom = ${need}${f.nrOpen !== undefined ? `; fs.nr_open ${f.nrOpen}` : ''}`;
    out.push({
      id: 'nofile',
      title: 'open-file limit',
      status: ok ? 'ok' : 'warn',
      detail,
      ...(ok
        ? {}
        : {
            fix:
              (f.nrOpen !== undefined && f.nrOpen < need ? `sysctl -w fs.nr_open=${need} (pushctl tune); then ` : '') +
              `raise the hard limit of the shell or service that starts pushctl to ≥ ${need}: \`ulimit -Hn ${need}\` as root, systemd LimitNOFILE=${need}, ` +
              `/etc/security/limits.conf "* hard nofile ${need}", docker --ulimit nofile=${need}:${need} (Kubernetes inherits the container runtime's)`,
          }),
    });
  }
  if (f.fileMax !== undefined && f.fileMax < need)
    out.push({ id: 'file-max', title: 'system-wide open files', status: 'warn', detail: `fs.file-max ${f.fileMax} < ${need}`, fix: `sysctl -w fs.file-max=${need * 2} (pushctl tune)` });

  const backlogOk = (f.somaxconn ?? 0) >= MIN_SOMAXCONN && (f.synBacklog ?? 0) >= MIN_SYN_BACKLOG;
  out.push({
    id: 'somaxconn',
    title: 'accept backlog',
    status: backlogOk ? 'ok' : 'warn',
    detail: `net.core.somaxconn ${f.somaxconn ?? '?'}, net.ipv4.tcp_max_syn_backlog ${f.synBacklog ?? '?'} (want ≥ ${MIN_SOMAXCONN}: a reconnect storm queues there; the kernel caps every listen backlog at somaxconn)`,
    ...(backlogOk ? {} : { fix: `sysctl -w net.core.somaxconn=${MIN_SOMAXCONN} net.ipv4.tcp_max_syn_backlog=${MIN_SYN_BACKLOG * 2} (pushctl tune)` }),
  });

  // Ephemeral ports: outgoing connections (roles to NATS and servers here, load agents elsewhere) take them;
  // one taken from the port plan's range makes a role's listen fail with EADDRINUSE.
  const planLo = t.portBase;
  const planHi = t.portBase + t.portSpan - 1;
  if (!f.portRange) {
    out.push({ id: 'ephemeral-ports', title: 'ephemeral port range', status: 'warn', detail: 'cannot read net.ipv4.ip_local_port_range' });
  } else {
    const [lo, hi] = f.portRange;
    const size = hi - lo + 1;
    const overlapLo = Math.max(lo, planLo);
    const overlapHi = Math.min(hi, planHi);
    const overlaps = overlapLo <= overlapHi;
    const reserved = covers(parsePortList(f.reservedPorts), overlapLo, overlapHi);
    const problems: string[] = [];
    const fixes: string[] = [];
    if (overlaps && !reserved) {
      problems.push(`overlaps the port plan ${planLo}-${planHi} at ${overlapLo}-${overlapHi}`);
      fixes.push(`sysctl -w net.ipv4.ip_local_reserved_ports=${[f.reservedPorts, `${planLo}-${planHi}`].filter(Boolean).join(',')} (pushctl tune), or another --port-base`);
    }
    if (size < MIN_EPHEMERAL_PORTS) {
      problems.push(`only ${size} ports (want ≥ ${MIN_EPHEMERAL_PORTS} for load agents)`);
      fixes.push('sysctl -w net.ipv4.ip_local_port_range="10000 65535" (with the port plan reserved as above)');
    }
    out.push({
      id: 'ephemeral-ports',
      title: 'ephemeral port range',
      status: problems.length ? 'warn' : 'ok',
      detail: `${lo}-${hi} (${size} ports); port plan ${planLo}-${planHi} ${overlaps ? (reserved ? 'inside it but reserved' : 'inside it') : 'outside it'}${problems.length ? `: ${problems.join('; ')}` : ''}`,
      ...(fixes.length ? { fix: fixes.join('; ') } : {}),
    });
  }

  const tw = f.twReuse;
  out.push({
    id: 'tw-reuse',
    title: 'TIME-WAIT reuse',
    status: tw === 1 ? 'ok' : 'warn',
    detail: `net.ipv4.tcp_tw_reuse ${tw ?? '?'}${tw === 2 ? ' (loopback only)' : ''}: reconnect storms and load agents re-open connections to the same address`,
    ...(tw === 1 ? {} : { fix: 'sysctl -w net.ipv4.tcp_tw_reuse=1 (pushctl tune)' }),
  });

  const bbrOn = f.congestion === 'bbr';
  const bbrThere = f.availableCongestion.includes('bbr') || f.bbrLoadable;
  out.push({
    id: 'congestion',
    title: 'congestion control',
    status: bbrOn ? 'ok' : 'warn',
    detail: `${f.congestion ?? '?'} in use; available: ${f.availableCongestion.join(' ') || '?'}; BBR ${bbrThere ? 'available' : 'not in this kernel'}; default qdisc ${f.defaultQdisc ?? '?'}` +
      (bbrOn && f.defaultQdisc !== 'fq' ? ' (BBR paces by itself since Linux 4.13; fq is still the usual pairing)' : ''),
    ...(bbrOn
      ? {}
      : {
          fix: bbrThere
            ? 'sysctl -w net.core.default_qdisc=fq net.ipv4.tcp_congestion_control=bbr (pushctl tune): BBR keeps lossy mobile links fuller than cubic'
            : 'a kernel with CONFIG_TCP_CONG_BBR (modprobe tcp_bbr); until then cubic stays',
        }),
  });

  out.push({
    id: 'netem',
    title: 'netem (pushctl chaos)',
    status: f.netem.ok ? 'ok' : 'warn',
    detail: f.netem.detail,
    ...(f.netem.ok ? {} : { fix: 'as root: `modprobe sch_netem` (a kernel built with CONFIG_NET_SCH_NETEM; Debian\'s stock kernel has it); without it `pushctl chaos` realises delay and jitter with its userspace proxy (docs/chaos.md)' }),
  });

  const { listed, quota } = f.cpu;
  const cpus = quota !== undefined && quota < listed ? quota : listed;
  out.push({
    id: 'cpu-quota',
    title: 'CPU (cgroup quota)',
    status: cpus >= 1 ? 'ok' : 'warn',
    detail:
      quota === undefined
        ? `no cgroup CPU quota; ${listed} CPUs listed (pushctl up sizes gateways and servers from them)`
        : `cgroup quota ${quota.toFixed(2)} CPUs of ${listed} listed: pushctl up sizes gateways and servers from the quota`,
    ...(cpus >= 1 ? {} : { fix: 'give the container or slice at least one CPU (a gateway under load uses about one core: docs/bench.md)' }),
  });
  return out;
}

const num = (s: string | undefined) => (s === undefined || s === '' || Number.isNaN(Number(s)) ? undefined : Number(s));

/** Tries a netem qdisc on a veth inside a throwaway network namespace, and removes the namespace. */
export function probeNetem(): { ok: boolean; detail: string } {
  if (process.getuid?.() !== 0) return { ok: false, detail: 'not checked: needs root (CAP_NET_ADMIN)' };
  const ns = `mpdoctor-${process.pid}`;
  try {
    runQuiet(['ip', 'netns', 'add', ns]);
  } catch (err) {
    return { ok: false, detail: `cannot create a network namespace to test in: ${(err as Error).message}` };
  }
  try {
    // A veth pair, as pushctl chaos uses (some kernels lack the dummy device type).
    runQuiet(['ip', '-n', ns, 'link', 'add', 'mpd0', 'type', 'veth', 'peer', 'name', 'mpd1']);
    runQuiet(['ip', '-n', ns, 'link', 'set', 'mpd0', 'up']);
    runQuiet(['tc', '-n', ns, 'qdisc', 'add', 'dev', 'mpd0', 'root', 'netem', 'delay', '1ms', 'loss', '1%']);
    return { ok: true, detail: 'a netem qdisc (delay, loss) was added to a veth in a throwaway namespace, and removed with it' };
  } catch (err) {
    return { ok: false, detail: `tc qdisc add … netem failed: ${(err as Error).message}` };
  } finally {
    // Deleting the namespace takes its device and qdisc with it.
    runQuiet(['ip', 'netns', 'del', ns], { tolerate: true });
  }
}

function bbrLoadable(): boolean {
  const dir = `/lib/modules/${release()}`;
  try {
    if (readFileSync(`${dir}/modules.builtin`, 'utf8').includes('tcp_bbr.ko')) return true;
  } catch {
    // no module tree (a container, a custom kernel)
  }
  return ['', '.xz', '.zst', '.gz'].some((ext) => existsSync(`${dir}/kernel/net/ipv4/tcp_bbr.ko${ext}`));
}

export function readHostFacts(o: { netem?: boolean } = {}): HostFacts {
  let quota: number | undefined;
  try {
    quota = cpusFromCgroupMax(readFileSync('/sys/fs/cgroup/cpu.max', 'utf8'));
  } catch {
    quota = undefined;
  }
  const range = readSysctl('net.ipv4.ip_local_port_range')?.split(' ').map(Number);
  const lim = readFdLimit();
  return {
    ...(lim ? { nofile: lim } : {}),
    ...(num(readSysctl('fs.nr_open')) !== undefined ? { nrOpen: num(readSysctl('fs.nr_open'))! } : {}),
    ...(num(readSysctl('fs.file-max')) !== undefined ? { fileMax: num(readSysctl('fs.file-max'))! } : {}),
    ...(num(readSysctl('net.core.somaxconn')) !== undefined ? { somaxconn: num(readSysctl('net.core.somaxconn'))! } : {}),
    ...(num(readSysctl('net.ipv4.tcp_max_syn_backlog')) !== undefined ? { synBacklog: num(readSysctl('net.ipv4.tcp_max_syn_backlog'))! } : {}),
    ...(range && range.length === 2 ? { portRange: [range[0]!, range[1]!] as [number, number] } : {}),
    reservedPorts: readSysctl('net.ipv4.ip_local_reserved_ports') ?? '',
    ...(num(readSysctl('net.ipv4.tcp_tw_reuse')) !== undefined ? { twReuse: num(readSysctl('net.ipv4.tcp_tw_reuse'))! } : {}),
    ...(readSysctl('net.ipv4.tcp_congestion_control') ? { congestion: readSysctl('net.ipv4.tcp_congestion_control')! } : {}),
    availableCongestion: (readSysctl('net.ipv4.tcp_available_congestion_control') ?? '').split(' ').filter(Boolean),
    bbrLoadable: bbrLoadable(),
    ...(readSysctl('net.core.default_qdisc') ? { defaultQdisc: readSysctl('net.core.default_qdisc')! } : {}),
    netem: o.netem === false ? { ok: false, detail: 'not checked (--no-netem)' } : probeNetem(),
    cpu: { listed: availableParallelism(), ...(quota !== undefined ? { quota } : {}) },
  };
}
