// <datadir>/chaos.json: every namespace, veth, qdisc, nft table, iptables
// rule and process pushctl chaos created, written BEFORE each is created, so
// `chaos off` and the next start after a crash can undo exactly those and
// nothing else.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isAlive } from '../processes.ts';
import { dirname, join } from 'node:path';
import type { FieldReport } from './plan.ts';

export const PREFIX = 'mpchaos';

export type ChaosResource =
  | { kind: 'netns'; name: string }
  | { kind: 'veth'; name: string; netns?: string }
  /** An ifb device carrying a host interface's ingress (deleting it takes its qdisc along). */
  | { kind: 'ifb'; name: string }
  /** `ingress`: the interface's ingress qdisc (handle ffff:) and the redirect filter on it; else its root qdisc (handle 1:). */
  | { kind: 'qdisc'; dev: string; netns?: string; ingress?: true }
  | { kind: 'nft-table'; family: 'inet'; name: string; netns?: string }
  /** A table iptables-nft created for our rules in the host namespace: removed again only if no rule is in it. */
  | { kind: 'iptables-nft-table'; name: string }
  | { kind: 'iptables-rule'; table: string; chain: string; spec: string[]; netns?: string }
  | { kind: 'process'; pid: number; startTime?: number; what: string };

export interface ChaosSession {
  id: string;
  profile: string;
  target: string;
  backend: string;
  createdAt: string;
  /** The process that holds the session (reverts it on exit); when it is gone without reverting, the session is stale. */
  ownerPid: number;
  ownerStartTime?: number;
  expiresAt?: string;
  netns?: string;
  /** Host-side and weak-side addresses of the veth pair. */
  hostAddr?: string;
  peerAddr?: string;
  /** Roles of a `pushctl up --isolate` cluster whose links this session shapes (one session per role at a time). */
  roles?: string[];
  /** Set on the session `pushctl up --isolate` records its namespaces in: it lives as long as the cluster, not its owner. */
  isolation?: Isolation;
  /** Listening proxies: what to connect to instead of what. */
  proxies: Array<{ listen: string; target: string }>;
  report: FieldReport[];
  resources: ChaosResource[];
}

/** One role of an isolated cluster: its namespace, its address, and both ends of its veth. */
export interface IsolatedRole {
  id: string;
  netns: string;
  addr: string;
  /** The end in the hub namespace, a port of its bridge: its egress carries what goes to the role. */
  hubDev: string;
  /** The end inside the role's namespace: its egress carries what the role sends. */
  dev: string;
}

/** `pushctl up --isolate`: a hub namespace holding a bridge, the host joined to it by a veth, each role by its own. */
export interface Isolation {
  hub: string;
  bridge: string;
  /** The host's end (in the host namespace) and its address on the cluster's /24. */
  hostDev: string;
  hostAddr: string;
  cidr: string;
  roles: IsolatedRole[];
}

export interface ChaosState {
  version: 1;
  sessions: ChaosSession[];
}

export const chaosStatePath = (dataDir: string) => join(dataDir, 'chaos.json');

export function readChaosState(dataDir: string): ChaosState {
  let raw: string;
  try {
    raw = readFileSync(chaosStatePath(dataDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, sessions: [] };
    throw err;
  }
  try {
    return JSON.parse(raw) as ChaosState;
  } catch {
    throw new Error(`${chaosStatePath(dataDir)} is not valid JSON; fix or remove it (look for ${PREFIX}-* namespaces and the ${PREFIX} nft table by hand)`);
  }
}

export function writeChaosState(dataDir: string, state: ChaosState): void {
  const file = chaosStatePath(dataDir);
  if (state.sessions.length === 0) {
    rmSync(file, { force: true });
    return;
  }
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, file);
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Several holders may share a data dir: every read-modify-write of chaos.json
 * runs under a lock directory (mkdir is atomic) naming its holder, so no
 * session's record is lost to a concurrent write. A lock whose holder died is
 * taken over.
 */
export function withStateLock<T>(dataDir: string, fn: () => T): T {
  mkdirSync(dataDir, { recursive: true });
  const lock = `${chaosStatePath(dataDir)}.lock`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner = 0;
      try {
        owner = Number(readFileSync(join(lock, 'pid'), 'utf8'));
      } catch {
        // being created or removed right now
      }
      if (owner > 0 && owner !== process.pid && !isAlive(owner)) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`${lock} is held by pid ${owner || '?'} for over 10 s; remove it if no pushctl chaos runs`);
      else Atomics.wait(pause, 0, 0, 10);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Read-modify-write of one session (sessions are only ever changed by their owner or by a reverter). */
export function updateSession(dataDir: string, id: string, change: (s: ChaosSession) => void): void {
  withStateLock(dataDir, () => {
    const state = readChaosState(dataDir);
    const s = state.sessions.find((x) => x.id === id);
    if (!s) return;
    change(s);
    writeChaosState(dataDir, state);
  });
}

export function addSession(dataDir: string, session: ChaosSession): void {
  withStateLock(dataDir, () => {
    const state = readChaosState(dataDir);
    state.sessions.push(session);
    writeChaosState(dataDir, state);
  });
}

export function removeSession(dataDir: string, id: string): void {
  withStateLock(dataDir, () => {
    const state = readChaosState(dataDir);
    state.sessions = state.sessions.filter((s) => s.id !== id);
    writeChaosState(dataDir, state);
  });
}
