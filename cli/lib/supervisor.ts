// Starts a planned cluster as OS processes (each detached in its own process
// group, stdout/stderr appended to its log file), waits until every part is
// ready and registered, records it in the state file, watches for children
// that die, and stops everything it started in reverse order.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, fstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterPlan, PlannedProcess } from './cluster-plan.ts';
import { plannedPorts } from './cluster-plan.ts';
import { engineLinksOf } from './engine-links.ts';
import { findOnPath } from './binaries.ts';
import { fetchFailure } from './net-error.ts';
import { takenPorts } from './ports.ts';
import { isAlive, processStartTime, stopInReverse } from './processes.ts';
import { nodeFlagsFor, roleOfScript } from '../../system/common/node-flags.ts';
import { adminAuth } from '../../system/common/admin-http.ts';
import { readSecretsFile } from '../../system/common/secrets.ts';
import {
  liveProcesses,
  readState,
  removeState,
  writeState,
  type ClusterEndpoints,
  type ClusterState,
  type RecordedProcess,
} from './state-file.ts';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const IP = findOnPath('ip', `${process.env.PATH ?? ''}:/usr/sbin:/sbin`) ?? 'ip';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The last `lines` lines a process wrote to its log since `fromOffset`. */
export function logTail(file: string, lines = 20, fromOffset = 0): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '(no log file)';
  }
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(fromOffset, size - 8192);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const text = buf.toString('utf8').trimEnd();
    return text ? text.split('\n').slice(-lines).join('\n') : '(log is empty)';
  } finally {
    closeSync(fd);
  }
}

/**
 * Refuses when the data dir records a cluster with a live process; drops a
 * state file whose processes are all gone (a crashed or killed `up`).
 */
export function assertNoLiveCluster(dataDir: string): { staleRemoved: boolean } {
  const state = readState(dataDir);
  if (!state) return { staleRemoved: false };
  const live = liveProcesses(state);
  if (live.length > 0 || (!state.detached && state.supervisorPid !== process.pid && isAlive(state.supervisorPid, state.supervisorStartTime))) {
    const pids = live.map((p) => `${p.id}=${p.pid}`).join(', ');
    throw new Error(
      `a cluster is already running from ${dataDir} (${pids || `pushctl up pid ${state.supervisorPid}`}); ` +
        `stop it with \`pushctl down --data-dir ${dataDir}\` or use another --data-dir`,
    );
  }
  removeState(dataDir);
  return { staleRemoved: true };
}

interface Running extends RecordedProcess {
  child: ChildProcess;
  planned: PlannedProcess;
  logOffset: number;
}

export interface ReadyLine {
  ready: true;
  id: string;
  role: string;
  pid: number;
  urls: Record<string, string>;
  nodes?: Array<{ id: string; role: string; urls: Record<string, string> }>;
}

export interface SupervisorOptions {
  timeoutMs: number;
  detached: boolean;
  repoRoot?: string;
  onProgress?: (msg: string) => void;
  /** Runs once a tier's processes are ready, before the next tier starts (e.g. joining clustered engines). */
  afterTier?: (tier: number) => Promise<void>;
}

export interface ChildExit {
  id: string;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  logFile: string;
  logTail: string;
}

export class Supervisor extends EventEmitter<{ exit: [ChildExit] }> {
  readonly plan: ClusterPlan;
  #opts: SupervisorOptions;
  #root: string;
  #running: Running[] = [];
  #readyUrls = new Map<string, Record<string, string>>();
  #stopping = false;
  #aborted = false;
  #state: ClusterState | undefined;

  constructor(plan: ClusterPlan, opts: SupervisorOptions) {
    super();
    this.plan = plan;
    this.#opts = opts;
    this.#root = opts.repoRoot ?? REPO_ROOT;
  }

  get state(): ClusterState | undefined {
    return this.#state;
  }

