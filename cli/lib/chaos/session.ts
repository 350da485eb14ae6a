// One applied profile: resolve the target, plan per field, create the link /
// qdiscs / rules / proxies (recording each first), run partition schedules,
// and undo it all. Also the crash recovery every chaos command runs first.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { processStartTime, isAlive } from '../processes.ts';
import { liveProcesses, readState as readClusterState } from '../state-file.ts';
import { applyFilters, applyIngressQdisc, applyQdiscs, createLink, detectCapabilities, pickSubnet, revertVerified, staleProbeNamespaces, type VethLink } from './kernel.ts';
import { planLink, type BackendChoice, type Capabilities, type LinkPlan } from './plan.ts';
import type { Profile } from './profile.ts';
import { ChaosProxy, flap, type PartitionMode } from './proxy.ts';
import { Shell, runQuiet } from './shell.ts';
import {
  addSession,
  readChaosState,
  removeSession,
  updateSession,
  withStateLock,
  writeChaosState,
  PREFIX,
  type ChaosResource,
  type ChaosSession,
  type IsolatedRole,
  type Isolation,
} from './state.ts';

export interface ApplyOptions {
  dataDir: string;
  profile: Profile;
  /** clients | exec | gateway | server | nats | redis | a role id | tcp:127.0.0.1:PORT */
  target: string;
  backend: BackendChoice;
  iface?: string;
  dryRun: boolean;
  /** Loopback ports to reach through the link from inside the namespace (link targets). */
  ports: number[];
  print: (line: string) => void;
  caps?: Capabilities;
}

export interface ActiveSession {
  session: ChaosSession;
  plan: LinkPlan;
  link?: VethLink;
  /** Roles of a `pushctl up --isolate` cluster whose own veths carry the profile. */
  isolated?: IsolatedRole[];
  caps: Capabilities;
  /** The session's live proxies (a link's host-end ones, or those in front of a role): faults can be changed on them. */
  proxies: ChaosProxy[];
  /** Undo everything; safe to call twice. */
  revert(): Promise<string[]>;
}

const LINK_TARGETS = new Set(['clients', 'exec']);

/** A cluster `pushctl up` recorded in the data dir still runs (a process of it, or its foreground `up`). */
function clusterAlive(dataDir: string): boolean {
  const st = readClusterState(dataDir);
  if (!st) return false;
  return liveProcesses(st).length > 0 || (!st.detached && isAlive(st.supervisorPid, st.supervisorStartTime));
}

/**
 * Undo sessions whose holder died (crash, SIGKILL) and probe namespaces left by a killed probe. The namespaces of
 * `up --isolate` live as long as their cluster (a detached `up` has exited long ago): stale once nothing of it runs.
 */
export async function recoverStale(dataDir: string, print: (l: string) => void): Promise<number> {
  const state = readChaosState(dataDir);
  let n = 0;
  for (const s of state.sessions) {
    if (s.ownerPid !== process.pid && isAlive(s.ownerPid, s.ownerStartTime)) continue;
    if (s.isolation && clusterAlive(dataDir)) continue;
    print(`chaos: session ${s.id} (${s.profile} on ${s.target}) was left behind by pid ${s.ownerPid}; undoing it`);
    if (await undoSession(dataDir, s, new Shell(), print)) n++;
  }
  if (process.getuid?.() === 0) {
    for (const ns of staleProbeNamespaces()) {
      runQuiet(['ip', 'netns', 'del', ns], { tolerate: true });
      print(`chaos: deleted a probe namespace left behind: ${ns}`);
    }
  }
  return n;
}

/**
 * Undoes a session's resources and drops its record, or, if something could not be undone, keeps the record of
 * exactly what is left (the next chaos command retries it). Returns true when everything is gone.
 */
