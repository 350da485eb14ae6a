// Process faults on roles `pushctl up` started: kill -9, pause (SIGSTOP),
// resume (SIGCONT), restart (kill, then start the same command line again and
// record the new pid in the cluster state so `pushctl down` still stops it).
import { spawn, spawnSync } from 'node:child_process';
import { openSync, readFileSync, readlinkSync, closeSync } from 'node:fs';
import { isAlive, processStartTime } from '../processes.ts';
import { readState, writeState, type RecordedProcess } from '../state-file.ts';

export type ProcessFault = 'kill' | 'pause' | 'resume' | 'restart';

export function findRole(dataDir: string, name: string): RecordedProcess {
  const state = readState(dataDir);
  if (!state) throw new Error(`no cluster is recorded in ${dataDir}; start one with \`pushctl up\``);
  const exact = state.processes.find((p) => p.id === name);
  if (exact) return exact;
  const ids = state.processes.map((p) => p.id);
  if (state.mode === 'embedded') throw new Error(`the cluster in ${dataDir} runs embedded (one process): process faults need \`pushctl up\` with role processes`);
  throw new Error(`no role ${name} in ${dataDir}; roles: ${ids.join(', ')}`);
}

function signalGroup(p: RecordedProcess, sig: NodeJS.Signals): void {
  try {
    process.kill(-p.pgid, sig);
  } catch {
    process.kill(p.pid, sig);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function killAndWait(p: RecordedProcess): Promise<void> {
  signalGroup(p, 'SIGKILL');
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && isAlive(p.pid, p.startTime)) await sleep(20);
}

/**
 * How to start a recorded process again. The state file keeps its argv (a
 * program may rewrite its /proc cmdline: redis-server shows "redis-server
 * host:port" there, one string, which is not a command). The environment is
 * the running process's, or this command's once it is gone (`up` passes its
 * own on unchanged). State files from before argv was recorded fall back to
 * /proc, which needs the process alive.
 */
function launchOf(p: RecordedProcess, alive: boolean): { argv: string[]; cwd: string; env: NodeJS.ProcessEnv } {
  const env = alive ? readEnviron(p.pid) : process.env;
  if (p.argv?.length) return { argv: p.argv, cwd: p.cwd ?? process.cwd(), env };
  if (!alive) throw new Error(`${p.id} (pid ${p.pid}) is not running and the cluster state does not record its command line (started by an older pushctl): restart the cluster`);
  let argv = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  // A role of `up --isolate` runs in its own network namespace: the new one starts there too.
  const netns = spawnSync('ip', ['netns', 'identify', String(p.pid)], { encoding: 'utf8' }).stdout?.trim();
  if (netns) argv = ['ip', 'netns', 'exec', netns, ...argv];
  return { argv, cwd: readlinkSync(`/proc/${p.pid}/cwd`), env };
}

function readEnviron(pid: number): NodeJS.ProcessEnv {
  return Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}

/** Applies a fault; returns a line saying what happened. */
export async function processFault(dataDir: string, fault: ProcessFault, name: string): Promise<string> {
  const p = findRole(dataDir, name);
  const alive = isAlive(p.pid, p.startTime);
  if (fault === 'resume') {
    if (!alive) throw new Error(`${name} (pid ${p.pid}) is not running`);
    signalGroup(p, 'SIGCONT');
    return `resumed ${name} (pid ${p.pid})`;
  }
  if (fault === 'pause') {
    if (!alive) throw new Error(`${name} (pid ${p.pid}) is not running`);
    signalGroup(p, 'SIGSTOP');
    return `paused ${name} (pid ${p.pid}); \`pushctl chaos resume ${name}\` continues it`;
  }
  if (fault === 'kill') {
    if (!alive) throw new Error(`${name} (pid ${p.pid}) is not running`);
    await killAndWait(p);
    return `killed ${name} (pid ${p.pid}) with SIGKILL`;
  }
  // restart: the argv, working directory and environment it was started with; a process
  // already gone (killed by `chaos kill`, or crashed) is simply started again.
  const { argv, cwd, env } = launchOf(p, alive);
  // Ports are fixed in the config, so the new process can only bind once the old one's are free: wait for that.
  if (alive) await killAndWait(p);
  const fd = openSync(p.logFile, 'a');
  const child = spawn(argv[0]!, argv.slice(1), { cwd, env, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  await new Promise<void>((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  child.unref();
  const state = readState(dataDir);
  const rec = state?.processes.find((x) => x.id === p.id);
  if (state && rec) {
    rec.pid = child.pid!;
    rec.pgid = child.pid!;
    const st = processStartTime(child.pid!);
    if (st !== undefined) rec.startTime = st;
    writeState(state);
  }
  return alive
    ? `restarted ${name}: pid ${p.pid} killed, pid ${child.pid} started with the same command line (log ${p.logFile})`
    : `started ${name} again (pid ${p.pid} was not running): pid ${child.pid}, same command line (log ${p.logFile})`;
}