  /** Starts everything; on any failure stops what did start, removes the state file and throws. */
  async start(): Promise<ClusterState> {
    const plan = this.plan;
    assertNoLiveCluster(plan.dataDir);
    // Isolated processes listen in namespaces of their own, made just for them: nothing else can hold their ports.
    const taken = plan.isolated ? [] : await takenPorts(plannedPorts(plan), plan.host);
    if (taken.length > 0) {
      const list = taken.map((t) => `${t.port} (${t.owner})`).join(', ');
      throw new Error(`port${taken.length > 1 ? 's' : ''} already in use: ${list}; pick another --port-base, or --port-base 0 for free ports`);
    }
    mkdirSync(plan.logDir, { recursive: true });
    const deadline = Date.now() + this.#opts.timeoutMs;
    try {
      const tiers = [...new Set(plan.processes.map((p) => p.tier))].sort((a, b) => a - b);
      for (const tier of tiers) {
        const procs = plan.processes.filter((p) => p.tier === tier);
        for (const p of procs) await this.#spawn(p);
        this.#writeState('starting');
        await Promise.all(procs.map((p) => this.#waitReady(p, deadline)));
        await this.#opts.afterTier?.(tier);
      }
      await this.#waitRegistered(deadline);
      return this.#writeState('running');
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Makes a start in progress give up (Ctrl-C during start); start() then stops what it started and throws. */
  abort(): void {
    this.#aborted = true;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  #checkAborted(): void {
    if (this.#aborted) throw new Error('start interrupted');
  }

  async #spawn(p: PlannedProcess): Promise<void> {
    this.#checkAborted();
    for (const dir of p.dirs) mkdirSync(dir, { recursive: true });
    mkdirSync(dirname(p.logFile), { recursive: true });
    const fd = openSync(p.logFile, 'a');
    const logOffset = fstatSync(fd).size;
    let [cmd, args] =
      p.kind === 'binary' ? [p.command, p.args] : [process.execPath, [...nodeFlagsFor(roleOfScript(p.command) ?? ''), join(this.#root, p.command), ...p.args]];
    // `ip netns exec` execs the command in place: the pid recorded is the role's own.
    if (p.netns) [cmd, args] = [IP, ['netns', 'exec', p.netns, cmd, ...args]];
    this.#opts.onProgress?.(`starting ${p.id}`);
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { cwd: this.#root, detached: true, stdio: ['ignore', fd, fd] });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
    } catch (err) {
      throw new Error(`could not start ${p.id} (${cmd}): ${(err as Error).message}`);
    } finally {
      closeSync(fd);
    }
    const pid = child.pid!;
    const rec: Running = {
      id: p.id,
      kind: p.kind,
      tier: p.tier,
      pid,
      pgid: pid, // detached: the child leads a new process group
      ...(processStartTime(pid) !== undefined ? { startTime: processStartTime(pid)! } : {}),
      command: p.command,
      argv: [cmd, ...args],
      cwd: this.#root,
      logFile: p.logFile,
      child,
      planned: p,
      logOffset,
    };
    this.#running.push(rec);
    child.once('exit', (code, signal) => {
      if (this.#stopping) return;
      this.emit('exit', { id: p.id, pid, code, signal, logFile: p.logFile, logTail: logTail(p.logFile, 20, logOffset) });
    });
  }

  #failure(r: Running, what: string): Error {
    return new Error(`${r.id} ${what}\n--- last lines of ${r.logFile} ---\n${logTail(r.logFile, 20, r.logOffset)}`);
  }

  #exited(r: Running): boolean {
    return r.child.exitCode !== null || r.child.signalCode !== null;
  }

  async #waitReady(p: PlannedProcess, deadline: number): Promise<void> {
    const r = this.#running.find((x) => x.id === p.id)!;
    const secs = Math.round(this.#opts.timeoutMs / 1000);
    const check = () => {
      this.#checkAborted();
      if (this.#exited(r)) throw this.#failure(r, `exited during start (code ${r.child.exitCode ?? r.child.signalCode})`);
    };
    if (p.kind === 'binary') {
      for (const port of p.ports) {
        while (!(await canConnect(port, p.host ?? this.plan.host))) {
          check();
          if (Date.now() > deadline) throw this.#failure(r, `did not open port ${port} within ${secs} s`);
          await sleep(100);
        }
      }
      return;
    }
    const missing = new Set(p.readyIds);
    while (missing.size > 0) {
      for (const line of readyLines(r.logFile, r.logOffset)) {
        if (!missing.delete(line.id)) continue;
        this.#readyUrls.set(line.id, line.urls);
        for (const n of line.nodes ?? []) this.#readyUrls.set(n.id, n.urls);
      }
      if (missing.size === 0) break;
      check();
      if (Date.now() > deadline) throw this.#failure(r, `did not print its readiness line within ${secs} s`);
      await sleep(100);
    }
    for (const url of p.healthUrls) {
      let last = '';
      for (;;) {
        last = await healthz(url);
        if (last === 'ok') break;
        check();
        if (Date.now() > deadline) throw this.#failure(r, `is not healthy within ${secs} s: GET ${url} → ${last}`);
        await sleep(100);
      }
    }
    this.#opts.onProgress?.(`${p.id} ready`);
  }

  async #waitRegistered(deadline: number): Promise<void> {
    // The registry is on the router's admin listener; the operator's token reads it.
    const routerRole = this.plan.roles.find((r) => r.role === 'router')!;
    const router = routerRole.urls.admin ?? routerRole.urls.http!;
    const auth = adminAuth(this.plan.secretsFile ? readSecretsFile(this.plan.secretsFile) : undefined);
    const want = this.plan.registeredIds;
    let missing = want;
    let lastErr = '';
    for (;;) {
      try {
        const res = await fetch(`${router}/v1/nodes`, { headers: auth, signal: AbortSignal.timeout(2_000) });
        const body = (await res.json()) as { nodes?: Array<{ id: string }> };
        const have = new Set((body.nodes ?? []).map((n) => n.id));
        missing = want.filter((id) => !have.has(id));
        lastErr = res.ok ? '' : `HTTP ${res.status}`;
      } catch (err) {
        lastErr = (err as Error).message;
      }
      if (missing.length === 0 && !lastErr) return;
      this.#checkAborted();
      for (const r of this.#running) if (this.#exited(r)) throw this.#failure(r, 'exited during start');
      if (Date.now() > deadline) {
        const tails = missing
          .map((id) => this.#running.find((r) => r.id === id) ?? this.#running.find((r) => r.kind === 'embedded'))
          .filter((r): r is Running => r !== undefined)
          .map((r) => `--- last lines of ${r.logFile} ---\n${logTail(r.logFile, 10, r.logOffset)}`);
        throw new Error(
          `the router ${router} does not list ${missing.join(', ') || 'the nodes'} after ${Math.round(this.#opts.timeoutMs / 1000)} s` +
            (lastErr ? ` (GET /v1/nodes: ${lastErr})` : '') +
            (tails.length ? `\n${tails.join('\n')}` : ''),
        );
      }
      await sleep(200);
    }
  }

  endpoints(): ClusterEndpoints {
    const plan = this.plan;
    const urls = (id: string) => ({ ...plan.roles.find((r) => r.id === id)!.urls, ...this.#readyUrls.get(id) });
    const of = (role: string) => plan.roles.filter((r) => r.role === role);
    return {
      routers: of('router').map((r) => urls(r.id).http!),
      routerAdmins: of('router').map((r) => urls(r.id).admin!),
      control: urls('control-1').http!,
      ...(plan.secretsFile ? { secretsFile: plan.secretsFile } : {}),
      gateways: of('gateway').map((r) => {
        const u = urls(r.id);
        return { id: r.id, ws: u.ws!, http: u.http!, admin: u.admin!, ...(u.tcp ? { tcp: u.tcp } : {}), ...(u.grpc ? { grpc: u.grpc } : {}) };
      }),
      servers: of('server').map((r) => ({ id: r.id, grpc: urls(r.id).grpc!, admin: urls(r.id).admin! })),
      feed: urls('feed-1').admin!,
      rest: of('history').map((r) => ({ id: r.id, http: urls(r.id).http! })),
      ...(plan.natsUrl ? { nats: plan.natsUrl } : {}),
      ...(plan.redisUrl ? { redis: plan.redisUrl } : {}),
      ...(engineLinksOf(plan).length > 0 ? { engineLinks: engineLinksOf(plan) } : {}),
    };
  }

  #writeState(status: ClusterState['status']): ClusterState {
    const plan = this.plan;
    const binaries: Record<string, string> = {};
    for (const p of plan.processes) if (p.kind === 'binary') binaries[p.id] = p.command;
    this.#state = {
      version: 1,
      mode: plan.mode,
      status,
      dataDir: plan.dataDir,
      startedAt: this.#state?.startedAt ?? new Date().toISOString(),
      supervisorPid: process.pid,
      ...(processStartTime(process.pid) !== undefined ? { supervisorStartTime: processStartTime(process.pid)! } : {}),
      detached: this.#opts.detached,
      endpoints: this.endpoints(),
      roles: plan.roles.map((r) => ({ id: r.id, role: r.role, healthUrl: r.healthUrl, urls: { ...r.urls, ...this.#readyUrls.get(r.id) } })),
      embeddedParts: plan.embeddedParts,
      binaries,
      processes: this.#running.map(({ child: _c, planned: _p, logOffset: _o, ...rec }) => rec),
      ...(plan.clientAuth ? { auth: plan.clientAuth } : {}),
    };
    writeState(this.#state);
    return this.#state;
  }

  /** Lets `up --detach` exit while the children keep running. */
  detach(): void {
    for (const r of this.#running) r.child.unref();
  }

  /** Stops everything started, in reverse order, and removes the state file. Returns ids that would not die. */
  async stop(onStopped?: (id: string, gone: boolean) => void): Promise<string[]> {
    this.#stopping = true;
    const survivors = await stopInReverse(this.#running, {
      onStopped: (p, gone) => onStopped?.(p.id, gone),
    });
    if (survivors.length === 0) removeState(this.plan.dataDir);
    return survivors;
  }
}

/** Readiness lines (`{"ready":true,...}`) in a log file from an offset on. */
export function readyLines(file: string, fromOffset: number): ReadyLine[] {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return [];
  }
  try {
    const size = fstatSync(fd).size;
    if (size <= fromOffset) return [];
    const buf = Buffer.alloc(size - fromOffset);
    readSync(fd, buf, 0, buf.length, fromOffset);
    const out: ReadyLine[] = [];
    for (const line of buf.toString('utf8').split('\n')) {
      if (!line.includes('"ready":true')) continue;
      try {
        const obj = JSON.parse(line) as Partial<ReadyLine>;
        if (obj.ready === true && typeof obj.id === 'string') out.push({ urls: {}, ...obj } as ReadyLine);
      } catch {
        // a line that only mentions "ready": not ours
      }
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** 'ok' when GET url answers 200, else a short reason. */
export async function healthz(url: string): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer(); // read to the end, so the connection is kept alive for the next probe
    return res.ok ? 'ok' : `HTTP ${res.status}`;
  } catch (err) {
    return fetchFailure(err);
  }
}

function canConnect(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
