// Every role runs with its soft open-file limit at the hard limit and logs it:
// a role started with a low soft limit ends up at the hard one (Node's own
// start-up raises it), and when a process's soft limit is below the hard one
// after start, raiseFdLimit() raises it through util-linux prlimit — or says
// clearly why it could not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { readFdLimit } from '../../system/common/fd-limit.ts';
import { freePort } from '../helpers/servers.ts';
import { testSecrets } from '../helpers/cluster.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HARD = readFdLimit()!.hard;
const LOW = 256;

function firstLine(child: ChildProcess, what: string, match: (l: string) => boolean, timeoutMs = 30_000): Promise<string> {
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no line in ${timeoutMs} ms\n${err}`)), timeoutMs);
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (!match(l)) return;
      clearTimeout(timer);
      resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`${what} exited ${code}\n${err}`)));
  });
}

test('a role started with a low soft limit runs at the hard limit and logs it', async (t) => {
  assert.ok(HARD > LOW, `the hard limit here (${HARD}) must be above ${LOW} for this test to mean anything`);
  const dir = mkdtempSync(join(tmpdir(), 'mp-fdlimit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const logFile = join(dir, 'control.log');
  const port = await freePort();
  const config = { id: 'control-fd', port, logFile, secretsFile: testSecrets().file };
  // `prlimit --nofile=SOFT:HARD -- cmd` starts the role with the soft limit lowered, as a tight shell would.
  const child = spawn('prlimit', [`--nofile=${LOW}:${HARD}`, '--', process.execPath, 'system/control/main.ts', '--config', JSON.stringify(config)], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, PUSH_EXIT_WITH_PARENT: '1' },
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  const ready = JSON.parse(await firstLine(child, 'control', (l) => l.includes('"ready":true'))) as { pid: number };
  // prlimit execs the command: the pid is the role's.
  assert.deepEqual(readFdLimit(ready.pid), { soft: HARD, hard: HARD });
  // The log is written asynchronously: wait for the line (it is the role's first).
  let line: string | undefined;
  for (const deadline = Date.now() + 10_000; !line && Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    try {
      line = readFileSync(logFile, 'utf8').split('\n').find((l) => l.includes('"open files limit"'));
    } catch {
      // not created yet
    }
  }
  assert.ok(line, 'the role logged its open-file limit');
  const logged = JSON.parse(line) as { soft: number; hard: number; how: string };
  assert.equal(logged.soft, HARD);
  assert.equal(logged.hard, HARD);
  assert.ok(['already', 'prlimit'].includes(logged.how), logged.how);
});

/** A Node process that lowers nothing itself: the test lowers its soft limit from outside, then asks it to raise it. */
async function raiseInChild(env: NodeJS.ProcessEnv): Promise<{ soft: number; hard: number; before: number; how: string; error?: string }> {
  const script = `
    import { raiseFdLimit } from ${JSON.stringify(join(ROOT, 'system/common/fd-limit.ts'))};
    process.stdout.write('waiting\\n');
    process.stdin.once('data', () => { process.stdout.write(JSON.stringify(raiseFdLimit()) + '\\n'); process.exit(0); });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'pipe'], env });
  const lines = createInterface({ input: child.stdout! });
  const it = lines[Symbol.asyncIterator]();
  const first = await it.next();
  assert.equal(first.value, 'waiting');
  execFileSync('prlimit', ['--pid', String(child.pid), `--nofile=${LOW}:${HARD}`]);
  assert.deepEqual(readFdLimit(child.pid!), { soft: LOW, hard: HARD }, 'the soft limit was lowered from outside');
  child.stdin!.write('go\n');
  const answer = await it.next();
  await new Promise((r) => child.once('exit', r));
  return JSON.parse(String(answer.value));
}

test('raiseFdLimit raises a soft limit below the hard one with prlimit', async () => {
  const r = await raiseInChild(process.env);
  assert.deepEqual([r.before, r.soft, r.hard, r.how], [LOW, HARD, HARD, 'prlimit']);
});

test('without prlimit, raiseFdLimit says it failed and what to do, instead of pretending', async () => {
  const r = await raiseInChild({ ...process.env, PATH: '/nonexistent' });
  assert.equal(r.how, 'failed');
  assert.equal(r.soft, LOW);
  assert.match(r.error!, /prlimit: .*ENOENT.*util-linux.*ulimit -n/);
});
