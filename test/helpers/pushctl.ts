// Runs the pushctl CLI (bin/run.js) as a child process for integration tests
// and benches: its exit code and output, stopped (and the promise rejected)
// if it outlives the timeout.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface PushctlRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved as they arrived. */
  out: string;
}

export interface PushctlOptions {
  timeoutMs?: number;
  onStderr?: (text: string, pid: number) => void;
  /** The child as soon as it is spawned (to interrupt it from outside). */
  onSpawn?: (child: ChildProcess) => void;
  env?: NodeJS.ProcessEnv;
  /** Sent at the timeout (default SIGKILL); SIGINT lets `up` undo what it started, SIGKILL follows 20 s later. */
  stopSignal?: NodeJS.Signals;
}

export function pushctl(args: string[], o: PushctlOptions = {}): Promise<PushctlRun> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin', 'run.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...(o.env ? { env: o.env } : {}) });
    o.onSpawn?.(p);
    let stdout = '';
    let stderr = '';
    let out = '';
    p.stdout.on('data', (d: Buffer) => ((stdout += d), (out += d)));
    p.stderr.on('data', (d: Buffer) => {
      stderr += d;
      out += d;
      o.onStderr?.(stderr, p.pid!);
    });
    const t = setTimeout(() => {
      p.kill(o.stopSignal ?? 'SIGKILL');
      if (o.stopSignal && o.stopSignal !== 'SIGKILL') setTimeout(() => p.kill('SIGKILL'), 20_000).unref();
      reject(new Error(`pushctl ${args.join(' ')} did not finish:\n${out}`));
    }, o.timeoutMs ?? 120_000);
    p.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr, out });
    });
  });
}
