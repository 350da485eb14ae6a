// The kernel side of chaos: probing what this kernel supports, building a
// namespace + veth link, putting qdiscs and filter rules on it, and undoing
// recorded resources. Every resource is recorded (through `record`) before the
// command that creates it runs, so a crash between the two still leaves it on
// the list to undo.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { isAlive, stopProcess } from '../processes.ts';
import { iptablesRules, nftScript, type Capabilities, type FilterPlan, type LinkPlan, type TcSpec } from './plan.ts';
import { runQuiet, commandExists, type Shell } from './shell.ts';
import { PREFIX, type ChaosResource } from './state.ts';

const inNs = (netns: string | undefined, argv: string[]) => (netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv);

/** What this machine can do. Probes in a scratch namespace (created and deleted here) when root; guesses in dry-run. */
export function detectCapabilities(opts: { dryRun?: boolean } = {}): Capabilities {
  const root = process.getuid?.() === 0;
  const has = { ip: commandExists('ip'), tc: commandExists('tc'), nft: commandExists('nft'), iptables: commandExists('iptables') };
  const caps: Capabilities = { root, netns: false, netem: false, tbf: false, nft: false, iptables: false, notes: [] };
  if (!root) {
    caps.notes.push('not root: only the proxy backend remains (no namespaces, tc, nft or iptables)');
    return caps;
  }
  if (!has.ip) {
    caps.notes.push('no `ip` (iproute2): no namespaces');
    return caps;
  }
  if (opts.dryRun) {
    // No scratch namespace in dry-run: nothing may change. Assume what the tools are there for.
    caps.netns = existsSync('/proc/self/ns/net');
    caps.tbf = has.tc;
    caps.netem = has.tc && existsSync('/sys/module/sch_netem');
    caps.nft = has.nft;
    caps.iptables = has.iptables;
    caps.ifb = true;
    caps.notes.push('dry-run: capabilities guessed without probing (netem assumed only when sch_netem is loaded)');
    return caps;
  }
  const probe = `${PREFIX}-probe-${process.pid}`;
  try {
    runQuiet(['ip', 'netns', 'add', probe]);
  } catch (err) {
    caps.notes.push(`cannot create a network namespace: ${(err as Error).message}`);
    return caps;
  }
  try {
    caps.netns = true;
    runQuiet(['ip', '-n', probe, 'link', 'set', 'lo', 'up'], { tolerate: true });
    const tryQdisc = (args: string[]) => {
      try {
        runQuiet(['tc', '-n', probe, 'qdisc', 'replace', 'dev', 'lo', 'root', ...args]);
        return true;
      } catch {
        return false;
      }
    };
    if (has.tc) {
      caps.netem = tryQdisc(['netem', 'delay', '1ms']);
      caps.tbf = tryQdisc(['tbf', 'rate', '1mbit', 'burst', '4k', 'latency', '50ms']);
    }
    caps.ifb = createIfb(probe, `${PREFIX}ifb`) === undefined;
    if (!caps.ifb) caps.notes.push('no ifb device in this kernel: a named --iface gets its egress shaped only');
    if (!caps.netem) caps.notes.push('no netem in this kernel: delay and jitter come from the proxy; duplicate, corrupt, reorder and loss correlation cannot be realised');
    if (has.nft) {
      try {
        runQuiet(inNs(probe, ['nft', '-f', '-']), { input: `table inet ${PREFIX}_probe {\n chain c { type filter hook output priority 0; numgen random mod 100 < 1 drop; }\n}\n` });
        caps.nft = true;
      } catch (err) {
        caps.notes.push(`nft unusable: ${(err as Error).message}`);
      }
    } else caps.notes.push('no `nft` (Debian package nftables)');
    if (has.iptables) {
      try {
        runQuiet(inNs(probe, ['iptables', '-A', 'OUTPUT', '-m', 'statistic', '--mode', 'random', '--probability', '0.01', '-j', 'DROP']));
        caps.iptables = true;
      } catch (err) {
        caps.notes.push(`iptables unusable: ${(err as Error).message}`);
      }
    } else caps.notes.push('no `iptables` (Debian package iptables)');
  } finally {
    runQuiet(['ip', 'netns', 'del', probe], { tolerate: true });
  }
  return caps;
}

/**
 * Creates an ifb device (in `netns` when given); returns why not when this kernel cannot. ifb as a module that is
 * not loaded is loaded with numifbs=0 first: the kernel's autoload would create ifb0 and ifb1 in the host namespace.
 */
