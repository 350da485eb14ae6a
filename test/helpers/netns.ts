// A node script run inside a network namespace for integration tests:
// its first stdout line (e.g. "ready"), and everything it printed once it exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';

export function inNetns(t: TestContext, netns: string, script: string): { child: ChildProcess; firstLine: Promise<string>; output: Promise<string> } {
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let all = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const rl = createInterface({ input: child.stdout! });
  const firstLine = new Promise<string>((resolve, reject) => {
    rl.once('line', resolve);
    child.once('exit', (c) => reject(new Error(`script in ${netns} exited ${c}: ${err}`)));
  });
  rl.on('line', (l) => (all += l + '\n'));
  const output = new Promise<string>((resolve) => child.once('exit', () => resolve(all)));
  return { child, firstLine, output };
}
