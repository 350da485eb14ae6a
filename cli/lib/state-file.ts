// <datadir>/cluster.json: what `up` started, so `down` and `status` can find
// it later, and a second `up` refuses to start over a live cluster.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ProcessKind } from './cluster-plan.ts';
import { isAlive } from './processes.ts';

export interface RecordedProcess {
  id: string;
  kind: ProcessKind;
  tier: number;
  pid: number;
  pgid: number;
  startTime?: number;
  command: string;
  logFile: string;
}

export interface ClusterEndpoints {
  routers: string[];
  control: string;
  gateways: Array<{ id: string; ws: string; http: string }>;
  servers: Array<{ id: string; grpc: string; admin: string }>;
  feed: string;
  nats?: string;
  redis?: string;
}

export interface ClusterState {
  version: 1;
  mode: 'processes' | 'embedded';
  status: 'starting' | 'running';
  dataDir: string;
  startedAt: string;
  /** The `up` process; in foreground mode it owns the cluster and stops it on SIGTERM. */
  supervisorPid: number;
  supervisorStartTime?: number;
  detached: boolean;
  endpoints: ClusterEndpoints;
  /** Roles and where their /healthz is, for `status` when control does not list one. */
  roles: Array<{ id: string; role: string; healthUrl: string; urls: Record<string, string> }>;
  embeddedParts: string[];
  /** Binaries `up` started (nats-server, redis-server), by path. */
  binaries: Record<string, string>;
  processes: RecordedProcess[];
}

export const stateFilePath = (dataDir: string) => join(dataDir, 'cluster.json');

export function readState(dataDir: string): ClusterState | undefined {
  let raw: string;
  try {
    raw = readFileSync(stateFilePath(dataDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(raw) as ClusterState;
  } catch {
    throw new Error(`${stateFilePath(dataDir)} is not valid JSON; remove it if no cluster runs from ${dataDir}`);
  }
}

/** Written to a temp file and renamed, so a reader never sees half a file. */
export function writeState(state: ClusterState): void {
  const file = stateFilePath(state.dataDir);
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, file);
}

export function removeState(dataDir: string): void {
  rmSync(stateFilePath(dataDir), { force: true });
}

export function liveProcesses(state: ClusterState): RecordedProcess[] {
  return state.processes.filter((p) => isAlive(p.pid, p.startTime));
}
