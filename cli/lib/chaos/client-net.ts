// The client network of a benchmark run: a namespace its local agents run in
// from the start, joined to the host by a veth, with the cluster's client
// ports (router, control, gateways' WebSocket / TCP / gRPC) reachable inside
// at 127.0.0.1 through a forwarder → the veth → a proxy on the host end.
// A profile can then be put on that link at any moment of the run and taken
// off again, and it reaches the connections the agents already hold — which
// a fresh `chaos apply --target clients` namespace, made at fault time,
// cannot. The agents' NATS link (their reports) is handed in as a listening
// socket and never crosses the veth, so shaping never delays or cuts the
// measurement itself.
//
// Everything is one chaos session in <data-dir>/chaos.json (profile
// "bench-clients"), recorded before it is created: `chaos off`, `chaos
// status` and crash recovery undo it like any other.
import { spawn } from 'node:child_process';
import { connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { applyFilters, applyQdiscs, detectCapabilities, revertVerified } from './kernel.ts';
import { planLink, type BackendChoice, type Capabilities } from './plan.ts';
import type { Profile } from './profile.ts';
import type { ClientShaper } from './schedule.ts';
import { applyProfile, clusterHosts, reportLines, startPartition, type ActiveSession } from './session.ts';
import { Shell, runQuiet } from './shell.ts';
import { updateSession, type ChaosResource } from './state.ts';

const NEUTRAL_NAME = 'bench-clients';

/** A profile with no field: the link alone, shaped later. */
const NEUTRAL: Profile = { name: NEUTRAL_NAME, description: 'the client link of a pushctl bench run (no fault applied now)', source: 'pushctl bench', delayMs: {}, bandwidth: {} };

export interface ClientNet extends ClientShaper {
  netns: string;
  hostAddr: string;
  sessionId: string;
  ports: number[];
  /** The argv that runs `cmd` inside the namespace (`ip netns exec` execs: the pid is the command's). */
  wrap(cmd: string[]): string[];
  /** Host-end proxies' counters (connections accepted / open, bytes each way). */
  stats(): { accepted: number; open: number; bytesUp: number; bytesDown: number };
  close(): Promise<void>;
}

export async function openClientNet(o: { dataDir: string; ports: number[]; passthrough: number[]; print: (l: string) => void; caps?: Capabilities }): Promise<ClientNet> {
  const caps = o.caps ?? detectCapabilities();
  const hosts = clusterHosts(o.dataDir);
  if (!caps.root || !caps.netns)
    throw new Error('client-side faults (target clients) run the agents in a network namespace, which needs root; use a role target or run as root');
  // The link with a proxy per port on the host end and a forwarder inside (127.0.0.1:P and the role's own address → host end:P).
  const base: ActiveSession = await applyProfile({ dataDir: o.dataDir, profile: NEUTRAL, target: 'clients', backend: 'auto', dryRun: false, ports: o.ports, print: o.print, caps });
  const link = base.link!;
  const session = base.session;
  const proxies = base.proxies;
  const record = (r: ChaosResource) => {
    session.resources.push(r);
    updateSession(o.dataDir, session.id, (s) => s.resources.push(r));
  };
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  let active: string | undefined;
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      for (const s of servers) s.close();
      for (const s of sockets) s.destroy();
      for (const l of await base.revert()) o.print(`  ${l}`);
    })());

  try {
    // An isolated cluster's addresses answer inside too (on the namespace's lo), as 127.0.0.1 does; the forwarder added the ports' own.
    const inside = (port: number) => ['127.0.0.1', ...(hosts.has(port) ? [hosts.get(port)!] : [])];
    const added = new Set(o.ports.flatMap((p) => (hosts.has(p) ? [hosts.get(p)!] : [])));
    for (const addr of new Set(o.passthrough.flatMap((p) => (hosts.has(p) ? [hosts.get(p)!] : []))))
      if (!added.has(addr)) runQuiet(['ip', '-n', link.netns, 'addr', 'add', `${addr}/32`, 'dev', 'lo']);
    // Passthrough (NATS): listening sockets made inside, served out here, off the veth.
    for (const s of await listenInside(link.netns, o.passthrough.flatMap((port) => inside(port).map((host) => ({ host, port }))))) {
      servers.push(s.server);
      const target = hosts.get(s.port) ?? '127.0.0.1';
      s.server.on('connection', (sock: Socket) => {
        const out = connect({ host: target, port: s.port, noDelay: true });
        for (const x of [sock, out]) {
          sockets.add(x);
          x.once('close', () => sockets.delete(x));
          x.on('error', () => {
            sock.destroy();
            out.destroy();
          });
        }
        sock.setNoDelay(true);
        sock.pipe(out).pipe(sock);
      });
      session.proxies.push({ listen: `${link.netns}/${s.host}:${s.port}`, target: `${target}:${s.port} (unshaped, not over the veth)` });
    }
    updateSession(o.dataDir, session.id, (s) => (s.proxies = session.proxies));
  } catch (err) {
    await close();
    throw err;
  }

  const shape: ClientNet['shape'] = async (profile: Profile, backend: BackendChoice) => {
    if (closed) throw new Error('the client link is closed');
    if (active) throw new Error(`${active} is already on the clients' link: client-side profiles of one run must not overlap`);
    const plan = planLink({ profile, caps, choice: backend, link: true });
    const done = plan.report.filter((r) => r.backend !== null);
    if (!done.length) throw new Error(`nothing of ${profile.name} can be realised here:\n${reportLines(plan.report).join('\n')}`);
    active = profile.name;
    const sh = new Shell({ print: o.print });
    const added: ChaosResource[] = [];
    const rec = (r: ChaosResource) => {
      added.push(r);
      record(r);
    };
    const stops: Array<() => void> = [];
    const revert = async () => {
      for (const s of stops) s();
      for (const p of proxies) {
        p.setPartition(null);
        p.setFaults({});
      }
      const { remaining } = await revertVerified(sh, added);
      const gone = added.filter((r) => !remaining.includes(r));
      session.resources = session.resources.filter((r) => !gone.includes(r));
      updateSession(o.dataDir, session.id, (s) => {
        s.resources = s.resources.filter((r) => !gone.some((g) => JSON.stringify(g) === JSON.stringify(r)));
        s.profile = NEUTRAL_NAME;
        s.report = [];
      });
      active = undefined;
      if (remaining.length) throw new Error(`${remaining.length} resource(s) of ${profile.name} could not be undone; kept in chaos.json for \`pushctl chaos off\``);
    };
    try {
      updateSession(o.dataDir, session.id, (s) => {
        s.profile = `${NEUTRAL_NAME}: ${profile.name}`;
        s.report = plan.report;
      });
      applyQdiscs(sh, plan, { dev: link.hostDev }, { dev: link.peerDev, netns: link.netns }, rec);
      const setCut = plan.filter ? applyFilters(sh, plan.filter, link.peerDev, link.netns, session.id, rec) : undefined;
      for (const p of proxies) p.setFaults(plan.proxy ?? {});
      stops.push(startPartition(plan, setCut, proxies));
    } catch (err) {
      await revert().catch(() => {});
      throw err;
    }
    const notDone = plan.report.filter((r) => r.backend === null).map((r) => r.field);
    return {
      message: `${done.map((r) => `${r.field}→${r.backend}`).join(', ')}${notDone.length ? `; not realised: ${notDone.join(', ')}` : ''}`,
      revert,
    };
  };

  return {
    netns: link.netns,
    hostAddr: link.hostAddr,
    sessionId: session.id,
    ports: o.ports,
    wrap: (cmd) => ['ip', 'netns', 'exec', link.netns, ...cmd],
    stats: () => {
      const t = { accepted: 0, open: 0, bytesUp: 0, bytesDown: 0 };
      for (const p of proxies) for (const k of Object.keys(t) as Array<keyof typeof t>) t[k] += p.stats[k];
      return t;
    },
    shape,
    close,
  };
}

/** Listening sockets made inside the namespace by a helper that hands them over IPC and exits. */
async function listenInside(netns: string, listen: Array<{ host: string; port: number }>): Promise<Array<{ host: string; port: number; server: Server }>> {
  if (!listen.length) return [];
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, join(import.meta.dirname, 'ns-listen-main.ts'), '--listen', listen.map((l) => `${l.host}:${l.port}`).join(',')], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const got: Array<{ host: string; port: number; server: Server }> = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('listening inside the namespace took over 10 s')), 10_000);
      child.on('message', (m: { host?: string; port?: number; done?: boolean }, handle) => {
        if (m.host && m.port && handle) got.push({ host: m.host, port: m.port, server: handle as Server });
        if (m.done) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        if (got.length === listen.length) resolve();
        else reject(new Error(`listening inside ${netns} failed (exit ${code}): ${stderr.trim()}`));
      });
    });
  } catch (err) {
    for (const g of got) g.server.close();
    child.kill('SIGKILL');
    throw err;
  }
  return got;
}
