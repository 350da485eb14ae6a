// Runs the pushctl CLI (bin/run.js) as a child process for integration tests:
// its exit code and output, killed (and the promise rejected) if it outlives
// the timeout.
import { spawn } from 'node:child_process';
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

export function pushctl(args: string[], o: { timeoutMs?: number; onStderr?: (text: string, pid: number) => void } = {}): Promise<PushctlRun> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin', 'run.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
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
      p.kill('SIGKILL');
      reject(new Error(`pushctl ${args.join(' ')} did not finish:\n${out}`));
    }, o.timeoutMs ?? 120_000);
    p.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr, out });
    });
  });
}