function createIfb(netns: string | undefined, name: string, run: (argv: string[]) => void = (a) => runQuiet(a)): string | undefined {
  let loaded = '';
  try {
    loaded = readFileSync('/proc/modules', 'utf8');
  } catch {
    // no modules at all: ifb is built in or missing
  }
  if (!/^ifb /m.test(loaded)) {
    try {
      run(['modprobe', 'ifb', 'numifbs=0']);
    } catch {
      // built in (nothing to load) or absent: the link add below says which
    }
  }
  try {
    run(['ip', ...(netns ? ['-n', netns] : []), 'link', 'add', 'name', name, 'type', 'ifb']);
    return undefined;
  } catch (err) {
    return (err as Error).message.split('\n')[0]!;
  }
}

/**
 * A host interface's ingress, shaped: an ifb device gets the `up` qdisc on its egress, and every packet arriving on
 * `dev` is redirected to it (ingress qdisc ffff: + a match-all u32 filter with mirred; cls_matchall is often not
 * built). Returns why it could not be done (no ifb in this kernel), after which nothing of it is left.
 */
export function applyIngressQdisc(sh: Shell, dev: string, ifb: string, spec: TcSpec, record: (r: ChaosResource) => void): string | undefined {
  // Someone else's ingress qdisc is not ours to replace, nor to delete on undo.
  if (!sh.dryRun && /qdisc ingress ffff:/.test(runQuiet(['tc', 'qdisc', 'show', 'dev', dev, 'ingress'], { tolerate: true })))
    throw new Error(`${dev} already has an ingress qdisc; pushctl does not replace it (remove it first, or leave ${dev}'s ingress unshaped)`);
  record({ kind: 'ifb', name: ifb });
  const why = createIfb(undefined, ifb, (argv) => sh.run(argv));
  if (why) return why;
  sh.run(['ip', 'link', 'set', ifb, 'up']);
  sh.run(['tc', 'qdisc', 'replace', 'dev', ifb, 'root', 'handle', '1:', ...spec.args]);
  record({ kind: 'qdisc', dev, ingress: true });
  sh.run(['tc', 'qdisc', 'add', 'dev', dev, 'handle', 'ffff:', 'ingress']);
  sh.run(['tc', 'filter', 'add', 'dev', dev, 'parent', 'ffff:', 'protocol', 'all', 'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', ifb]);
  return undefined;
}

/** Scratch namespaces of probes whose process died before deleting them. */
export function staleProbeNamespaces(): string[] {
  return listNetns().filter((n) => {
    const m = new RegExp(`^${PREFIX}-probe-(\\d+)$`).exec(n);
    return m !== null && !isAlive(Number(m[1]));
  });
}

export function listNetns(): string[] {
  return runQuiet(['ip', 'netns', 'list'], { tolerate: true })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
}

export interface VethLink {
  netns: string;
  hostDev: string;
  peerDev: string;
  hostAddr: string;
  peerAddr: string;
}

/** 10.200.N.0/30 for the first N not used on the host or by another session. */
export function pickSubnet(usedBySessions: string[]): number {
  const hostAddrs = runQuiet(['ip', '-o', '-4', 'addr', 'show'], { tolerate: true });
  for (let n = 1; n < 255; n++) {
    if (hostAddrs.includes(` 10.200.${n}.`) || usedBySessions.some((a) => a.startsWith(`10.200.${n}.`))) continue;
    return n;
  }
  throw new Error('no free 10.200.N.0/30 subnet for a chaos link');
}

/** A namespace joined to the host by a veth pair, both ends up, no default route (it reaches only the host end). */
export function createLink(sh: Shell, id: string, subnet: number, record: (r: ChaosResource) => void): VethLink {
  const link: VethLink = {
    netns: `${PREFIX}-${id}`,
    hostDev: `mpc${id}h`,
    peerDev: `mpc${id}n`,
    hostAddr: `10.200.${subnet}.1`,
    peerAddr: `10.200.${subnet}.2`,
  };
  record({ kind: 'netns', name: link.netns });
  sh.run(['ip', 'netns', 'add', link.netns]);
  record({ kind: 'veth', name: link.hostDev });
  sh.run(['ip', 'link', 'add', link.hostDev, 'type', 'veth', 'peer', 'name', link.peerDev, 'netns', link.netns]);
  sh.run(['ip', 'addr', 'add', `${link.hostAddr}/30`, 'dev', link.hostDev]);
  sh.run(['ip', 'link', 'set', link.hostDev, 'up']);
  sh.run(['ip', '-n', link.netns, 'addr', 'add', `${link.peerAddr}/30`, 'dev', link.peerDev]);
  sh.run(['ip', '-n', link.netns, 'link', 'set', link.peerDev, 'up']);
  sh.run(['ip', '-n', link.netns, 'link', 'set', 'lo', 'up']);
  return link;
}

