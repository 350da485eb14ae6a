// `pushctl up --isolate`: every role (and the nats-server / redis-server
// pushctl starts) in a network namespace of its own, so chaos can shape a
// role's links with tc and nft on its own veth without re-pointing anything.
//
// Layout: a hub namespace `mpiso-<id>` holds a bridge; each role namespace
// `mpiso-<id>-<role>` has one veth end `eth0` with the role's address on a
// free 10.2xx.N.0/24, the other end is a port of the bridge (named after the
// role). The host joins the bridge by a veth `mpi<id>h` with .1. The bridge is
// in its own namespace, not the host's, so the host's forwarding settings and
// firewall (e.g. Docker's FORWARD DROP with br_netfilter) never see role-to-role
// traffic, and nothing on the host changes but one veth and its route.
//
// Everything is recorded in <data-dir>/chaos.json as a session with
// `isolation` set, before it is created; that session lives as long as the
// cluster (not its owner: `up --detach` exits), and is undone by `pushctl down`,
// by a foreground `up` on Ctrl-C / SIGTERM, and after a crash by the next
// pushctl command that recovers stale sessions.
import { randomBytes } from 'node:crypto';
import { processStartTime } from '../processes.ts';
import { undoSession } from './session.ts';
import { runQuiet, Shell } from './shell.ts';
import { readChaosState, updateSession, withStateLock, writeChaosState, type ChaosResource, type ChaosSession, type Isolation } from './state.ts';

export const ISO_PREFIX = 'mpiso';
const DEV_RE = /^[a-z0-9][a-z0-9-]{0,14}$/;

/** Names and addresses of an isolated cluster (pure). `prefix` is the first three octets of its /24. */
export function isolationLayout(id: string, prefix: string, roleIds: string[]): Isolation {
  if (roleIds.length > 250) throw new Error(`--isolate puts every process on one /24: at most 250 processes, this cluster has ${roleIds.length}`);
  if (new Set(roleIds).size !== roleIds.length) throw new Error(`duplicate process ids: ${roleIds.join(', ')}`);
  return {
    hub: `${ISO_PREFIX}-${id}`,
    bridge: 'br0',
    hostDev: `mpi${id}h`,
    hostAddr: `${prefix}.1`,
    cidr: `${prefix}.0/24`,
    roles: roleIds.map((rid, i) => ({
      id: rid,
      netns: `${ISO_PREFIX}-${id}-${rid}`,
      addr: `${prefix}.${i + 2}`,
      // Named after the role, so `tc -n mpiso-<id> qdisc show` reads plainly; names are per namespace.
      hubDev: DEV_RE.test(rid) && rid !== 'br0' && rid !== 'host' ? rid : `r${i}`,
      dev: 'eth0',
    })),
  };
}

const toInt = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);

/** [first, last] address of a CIDR (a bare address is a /32). */
export function cidrRange(cidr: string): [number, number] {
  const [ip, len = '32'] = cidr.split('/');
  const size = 2 ** (32 - Number(len));
  const start = Math.floor(toInt(ip!) / size) * size;
  return [start, start + size - 1];
}

