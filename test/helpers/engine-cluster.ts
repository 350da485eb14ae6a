// `pushctl up --detach` with clustered engines for integration tests: the
// endpoints it prints, its state file, `down` afterwards (and SIGKILL of
// whatever the state file still names, should `down` fail), and which engine
// node a role's process is connected to (from the kernel's socket table).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClusterState } from '../../cli/lib/state-file.ts';
import type { ClusterSecrets } from '../../system/common/secrets.ts';
import { pushctl } from './pushctl.ts';

export interface UpCluster {
  dataDir: string;
  json: Record<string, any>;
  state: () => ClusterState;
  secrets: ClusterSecrets;
  pid: (id: string) => number;
  down: () => Promise<void>;
}

export async function upDetached(args: string[], timeoutMs = 240_000): Promise<UpCluster> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mp-engines-'));
  const state = () => JSON.parse(readFileSync(join(dataDir, 'cluster.json'), 'utf8')) as ClusterState;
  const down = async () => {
    const r = await pushctl(['down', '--data-dir', dataDir], { timeoutMs: 120_000 }).catch((err: Error) => ({ code: 1, out: err.message }));
    if (r.code !== 0) {
      // Last resort: nothing of ours may outlive the test.
      try {
        for (const p of state().processes) {
          try {
            process.kill(-p.pgid, 'SIGKILL');
          } catch {
            // gone
          }
        }
      } catch {
        // no state file
      }
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  let run;
  try {
    run = await pushctl(['up', '--detach', '--json', '--port-base', '0', '--data-dir', dataDir, ...args], { timeoutMs });
  } catch (err) {
    await down();
    throw err;
  }
  if (run.code !== 0) {
    await down();
    throw new Error(`pushctl up ${args.join(' ')} failed (${run.code}):\n${run.out}`);
  }
  const json = JSON.parse(run.stdout.trim().split('\n').pop()!) as Record<string, any>;
  const secrets = JSON.parse(readFileSync(join(dataDir, 'secrets.json'), 'utf8')) as ClusterSecrets;
  const pid = (id: string) => {
    const p = state().processes.find((x) => x.id === id);
    if (!p) throw new Error(`no process ${id} in the state file`);
    return p.pid;
  };
  return { dataDir, json, state, secrets, pid, down };
}

/** The local ports the process `pid` holds established TCP connections to. */
export function peerPortsOf(pid: number): number[] {
  const out = execFileSync('ss', ['-tnpH', 'state', 'established'], { encoding: 'utf8' });
  const ports: number[] = [];
  for (const line of out.split('\n')) {
    if (!line.includes(`pid=${pid},`)) continue;
    const peer = line.trim().split(/\s+/)[3];
    const port = Number(peer?.slice(peer.lastIndexOf(':') + 1));
    if (Number.isInteger(port)) ports.push(port);
  }
  return ports;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET on one of the cluster's admin listeners with its operator token. */
export async function operatorJson<T = any>(c: UpCluster, url: string): Promise<T> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${c.secrets.adminToken}` }, signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}