/** Qdiscs for a plan: `down` on the host end's egress (towards the weak side), `up` on the namespace end's egress. */
export function applyQdiscs(sh: Shell, plan: LinkPlan, down: { dev: string; netns?: string }, up: { dev: string; netns?: string } | undefined, record: (r: ChaosResource) => void): void {
  for (const [spec, end] of [
    [plan.tcDown, down],
    [plan.tcUp, up],
  ] as const) {
    if (!spec || !end) continue;
    record({ kind: 'qdisc', dev: end.dev, ...(end.netns ? { netns: end.netns } : {}) });
    sh.run(['tc', ...(end.netns ? ['-n', end.netns] : []), 'qdisc', 'replace', 'dev', end.dev, 'root', 'handle', '1:', ...spec.args]);
  }
}

/**
 * Loss and partition rules on the weak side's device (inside its namespace when there is one).
 * Returns a setter for flapping partitions: it rewrites the rules with the partition on or off.
 */
export function applyFilters(
  sh: Shell,
  f: FilterPlan,
  dev: string,
  netns: string | undefined,
  id: string,
  record: (r: ChaosResource) => void,
  opts: { sharedNetns?: boolean } = {},
): (partitioned: boolean) => void {
  const startCut = f.partition !== undefined && !f.partition.schedule && !f.partition.afterMs;
  if (f.tool === 'nft') {
    // In the host namespace (or a role's, which outlives the session) sessions share one ruleset: each gets its own table (mpchaos_<id>).
    const table = netns && !opts.sharedNetns ? PREFIX : `${PREFIX}_${id}`;
    record({ kind: 'nft-table', family: 'inet', name: table, ...(netns ? { netns } : {}) });
    // `add table` + `delete table` + the table: replaces the whole ruleset of our table atomically.
    const load = (cut: boolean) => sh.run(inNs(netns, ['nft', '-f', '-']), { input: `add table inet ${table}\ndelete table inet ${table}\n${nftScript(table, dev, f, cut)}` });
    load(startCut);
    return load;
  }
  let current: Array<{ chain: string; spec: string[] }> = [];
  // iptables-nft creates `table ip filter` on first use and leaves it behind: note when that first use is ours.
  if (!netns && !sh.dryRun && commandExists('nft') && runQuiet(['iptables', '-V'], { tolerate: true }).includes('nf_tables'))
    if (runQuiet(['nft', 'list', 'tables'], { tolerate: true }).split('\n').every((l) => l.trim() !== 'table ip filter')) record({ kind: 'iptables-nft-table', name: 'filter' });
  const load = (cut: boolean) => {
    for (const r of current) sh.run(inNs(netns, ['iptables', '-t', 'filter', '-D', r.chain, ...r.spec]), { tolerate: true });
    current = iptablesRules(dev, f, cut, `${PREFIX}-${id}`);
    // At the top of each chain, in order (ahead of any ACCEPT on a named host interface).
    const position = new Map<string, number>();
    for (const r of current) {
      const at = (position.get(r.chain) ?? 0) + 1;
      position.set(r.chain, at);
      record({ kind: 'iptables-rule', table: 'filter', chain: r.chain, spec: r.spec, ...(netns ? { netns } : {}) });
      sh.run(inNs(netns, ['iptables', '-t', 'filter', '-I', r.chain, String(at), ...r.spec]));
    }
  };
  load(startCut);
  return load;
}