export async function undoSession(dataDir: string, s: ChaosSession, sh: Shell, print: (l: string) => void): Promise<boolean> {
  const { lines, remaining } = await revertVerified(sh, s.resources);
  for (const line of lines) print(`  ${line}`);
  if (sh.dryRun) return true;
  if (remaining.length === 0) {
    removeSession(dataDir, s.id);
    return true;
  }
  updateSession(dataDir, s.id, (x) => (x.resources = remaining));
  print(`chaos: ${remaining.length} resource(s) of session ${s.id} are still there; kept in ${dataDir}/chaos.json for the next \`pushctl chaos off\``);
  return false;
}

interface RoleEndpoint {
  id: string;
  host: string;
  port: number;
}

/**
 * Asks the holders of the chosen sessions to undo them (SIGTERM), waits up to 15 s, and undoes what is left itself.
 * Returns how many sessions were chosen, and how many of them could not be undone completely.
 */
export async function stopSessions(dataDir: string, pick: (s: ChaosSession) => boolean, print: (l: string) => void): Promise<{ count: number; left: number }> {
  const chosen = readChaosState(dataDir).sessions.filter(pick);
  const ids = new Set(chosen.map((s) => s.id));
  for (const s of chosen) {
    if (s.ownerPid === process.pid || !isAlive(s.ownerPid, s.ownerStartTime)) continue;
    print(`asking pid ${s.ownerPid} to undo session ${s.id} (${s.profile} on ${s.target})`);
    try {
      process.kill(s.ownerPid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  const mine = () => readChaosState(dataDir).sessions.filter((s) => ids.has(s.id));
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && mine().some((s) => s.ownerPid !== process.pid && isAlive(s.ownerPid, s.ownerStartTime))) await new Promise((r) => setTimeout(r, 100));
  let left = 0;
  for (const s of mine()) {
    print(`session ${s.id}: its holder did not finish${isAlive(s.ownerPid, s.ownerStartTime) ? '' : ' (or could not undo everything)'}; undoing it here`);
    if (!(await undoSession(dataDir, s, new Shell(), print))) left++;
  }
  return { count: chosen.length, left };
}

/** The roles of an isolated cluster a target names (`gateway` = every gateway-N, or one id), if the cluster is isolated. */
export function isolatedTargets(dataDir: string, target: string): { isolation: Isolation; roles: IsolatedRole[] } | undefined {
  const isolation = readChaosState(dataDir).sessions.find((s) => s.isolation)?.isolation;
  if (!isolation || target.startsWith('tcp:')) return undefined;
  const roles = isolation.roles.filter((r) => r.id === target || (r.id.startsWith(`${target}-`) && /^\d+$/.test(r.id.slice(target.length + 1))));
  return roles.length > 0 ? { isolation, roles } : undefined;
}

/** Every host:port an isolated role listens on (from the cluster state), for proxies in front of it. */
function isolatedEndpoints(dataDir: string, ids: string[]): RoleEndpoint[] {
  const state = readClusterState(dataDir);
  if (!state) return [];
  const out: RoleEndpoint[] = [];
  for (const id of ids) {
    const urls = id === 'nats' ? [state.endpoints.nats] : id === 'redis' ? [state.endpoints.redis] : Object.values(state.roles.find((r) => r.id === id)?.urls ?? {});
    for (const url of urls) {
      if (!url) continue;
      const u = new URL(url.includes('://') ? url : `tcp://${url}`);
      if (!out.some((e) => e.host === u.hostname && e.port === Number(u.port))) out.push({ id, host: u.hostname, port: Number(u.port) });
    }
  }
  return out;
}

const portOf = (url: string) => Number(new URL(url.includes('://') ? url : `tcp://${url}`).port);

/**
 * Where each cluster port (the roles' and NATS) listens when it is not on loopback — a `pushctl up --isolate`
 * cluster puts each role on its namespace's address: port → address. Inside a client namespace that address answers too.
 */
export function clusterHosts(dataDir: string): Map<number, string> {
  const out = new Map<number, string>();
  const state = readClusterState(dataDir);
  if (!state) return out;
  for (const url of [...state.roles.flatMap((r) => Object.values(r.urls)), state.endpoints.nats ?? '']) {
    if (!url) continue;
    const u = new URL(url.includes('://') ? url : `tcp://${url}`);
    if (!u.hostname.startsWith('127.') && u.hostname !== 'localhost') out.set(Number(u.port), u.hostname);
  }
  return out;
}

/** Loopback endpoints of a cluster target, from the cluster state file. */
export function resolveRoleTarget(dataDir: string, target: string): RoleEndpoint[] {
  const tcp = /^tcp:(127\.\d+\.\d+\.\d+|localhost):(\d+)$/.exec(target);
  if (tcp) return [{ id: target, host: tcp[1]!, port: Number(tcp[2]) }];
  const state = readClusterState(dataDir);
  if (!state) throw new Error(`no cluster is recorded in ${dataDir}: start one with \`pushctl up\`, or target tcp:127.0.0.1:PORT`);
  const fromUrl = (id: string, url: string | undefined): RoleEndpoint[] => {
    if (!url) return [];
    const u = new URL(url.includes('://') ? url : `tcp://${url}`);
    return [{ id, host: u.hostname, port: Number(u.port) }];
  };
  const e = state.endpoints;
  const all: Record<string, RoleEndpoint[]> = {
    gateway: e.gateways.flatMap((g) => fromUrl(g.id, g.ws)),
    server: e.servers.flatMap((s) => fromUrl(s.id, s.grpc)),
    nats: fromUrl('nats', e.nats),
    redis: fromUrl('redis', e.redis),
    router: e.routers.flatMap((r, i) => fromUrl(`router-${i + 1}`, r)),
    control: fromUrl('control', e.control),
  };
  if (all[target]) {
    if (all[target].length === 0) throw new Error(`the cluster in ${dataDir} has no ${target} listening on a port (embedded?)`);
    return all[target];
  }
  const byId = Object.values(all)
    .flat()
    .filter((r) => r.id === target);
  if (byId.length === 0)
    throw new Error(`unknown target ${target}; use clients, gateway, server, nats, redis, router, control, a role id (${Object.values(all).flat().map((r) => r.id).join(', ')}) or tcp:127.0.0.1:PORT`);
  return byId;
}

/**
 * Every port of the cluster a client may connect to, for bridging into a client namespace: routers, control, and
 * each gateway's listeners (WebSocket / gRPC-web / HTTP, TCP, gRPC).
 */
export function clientPorts(dataDir: string): number[] {
  const state = readClusterState(dataDir);
  if (!state) return [];
  const gateways = [...state.endpoints.gateways.flatMap((g) => [g.ws, g.http]), ...state.roles.filter((r) => r.role === 'gateway').flatMap((r) => Object.values(r.urls))];
  const ports = new Set([...state.endpoints.routers, state.endpoints.control, ...gateways].filter(Boolean).map(portOf));
  return [...ports].filter((p) => p > 0).sort((a, b) => a - b);
}

/**
 * Starts a plan's partition on the link's filter (nft) or on the proxies: at once, after a delay, or coming and going.
 * Returns what stops its timers (the cut itself is undone with the filter or the proxies' faults).
 */
export function startPartition(plan: LinkPlan, setFilterCut: ((cut: boolean) => void) | undefined, proxies: ChaosProxy[]): () => void {
  const part = plan.filter?.partition ?? plan.proxyPartition;
  if (part && (part.schedule || part.afterMs)) {
    const target = plan.filter?.partition
      ? { setPartition: (m: PartitionMode | null) => setFilterCut!(m !== null) }
      : { setPartition: (m: PartitionMode | null) => proxies.forEach((p) => p.setPartition(m)) };
    if (part.schedule) return flap(target, part.mode, part.schedule.upMs, part.schedule.downMs, part.afterMs ?? part.schedule.upMs);
    const t = setTimeout(() => target.setPartition(part.mode), part.afterMs);
    return () => clearTimeout(t);
  }
  if (plan.proxyPartition) for (const p of proxies) p.setPartition(plan.proxyPartition.mode);
  return () => {};
}

export async function applyProfile(o: ApplyOptions): Promise<ActiveSession> {
  const caps = o.caps ?? detectCapabilities({ dryRun: o.dryRun });
  const isLink = LINK_TARGETS.has(o.target);
  if (isLink && !o.iface && (!caps.root || !caps.netns))
    throw new Error(`target ${o.target} needs a network namespace, which needs root; without root only the proxy backend remains (use --target with a role or tcp:127.0.0.1:PORT)`);
  if (o.iface) {
    if (o.iface.startsWith(PREFIX) || o.iface.startsWith('mpc')) throw new Error('--iface names a host interface; pushctl’s own veths are chosen by --target clients');
    if (!caps.root) throw new Error(`--iface ${o.iface}: shaping a host interface needs root`);
  }
  // A role of an `up --isolate` cluster: its own veth is the link (tc on both ends, nft inside its namespace).
  const iso = isLink ? undefined : isolatedTargets(o.dataDir, o.target);
  if (iso && o.iface) throw new Error(`${o.target} runs in its own namespace (pushctl up --isolate): its own veth is shaped, drop --iface ${o.iface}`);
  if (iso) {
    if (!caps.root) throw new Error(`target ${o.target} is an isolated role: shaping its link needs root`);
    const busy = readChaosState(o.dataDir).sessions.find((s) => s.roles?.some((r) => iso.roles.some((x) => x.id === r)));
    if (busy && !o.dryRun) throw new Error(`${busy.roles!.join(', ')} ${busy.roles!.length > 1 ? 'are' : 'is'} already shaped by session ${busy.id} (${busy.profile}); \`pushctl chaos off\` first`);
  }
  // A role on a named host interface (e.g. --iface lo): filters scoped to its ports, which reach open connections too.
  const roleTargets = isLink ? [] : iso ? isolatedEndpoints(o.dataDir, iso.roles.map((r) => r.id)) : resolveRoleTarget(o.dataDir, o.target);
  const portScope = o.iface && !isLink ? roleTargets.map((r) => r.port) : undefined;
  const plan = planLink({ profile: o.profile, caps, choice: o.backend, link: isLink || o.iface !== undefined || iso !== undefined, ...(portScope ? { ports: portScope } : {}) });
  const id = randomBytes(3).toString('hex');
  const sh = new Shell({ dryRun: o.dryRun, print: o.print });
  const session: ChaosSession = {
    id,
    profile: o.profile.name,
    target: o.iface ? `${isLink ? 'iface' : `${o.target} on iface`} ${o.iface}` : o.target,
    backend: o.backend,
    createdAt: new Date().toISOString(),
    ownerPid: process.pid,
    ...(processStartTime(process.pid) !== undefined ? { ownerStartTime: processStartTime(process.pid)! } : {}),
    ...(iso ? { roles: iso.roles.map((r) => r.id) } : {}),
    proxies: [],
    report: plan.report,
    resources: [],
  };
  const record = (r: ChaosResource) => {
    session.resources.push(r);
    if (!o.dryRun) updateSession(o.dataDir, id, (s) => s.resources.push(r));
  };
  if (!o.dryRun) addSession(o.dataDir, session);

  const proxies: ChaosProxy[] = [];
  const stops: Array<() => void> = [];
  let reverted: Promise<string[]> | undefined;
  const revert = () =>
    (reverted ??= (async () => {
      for (const s of stops) s();
      await Promise.all(proxies.map((p) => p.close()));
      const lines: string[] = [];
      await undoSession(o.dataDir, session, sh, (l) => lines.push(l.trim()));
      return lines;
    })());

  try {
    let link: VethLink | undefined;
    let setFilterCut: ((cut: boolean) => void) | undefined;
    if (isLink && !o.iface) {
      // Chosen and claimed under the state lock, so two sessions never pick the same subnet.
      const subnet = o.dryRun
        ? 1
        : withStateLock(o.dataDir, () => {
            const state = readChaosState(o.dataDir);
            const n = pickSubnet(state.sessions.map((s) => s.hostAddr ?? ''));
            const mine = state.sessions.find((s) => s.id === id);
            if (mine) mine.hostAddr = `10.200.${n}.1`;
            writeChaosState(o.dataDir, state);
            return n;
          });
      link = createLink(sh, id, subnet, record);
      session.netns = link.netns;
      session.hostAddr = link.hostAddr;
      session.peerAddr = link.peerAddr;
      applyQdiscs(sh, plan, { dev: link.hostDev }, { dev: link.peerDev, netns: link.netns }, record);
      if (plan.filter) setFilterCut = applyFilters(sh, plan.filter, link.peerDev, link.netns, id, record);
    } else if (iso) {
      // down = towards the role (its bridge port's egress, in the hub), up = from it (its own end's egress).
      const cuts: Array<(cut: boolean) => void> = [];
      for (const r of iso.roles) {
        applyQdiscs(sh, plan, { dev: r.hubDev, netns: iso.isolation.hub }, { dev: r.dev, netns: r.netns }, record);
        if (plan.filter) cuts.push(applyFilters(sh, plan.filter, r.dev, r.netns, id, record, { sharedNetns: true }));
      }
      if (plan.filter) setFilterCut = (cut) => cuts.forEach((c) => c(cut));
    } else if (o.iface) {
      // A host interface the user named: egress gets the `down` qdisc; ingress is redirected to an ifb that gets `up`.
      applyQdiscs(sh, plan, { dev: o.iface }, undefined, record);
      if (plan.tcUp) {
        const ifb = `mpc${id}i`;
        const why = applyIngressQdisc(sh, o.iface, ifb, plan.tcUp, record);
        const tc = plan.report.filter((r) => r.backend === 'tc');
        if (why) plan.report.push({ field: 'bandwidth/delay up', value: '', backend: null, note: `only ${o.iface}'s egress is shaped: ingress needs an ifb device, and ${why}` });
        else for (const r of tc) r.note = `${(r.note ?? 'tc').replace(/ on each end of the veth/, '')}: down on ${o.iface}'s egress, up on ifb ${ifb} (${o.iface}'s ingress redirected to it)`;
      }
      if (plan.filter) setFilterCut = applyFilters(sh, plan.filter, o.iface, undefined, id, record);
    }

    // Proxies: on a link, host end → loopback for each bridged port (with the proxy's faults), and a plain
    // forwarder inside the namespace so the cluster's own 127.0.0.1 URLs work there. For roles, one in front.
    const faults = plan.proxy ?? {};
    const endpoints: Array<{ listenHost: string; listenPort: number; host: string; port: number }> = [];
    // An isolated cluster listens on its namespaces' addresses, not on loopback: the proxies connect there.
    const hosts = link ? clusterHosts(o.dataDir) : new Map<number, string>();
    if (link) for (const port of o.ports) endpoints.push({ listenHost: link.hostAddr, listenPort: port, host: hosts.get(port) ?? '127.0.0.1', port });
    else if ((!o.iface && !iso) || plan.proxy || plan.proxyPartition)
      for (const r of roleTargets) endpoints.push({ listenHost: '127.0.0.1', listenPort: 0, host: r.host, port: r.port });
    if (!link && !o.iface && !iso && plan.report.every((r) => r.backend === null))
      plan.report.push({
        field: '(target)',
        value: o.target,
        backend: null,
        note: 'nothing of this profile reaches an internal link through a proxy; --iface lo puts loss and partitions on its port, and a cluster started with `pushctl up --isolate` has a link per role',
      });
    for (const e of endpoints) {
      if (o.dryRun) {
        o.print(`# proxy ${e.listenHost}:${e.listenPort || '<free port>'} → ${e.host}:${e.port} faults ${JSON.stringify(faults)}`);
        continue;
      }
      const p = new ChaosProxy({ listenHost: e.listenHost, listenPort: e.listenPort, targetHost: e.host, targetPort: e.port, faults });
      await p.listen();
      proxies.push(p);
      session.proxies.push({ listen: `${e.listenHost}:${p.port}`, target: `${e.host}:${e.port}` });
    }
    // The role's own links are the veth's; a proxy shapes only what is pointed at it.
    if (iso)
      for (const r of plan.report)
        if (r.backend === 'proxy') {
          const why = (r.note ?? '').replace(/; (the proxy delays TCP through its ports only|TCP through the proxy only)$/, '');
          r.note = `${why ? `${why}; ` : ''}only connections made to the proxies printed below, not the role's own links`;
        }
    if (link && o.ports.length > 0) {
      const fw = await startForwarder(sh, link, o.ports, hosts, record);
      if (fw) session.proxies.push(...o.ports.map((port) => ({ listen: `${link.netns}/127.0.0.1:${port}`, target: `${link.hostAddr}:${port}` })));
    }
    if (!o.dryRun) updateSession(o.dataDir, id, (s) => Object.assign(s, { proxies: session.proxies, netns: session.netns, hostAddr: session.hostAddr, peerAddr: session.peerAddr }));

    // Partitions, now or coming and going (a dry run has no proxy and no filter to cut).
    if (!o.dryRun) stops.push(startPartition(plan, setFilterCut, proxies));
    return { session, plan, ...(link ? { link } : {}), ...(iso ? { isolated: iso.roles } : {}), caps, proxies, revert };
  } catch (err) {
    await revert();
    throw err;
  }
}

/**
 * A plain forwarder inside the namespace: 127.0.0.1:P there → host end:P. A port of an isolated cluster is also
 * answered at its role's own address (put on the namespace's lo), so the URLs the router hands out work inside too.
 */
async function startForwarder(sh: Shell, link: VethLink, ports: number[], hosts: Map<number, string>, record: (r: ChaosResource) => void): Promise<boolean> {
  const script = join(import.meta.dirname, 'forwarder-main.ts');
  for (const addr of new Set(ports.flatMap((p) => (hosts.has(p) ? [hosts.get(p)!] : []))))
    sh.run(['ip', '-n', link.netns, 'addr', 'add', `${addr}/32`, 'dev', 'lo']);
  const listen = ports.flatMap((p) => [
    { host: '127.0.0.1', port: p, targetHost: link.hostAddr, targetPort: p },
    ...(hosts.has(p) ? [{ host: hosts.get(p)!, port: p, targetHost: link.hostAddr, targetPort: p }] : []),
  ]);
  const config = JSON.stringify({ listen });
  const argv = ['ip', 'netns', 'exec', link.netns, process.execPath, script, '--config', config];
  if (sh.dryRun) {
    sh.run(argv);
    return false;
  }
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  record({ kind: 'process', pid: child.pid!, ...(processStartTime(child.pid!) ? { startTime: processStartTime(child.pid!)! } : {}), what: `forwarder in ${link.netns}` });
  const rl = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the namespace forwarder did not start in 10 s')), 10_000);
    rl.once('line', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the namespace forwarder exited (${code})`));
    });
  });
  rl.close();
  child.stdout!.destroy();
  child.unref();
  return true;
}

/** Human lines for a field report. */
export function reportLines(report: ChaosSession['report']): string[] {
  return report.map((r) => `  ${r.field.padEnd(12)} ${r.value.padEnd(28)} ${r.backend ? `→ ${r.backend}` : '✗ not realised'}${r.note ? `  (${r.note})` : ''}`);
}
