// Pure planning: which backend realises each field of a profile, given what
// this kernel and this user can do, and the exact tc / nft / iptables / proxy
// settings. No I/O, so every decision is unit-tested and `auto` can say, per
// field, who did it and what could not be done.
import type { PartitionSpec, Profile } from './profile.ts';
import type { LaneFaults, ProxyFaults } from './proxy.ts';

export type Backend = 'tc' | 'nft' | 'iptables' | 'proxy';
export const BACKEND_CHOICES = ['auto', 'tc', 'nft', 'iptables', 'proxy'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface Capabilities {
  root: boolean;
  netns: boolean;
  netem: boolean;
  tbf: boolean;
  nft: boolean;
  iptables: boolean;
  /** An ifb device can be created (ingress shaping of a named --iface); unknown when absent. */
  ifb?: boolean;
  /** How each was found out (probe in a scratch namespace, or a guess in dry-run). */
  notes: string[];
}

export interface FieldReport {
  field: string;
  value: string;
  backend: Backend | null;
  note?: string;
}

export interface TcSpec {
  /** Arguments after `tc qdisc add dev X root handle 1:`. */
  args: string[];
}

export interface FilterPlan {
  tool: 'nft' | 'iptables';
  /** Per-packet drop probability in percent. */
  lossUp?: number;
  lossDown?: number;
  partition?: PartitionSpec;
  /** Only TCP to (up) and from (down) these ports, on the output hook: a role's port on a host interface such as lo. */
  ports?: number[];
}

export interface LinkPlan {
  report: FieldReport[];
  tcDown?: TcSpec;
  tcUp?: TcSpec;
  filter?: FilterPlan;
  proxy?: ProxyFaults;
  proxyPartition?: PartitionSpec;
}

export interface PlanInput {
  profile: Profile;
  caps: Capabilities;
  choice: BackendChoice;
  /** True when there is a link pushctl owns (a veth, or an --iface the user named): tc and filters are possible. */
  link: boolean;
  /** Filters scoped to a role's ports on a named host interface: no qdisc (it would shape everything on it). */
  ports?: number[];
}

const ms = (n: number) => `${+n.toFixed(3)}ms`;
const pct = (n: number) => `${+n.toFixed(4)}%`;

/** tbf burst: at least two full-size packets, and a 20 ms worth of tokens so a 250 Hz kernel timer keeps up. */
export function tbfBurst(bps: number): number {
  return Math.max(3_200, Math.ceil(bps / 8 / 50));
}

export function planLink({ profile: p, caps, choice, link, ports }: PlanInput): LinkPlan {
  const tcLink = link && !ports?.length;
  const report: FieldReport[] = [];
  const can = {
    netem: tcLink && caps.root && caps.netem && (choice === 'auto' || choice === 'tc'),
    tbf: tcLink && caps.root && caps.tbf && (choice === 'auto' || choice === 'tc'),
    nft: link && caps.root && caps.nft && (choice === 'auto' || choice === 'nft'),
    iptables: link && caps.root && caps.iptables && (choice === 'auto' || choice === 'iptables'),
    proxy: choice === 'auto' || choice === 'proxy',
  };
  const why = (kernelOnly: string) =>
    link && !tcLink && /netem|tbf|tc/.test(kernelOnly)
      ? `a role's port on a host interface gets filters only, never a qdisc: ${kernelOnly}`
      : !link
      ? `no link to shape (internal target; --iface lo puts loss and partitions on its port): ${kernelOnly}`
      : !caps.root
        ? `needs root: ${kernelOnly}`
        : choice !== 'auto'
          ? `--backend ${choice} cannot do it`
          : `this kernel cannot: ${kernelOnly}`;
  const netem: string[] = [];
  const netemUsed = { delay: false, rate: false };
  const proxy: ProxyFaults = {};
  const lane = (dir: 'up' | 'down'): LaneFaults => (proxy[dir] ??= {});

  // delay + jitter + distribution
  const hasDelay = p.delayMs.up !== undefined || p.delayMs.down !== undefined || p.jitterMs !== undefined;
  if (hasDelay) {
    const value = `↓${p.delayMs.down ?? 0}ms ↑${p.delayMs.up ?? 0}ms${p.jitterMs ? ` ±${p.jitterMs}ms ${p.distribution ?? 'uniform'}` : ''}`;
    if (can.netem) {
      netemUsed.delay = true;
      report.push({ field: 'delay', value, backend: 'tc', note: 'netem delay on each end of the veth' });
    } else if (can.proxy) {
      for (const dir of ['up', 'down'] as const) {
        const l = lane(dir);
        l.latencyMs = p.delayMs[dir] ?? 0;
        if (p.jitterMs) l.jitterMs = p.jitterMs;
        if (p.distribution) l.distribution = p.distribution;
      }
      report.push({
        field: 'delay',
        value,
        backend: 'proxy',
        note: link ? `${why('netem is missing')}; the proxy delays TCP through its ports only` : 'the proxy delays each direction',
      });
    } else report.push({ field: 'delay', value, backend: null, note: why('delay needs netem or the proxy') });
  }

  // bandwidth
  if (p.bandwidth.up !== undefined || p.bandwidth.down !== undefined) {
    const value = `↓${p.bandwidth.down ?? '-'} ↑${p.bandwidth.up ?? '-'} bit/s`;
    if (can.netem) {
      netemUsed.rate = true;
      report.push({ field: 'bandwidth', value, backend: 'tc', note: 'netem rate' });
    } else if (can.tbf) report.push({ field: 'bandwidth', value, backend: 'tc', note: 'tbf on each end of the veth' });
    else if (can.proxy) {
      for (const dir of ['up', 'down'] as const) if (p.bandwidth[dir] !== undefined) lane(dir).bandwidthBps = p.bandwidth[dir];
      report.push({ field: 'bandwidth', value, backend: 'proxy', note: link ? `${why('tc tbf')}; TCP through the proxy only` : undefined });
    } else report.push({ field: 'bandwidth', value, backend: null, note: why('bandwidth needs tc or the proxy') });
  }

  // loss (+ correlation)
  let filter: FilterPlan | undefined;
  const filterTool = can.nft ? 'nft' : can.iptables ? 'iptables' : undefined;
  if (p.loss) {
    const value = `${p.loss.percent}%${p.loss.correlation ? ` corr ${p.loss.correlation}%` : ''}`;
    if (can.netem) {
      netem.push('loss', 'random', pct(p.loss.percent), ...(p.loss.correlation ? [pct(p.loss.correlation)] : []));
      report.push({ field: 'loss', value, backend: 'tc', note: 'netem loss' });
    } else if (filterTool) {
      filter = { tool: filterTool, lossUp: p.loss.percent, lossDown: p.loss.percent };
      report.push({
        field: 'loss',
        value,
        backend: filterTool,
        note: `random drop each way${ports?.length ? ` (TCP to and from port ${ports.join(',')})` : ''}${p.loss.correlation ? '; correlation not realised (needs netem)' : ''}`,
      });
    } else
      report.push({ field: 'loss', value, backend: null, note: why('packet loss needs netem or nft/iptables (a TCP proxy cannot lose packets)') });
  }

  for (const [field, v, args] of [
    ['duplicate', p.duplicate, p.duplicate !== undefined ? ['duplicate', pct(p.duplicate)] : []],
    ['corrupt', p.corrupt, p.corrupt !== undefined ? ['corrupt', pct(p.corrupt)] : []],
    [
      'reorder',
      p.reorder?.percent,
      p.reorder
        ? ['reorder', pct(p.reorder.percent), ...(p.reorder.correlation ? [pct(p.reorder.correlation)] : []), ...(p.reorder.gap ? ['gap', String(p.reorder.gap)] : [])]
        : [],
    ],
  ] as const) {
    if (v === undefined) continue;
    if (can.netem && (field !== 'reorder' || netemUsed.delay)) {
      netem.push(...args);
      report.push({ field, value: `${v}%`, backend: 'tc', note: 'netem' });
    } else report.push({ field, value: `${v}%`, backend: null, note: why(`${field} needs netem`) });
  }

  // partitions
  let proxyPartition: PartitionSpec | undefined;
  if (p.partition) {
    const value = `${p.partition.mode}${p.partition.schedule ? ` up ${p.partition.schedule.upMs}ms / down ${p.partition.schedule.downMs}ms` : ''}`;
    if (filterTool) {
      filter ??= { tool: filterTool };
      filter.partition = p.partition;
      report.push({
        field: 'partition',
        value,
        backend: filterTool,
        note: `${p.partition.mode === 'reset' ? 'REJECT, tcp-reset for TCP' : 'DROP'}${ports?.length ? ` (TCP to and from port ${ports.join(',')}, open connections included)` : ''}`,
      });
    } else if (can.proxy) {
      proxyPartition = p.partition;
      report.push({ field: 'partition', value, backend: 'proxy', note: p.partition.mode === 'reset' ? 'connections reset, new ones refused' : 'forwarding stalls' });
    } else report.push({ field: 'partition', value, backend: null, note: why('partitions need nft/iptables or the proxy') });
  }

  if (p.slowReaderBps !== undefined) {
    if (can.proxy) {
      proxy.slowReaderBps = p.slowReaderBps;
      report.push({ field: 'slowReader', value: `${p.slowReaderBps} bit/s`, backend: 'proxy' });
    } else report.push({ field: 'slowReader', value: `${p.slowReaderBps} bit/s`, backend: null, note: 'only the proxy can read slowly' });
  }
  if (p.proxy) {
    for (const [k, v] of Object.entries(p.proxy)) {
      const value = typeof v === 'object' ? JSON.stringify(v) : `${v}ms`;
      if (!can.proxy) {
        report.push({ field: `proxy.${k}`, value, backend: null, note: 'a stream fault: only the proxy can do it' });
        continue;
      }
      if (k === 'slicer') lane('down').slicer = p.proxy.slicer!;
      else Object.assign(proxy, { [k]: v });
      report.push({ field: `proxy.${k}`, value, backend: 'proxy' });
    }
  }

  const plan: LinkPlan = { report };
  if (netemUsed.delay || netemUsed.rate || netem.length > 0) {
    for (const dir of ['down', 'up'] as const) {
      const args = ['netem'];
      const d = p.delayMs[dir] ?? 0;
      if (netemUsed.delay) {
        args.push('delay', ms(d));
        if (p.jitterMs) args.push(ms(p.jitterMs), ...(p.distribution && p.distribution !== 'uniform' ? ['distribution', p.distribution] : []));
      }
      args.push(...netem);
      if (netemUsed.rate && p.bandwidth[dir] !== undefined) args.push('rate', `${Math.round(p.bandwidth[dir]!)}bit`);
      plan[dir === 'down' ? 'tcDown' : 'tcUp'] = { args };
    }
  } else if (report.some((r) => r.field === 'bandwidth' && r.backend === 'tc')) {
    for (const dir of ['down', 'up'] as const) {
      const bps = p.bandwidth[dir];
      if (bps === undefined) continue;
      plan[dir === 'down' ? 'tcDown' : 'tcUp'] = { args: ['tbf', 'rate', `${Math.round(bps)}bit`, 'burst', String(tbfBurst(bps)), 'latency', '200ms'] };
    }
  }
  if (filter) {
    if (ports?.length) filter.ports = ports;
    plan.filter = filter;
  }
  if (Object.keys(proxy).length > 0) plan.proxy = proxy;
  if (proxyPartition) plan.proxyPartition = proxyPartition;
  return plan;
}

/** The nft ruleset for a link's filters, in a table of our own (deleting the table removes everything). */
export function nftScript(table: string, dev: string, f: FilterPlan, partitioned: boolean): string {
  if (f.ports?.length) return nftPortScript(table, dev, f, partitioned);
  const rules = (dir: 'oifname' | 'iifname', lossPct?: number) => {
    const out: string[] = [];
    if (partitioned && f.partition) {
      // The resets and ICMP errors the rejects send pass the egress chain too: let exactly those out.
      if (f.partition.mode === 'reset')
        out.push(
          ...(dir === 'oifname' ? [`${dir} "${dev}" tcp flags & rst == rst accept`, `${dir} "${dev}" icmp type destination-unreachable accept`] : []),
          `${dir} "${dev}" meta l4proto tcp reject with tcp reset`,
          `${dir} "${dev}" reject`,
        );
      else out.push(`${dir} "${dev}" drop`);
    }
    if (lossPct) out.push(`${dir} "${dev}" numgen random mod 10000 < ${Math.round(lossPct * 100)} drop`);
    return out.map((r) => `    ${r}\n`).join('');
  };
  return (
    `table inet ${table} {\n` +
    `  chain egress {\n    type filter hook output priority 0; policy accept;\n${rules('oifname', f.lossUp)}  }\n` +
    `  chain ingress {\n    type filter hook input priority 0; policy accept;\n${rules('iifname', f.lossDown)}  }\n` +
    `}\n`
  );
}

/** Port-scoped: everything on the output hook (on lo both directions pass it), up = to the ports, down = from them. */
function nftPortScript(table: string, dev: string, f: FilterPlan, partitioned: boolean): string {
  const set = `{ ${f.ports!.join(', ')} }`;
  const out: string[] = [];
  for (const [match, loss] of [
    [`tcp dport ${set}`, f.lossUp],
    [`tcp sport ${set}`, f.lossDown],
  ] as const) {
    if (partitioned && f.partition) {
      if (f.partition.mode === 'reset') out.push(`oifname "${dev}" ${match} tcp flags & rst == rst accept`, `oifname "${dev}" ${match} reject with tcp reset`);
      else out.push(`oifname "${dev}" ${match} drop`);
    }
    if (loss) out.push(`oifname "${dev}" ${match} numgen random mod 10000 < ${Math.round(loss * 100)} drop`);
  }
  return `table inet ${table} {\n  chain egress {\n    type filter hook output priority 0; policy accept;\n${out.map((r) => `    ${r}\n`).join('')}  }\n}\n`;
}

/** iptables rules (table filter) for a link's filters, in order, each as [chain, ...spec] so it can be deleted with -D. */
export function iptablesRules(dev: string, f: FilterPlan, partitioned: boolean, comment = 'mpchaos'): Array<{ chain: string; spec: string[] }> {
  const out: Array<{ chain: string; spec: string[] }> = [];
  if (f.ports?.length) {
    const tag = ['-m', 'comment', '--comment', comment];
    for (const [dirFlag, loss] of [
      ['--dports', f.lossUp],
      ['--sports', f.lossDown],
    ] as const) {
      const match = ['-o', dev, '-p', 'tcp', '-m', 'multiport', dirFlag, f.ports.join(',')];
      if (partitioned && f.partition) {
        if (f.partition.mode === 'reset') {
          out.push({ chain: 'OUTPUT', spec: [...match, '--tcp-flags', 'RST', 'RST', ...tag, '-j', 'ACCEPT'] });
          out.push({ chain: 'OUTPUT', spec: [...match, ...tag, '-j', 'REJECT', '--reject-with', 'tcp-reset'] });
        } else out.push({ chain: 'OUTPUT', spec: [...match, ...tag, '-j', 'DROP'] });
      }
      if (loss) out.push({ chain: 'OUTPUT', spec: [...match, '-m', 'statistic', '--mode', 'random', '--probability', String(loss / 100), ...tag, '-j', 'DROP'] });
    }
    return out;
  }
  for (const [chain, flag, loss] of [
    ['OUTPUT', '-o', f.lossUp],
    ['INPUT', '-i', f.lossDown],
  ] as const) {
    const tag = ['-m', 'comment', '--comment', comment];
    if (partitioned && f.partition) {
      if (f.partition.mode === 'reset') {
        if (chain === 'OUTPUT') {
          out.push({ chain, spec: [flag, dev, '-p', 'tcp', '--tcp-flags', 'RST', 'RST', ...tag, '-j', 'ACCEPT'] });
          out.push({ chain, spec: [flag, dev, '-p', 'icmp', '--icmp-type', 'destination-unreachable', ...tag, '-j', 'ACCEPT'] });
        }
        out.push({ chain, spec: [flag, dev, '-p', 'tcp', ...tag, '-j', 'REJECT', '--reject-with', 'tcp-reset'] });
        out.push({ chain, spec: [flag, dev, ...tag, '-j', 'REJECT'] });
      } else out.push({ chain, spec: [flag, dev, ...tag, '-j', 'DROP'] });
    }
    if (loss) out.push({ chain, spec: [flag, dev, '-m', 'statistic', '--mode', 'random', '--probability', String(loss / 100), ...tag, '-j', 'DROP'] });
  }
  return out;
}