/** Undoes one recorded resource; anything already gone is fine. Returns a line saying what was done. */
export async function revertResource(sh: Shell, r: ChaosResource, liveNetns: Set<string>): Promise<string | undefined> {
  const nsGone = 'netns' in r && r.netns !== undefined && !sh.dryRun && !liveNetns.has(r.netns);
  switch (r.kind) {
    case 'process': {
      if (!sh.dryRun && !isAlive(r.pid, r.startTime)) return undefined;
      if (sh.dryRun) {
        sh.run(['kill', '-TERM', String(r.pid)]);
        return undefined;
      }
      await stopProcess({ id: r.what, pid: r.pid, pgid: r.pid, ...(r.startTime ? { startTime: r.startTime } : {}) }, 3_000);
      return `stopped ${r.what} (pid ${r.pid})`;
    }
    case 'iptables-rule':
      if (nsGone) return undefined;
      sh.run(inNs(r.netns, ['iptables', '-t', r.table, '-D', r.chain, ...r.spec]), { tolerate: true });
      return `deleted iptables rule ${r.chain} ${r.spec.join(' ')}${r.netns ? ` in ${r.netns}` : ''}`;
    case 'iptables-nft-table': {
      // Only an empty one (no rule lines): someone else may have put rules in it since.
      const text = sh.dryRun ? '' : runQuiet(['nft', 'list', 'table', 'ip', r.name], { tolerate: true });
      const rules = text.split('\n').filter((l) => l.trim() && !/^(table |chain |type |policy |\}|\{)/.test(l.trim()));
      if (!sh.dryRun && (text === '' || rules.length > 0)) return undefined;
      sh.run(['nft', 'delete', 'table', 'ip', r.name], { tolerate: true });
      return `deleted the empty ip ${r.name} table iptables created`;
    }
    case 'nft-table':
      if (nsGone) return undefined;
      sh.run(inNs(r.netns, ['nft', 'delete', 'table', r.family, r.name]), { tolerate: true });
      return `deleted nft table ${r.family} ${r.name}${r.netns ? ` in ${r.netns}` : ''}`;
    case 'qdisc':
      if (nsGone) return undefined;
      sh.run(['tc', ...(r.netns ? ['-n', r.netns] : []), 'qdisc', 'del', 'dev', r.dev, r.ingress ? 'ingress' : 'root'], { tolerate: true });
      return `removed ${r.ingress ? 'ingress ' : ''}qdisc on ${r.dev}${r.netns ? ` in ${r.netns}` : ''}`;
    case 'ifb':
      if (!sh.dryRun && !succeeds(['ip', 'link', 'show', 'dev', r.name])) return undefined;
      sh.run(['ip', 'link', 'del', r.name], { tolerate: true });
      return `deleted ifb ${r.name}`;
    case 'veth':
      sh.run(['ip', 'link', 'del', r.name], { tolerate: true });
      return `deleted veth ${r.name}`;
    case 'netns': {
      if (!sh.dryRun && !liveNetns.has(r.name)) return undefined;
      // Whatever still runs inside our namespace was started in it by us (chaos exec); it goes first.
      if (!sh.dryRun) {
        for (const pid of runQuiet(['ip', 'netns', 'pids', r.name], { tolerate: true }).split('\n').filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // gone
          }
        }
      }
      sh.run(['ip', 'netns', 'del', r.name], { tolerate: true });
      return `deleted namespace ${r.name}`;
    }
  }
}

/** Undo in reverse creation order. */
export async function revertAll(sh: Shell, resources: ChaosResource[]): Promise<string[]> {
  const live = new Set(listNetns());
  const lines: string[] = [];
  for (const r of [...resources].reverse()) {
    try {
      const line = await revertResource(sh, r, live);
      if (line) lines.push(line);
    } catch (err) {
      lines.push(`could not undo ${r.kind}: ${(err as Error).message}`);
    }
  }
  return lines;
}

const succeeds = (argv: string[]) => spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore', timeout: 15_000 }).status === 0;

/** Whether a recorded resource still exists (after an undo that reported nothing: a failure there is silent). */
export function stillPresent(r: ChaosResource, liveNetns: Set<string>): boolean {
  if ('netns' in r && r.netns !== undefined && !liveNetns.has(r.netns)) return false;
  switch (r.kind) {
    case 'process':
      return isAlive(r.pid, r.startTime);
    case 'netns':
      return liveNetns.has(r.name);
    case 'veth':
    case 'ifb':
      return succeeds(['ip', 'link', 'show', 'dev', r.name]);
    case 'qdisc':
      if (r.ingress) return /qdisc ingress ffff:/.test(runQuiet(['tc', 'qdisc', 'show', 'dev', r.dev, 'ingress'], { tolerate: true }));
      return /qdisc \S+ 1: root/.test(runQuiet(['tc', ...(r.netns ? ['-n', r.netns] : []), 'qdisc', 'show', 'dev', r.dev], { tolerate: true }));
    case 'nft-table':
      return succeeds(inNs(r.netns, ['nft', 'list', 'table', r.family, r.name]));
    case 'iptables-rule':
      // iptables-nft creates a missing table even to check a rule in it: look for the table first.
      if (!r.netns && commandExists('nft') && runQuiet(['iptables', '-V'], { tolerate: true }).includes('nf_tables') && !succeeds(['nft', 'list', 'table', 'ip', r.table]))
        return false;
      return succeeds(inNs(r.netns, ['iptables', '-t', r.table, '-C', r.chain, ...r.spec]));
    case 'iptables-nft-table':
      return false; // best effort: it is only removed when empty
  }
}

/**
 * Undo, then check what is really gone; retry what is not (a busy machine can make `ip`/`tc` fail or time out).
 * `remaining` lists what could not be undone: its record must be kept for the next attempt.
 */
export async function revertVerified(sh: Shell, resources: ChaosResource[], attempts = 3): Promise<{ lines: string[]; remaining: ChaosResource[] }> {
  const lines: string[] = [];
  let todo = resources;
  for (let i = 0; i < attempts && todo.length > 0; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 500));
    lines.push(...(await revertAll(sh, todo)));
    if (sh.dryRun) return { lines, remaining: [] };
    const live = new Set(listNetns());
    todo = todo.filter((r) => stillPresent(r, live));
  }
  for (const r of todo) lines.push(`could not undo ${JSON.stringify(r)}`);
  return { lines, remaining: todo };
}