const ROUTE_TYPES = new Set(['unicast', 'local', 'broadcast', 'multicast', 'anycast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'nat']);

/** Destinations of every IPv4 route on the host (all tables) and its addresses' subnets: what a new /24 must not overlap. */
export function hostPrefixes(): string[] {
  const out: string[] = [];
  for (const line of runQuiet(['ip', '-o', '-4', 'route', 'show', 'table', 'all'], { tolerate: true }).split('\n')) {
    const t = line.trim().split(/\s+/);
    const dest = ROUTE_TYPES.has(t[0]!) ? t[1] : t[0];
    if (dest && dest !== 'default' && /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(dest)) out.push(dest);
  }
  for (const m of runQuiet(['ip', '-o', '-4', 'addr', 'show'], { tolerate: true }).matchAll(/inet (\d+\.\d+\.\d+\.\d+\/\d+)/g)) out.push(m[1]!);
  return out;
}

/** The first 10.201-209.N.0/24 that overlaps none of `taken` (host routes and addresses, other sessions' subnets). */
export function pickIsolationPrefix(taken: string[]): string {
  const ranges = taken.map(cidrRange);
  for (let b = 201; b <= 209; b++)
    for (let c = 0; c < 256; c++) {
      const [lo, hi] = cidrRange(`10.${b}.${c}.0/24`);
      if (!ranges.some(([a, z]) => a <= hi && lo <= z)) return `10.${b}.${c}`;
    }
  throw new Error('no free 10.201-209.N.0/24 for an isolated cluster');
}

/** Ids of the processes to isolate (pure check of what --isolate can run). */
export function assertIsolatable(o: { bus: string; cache: string; history: string }): void {
  const why = (what: string) => `--isolate: ${what}; roles in their namespaces reach only each other and the host's end of their link`;
  if (o.bus === 'embedded') throw new Error('--isolate needs nats-server on PATH: the embedded mode runs every role in one process, which cannot be split over namespaces');
  if (o.bus === 'external') throw new Error(why('--nats URL is not reachable from there; let pushctl start nats-server'));
  if (o.cache === 'external') throw new Error(why('--redis URL is not reachable from there; let pushctl start redis-server'));
  if (o.history !== 'embedded') throw new Error(why('Cassandra is not isolated; use the embedded history store'));
}

export interface CreatedIsolation {
  sessionId: string;
  isolation: Isolation;
}

/** Builds the hub, the host's link and one namespace per process, recording each first; on failure undoes what it did. */
export async function createIsolation(dataDir: string, processIds: string[]): Promise<CreatedIsolation> {
  const id = randomBytes(3).toString('hex');
  // Chosen and recorded under the state lock: two clusters of one data dir never get the same /24.
  const isolation = withStateLock(dataDir, () => {
    const state = readChaosState(dataDir);
    const others = state.sessions.flatMap((s) => (s.isolation ? [s.isolation.cidr] : s.hostAddr ? [`${s.hostAddr}/30`] : []));
    const layout = isolationLayout(id, pickIsolationPrefix([...hostPrefixes(), ...others]), processIds);
    const st = processStartTime(process.pid);
    state.sessions.push({
      id,
      profile: 'isolate',
      target: `cluster in ${dataDir}`,
      backend: 'tc',
      createdAt: new Date().toISOString(),
      ownerPid: process.pid,
      ...(st !== undefined ? { ownerStartTime: st } : {}),
      isolation: layout,
      proxies: [],
      report: [],
      resources: [],
    });
    writeChaosState(dataDir, state);
    return layout;
  });
  const record = (r: ChaosResource) => updateSession(dataDir, id, (s) => s.resources.push(r));
  const sh = new Shell();
  const n = (ns: string) => ['ip', '-n', ns];
  const build = () => {
    const { hub, bridge } = isolation;
    record({ kind: 'netns', name: hub });
    sh.run(['ip', 'netns', 'add', hub]);
    sh.run([...n(hub), 'link', 'set', 'lo', 'up']);
    sh.run([...n(hub), 'link', 'add', bridge, 'type', 'bridge']);
    sh.run([...n(hub), 'link', 'set', bridge, 'up']);
    record({ kind: 'veth', name: isolation.hostDev });
    sh.run(['ip', 'link', 'add', isolation.hostDev, 'type', 'veth', 'peer', 'name', 'host', 'netns', hub]);
    sh.run([...n(hub), 'link', 'set', 'host', 'master', bridge, 'up']);
    sh.run(['ip', 'addr', 'add', `${isolation.hostAddr}/24`, 'dev', isolation.hostDev]);
    // Clusters of other data dirs pick from the same host routes: one started at the same moment may have the same /24.
    const prefix = isolation.hostAddr.slice(0, isolation.hostAddr.lastIndexOf('.') + 1);
    const clash = runQuiet(['ip', '-o', '-4', 'addr', 'show'], { tolerate: true })
      .split('\n')
      .find((l) => l.includes(` ${prefix}`) && !l.includes(` ${isolation.hostDev} `) && !l.includes(` ${isolation.hostDev}@`));
    if (clash) throw new Error(`${isolation.cidr} was taken by another interface at the same time (${clash.trim().split(/\s+/)[1]}); start again`);
    sh.run(['ip', 'link', 'set', isolation.hostDev, 'up']);
    for (const r of isolation.roles) {
      record({ kind: 'netns', name: r.netns });
      sh.run(['ip', 'netns', 'add', r.netns]);
      sh.run([...n(r.netns), 'link', 'set', 'lo', 'up']);
      sh.run([...n(hub), 'link', 'add', r.hubDev, 'type', 'veth', 'peer', 'name', r.dev, 'netns', r.netns]);
      sh.run([...n(hub), 'link', 'set', r.hubDev, 'master', bridge, 'up']);
      sh.run([...n(r.netns), 'addr', 'add', `${r.addr}/24`, 'dev', r.dev]);
      sh.run([...n(r.netns), 'link', 'set', r.dev, 'up']);
    }
  };
  try {
    build();
  } catch (err) {
    const s = readChaosState(dataDir).sessions.find((x) => x.id === id);
    if (s) await undoSession(dataDir, s, new Shell(), () => {});
    throw new Error(`--isolate: could not build the namespaces: ${(err as Error).message}`);
  }
  return { sessionId: id, isolation };
}

/** The isolation session of a data dir's cluster, if it was started with --isolate. */
export function findIsolation(dataDir: string): ChaosSession | undefined {
  return readChaosState(dataDir).sessions.find((s) => s.isolation);
}

/**
 * Removes a data dir's isolation (its processes must be stopped first: whatever still runs in a role's namespace
 * is killed with it). Returns false when something is left, kept in chaos.json for the next attempt.
 */
export async function removeIsolation(dataDir: string, print: (l: string) => void): Promise<boolean> {
  let ok = true;
  for (const s of readChaosState(dataDir).sessions.filter((x) => x.isolation)) if (!(await undoSession(dataDir, s, new Shell(), print))) ok = false;
  return ok;
}
