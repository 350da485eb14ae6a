// The README runs as written. Its client section is extracted and every
// command in it is run by a shell, unchanged, against a cluster that `npx
// pushctl up` started the way the README says (default ports, default data
// dir: HOME is a scratch folder here); the commands that need a `--tls`
// cluster run against one. The benchmark section's commands are long runs:
// each is checked to name an npm script or bundled scenario that exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The shell commands of the ```sh blocks in the README section titled `title` (comments dropped). */
function commandsOf(title: string): string[] {
  const start = README.indexOf(`## ${title}`);
  assert.ok(start >= 0, `README has a "${title}" section`);
  const end = README.indexOf('\n## ', start + 3);
  const section = README.slice(start, end < 0 ? undefined : end);
  const out: string[] = [];
  for (const block of section.matchAll(/```sh\n([\s\S]*?)```/g))
    for (const line of block[1]!.split('\n')) if (line.trim() && !line.trim().startsWith('#')) out.push(line.trim());
  return out;
}

interface Ran {
  code: number | null;
  out: string;
  timedOut: boolean;
}

/**
 * Runs one README line in bash, as a user would paste it, from the checkout; a
 * line that streams forever is stopped (Ctrl-C) after `ms`, or a second after
 * its output first matches `enough` (a loaded machine starts npx slowly).
 */
function sh(line: string, env: NodeJS.ProcessEnv, ms: number, enough?: RegExp): Promise<Ran> {
  return new Promise((resolve) => {
    const p = spawn('bash', ['-c', line], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    let timedOut = false;
    const stop = () => {
      timedOut = true;
      try {
        process.kill(-p.pid!, 'SIGINT'); // Ctrl-C, as the README says, to the whole pipeline
      } catch {
        // already gone
      }
    };
    let t = setTimeout(stop, ms);
    const onData = (d: Buffer) => {
      out += d;
      if (enough && enough.test(out)) {
        enough = undefined;
        clearTimeout(t);
        t = setTimeout(stop, 1_000);
      }
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    p.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out, timedOut });
    });
  });
}

test('README: every client-section command runs as written against `npx pushctl up`', { timeout: 280_000 }, async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'mp-readme-home-'));
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  delete env.PUSHCTL_HOME;
  const dataDir = join(home, '.pushctl', 'default');
  t.after(async () => {
    if (existsSync(join(dataDir, 'cluster.json'))) await sh('npx pushctl down', env, 60_000);
    rmSync(home, { recursive: true, force: true });
  });
  const lines = commandsOf('Using it as a client');
  assert.ok(lines.length >= 5, `client commands found: ${lines.join(' | ')}`);
  const tlsLines = lines.filter((l) => l.includes('https://') || l.includes('wss://'));
  const plainLines = lines.filter((l) => !tlsLines.includes(l));

  const up = await sh('npx pushctl up --detach --symbols 5', env, 120_000);
  assert.equal(up.code, 0, `npx pushctl up --detach:\n${up.out}`);
  assert.match(up.out, /7100/, 'the README assumes the default port plan');
  for (const line of plainLines) {
    // `tail` without --count streams until Ctrl-C: it must have printed events by then.
    const streams = line.includes('pushctl tail') && !line.includes('--count');
    const r = streams ? await sh(line, env, 45_000, /"stream":"btcusdt@/) : await sh(line, env, 60_000);
    if (streams) assert.ok(r.timedOut, `${line} ended by itself:\n${r.out}`);
    else assert.equal(r.code, 0, `${line} exited ${r.code}:\n${r.out}`);
    assert.ok(r.out.trim().length > 0, `${line} printed nothing`);
    assert.doesNotMatch(r.out, /command not found|ECONNREFUSED|"error"|HTTP\/1\.1 [45]\d\d/, `${line}:\n${r.out}`);
    if (line.includes('pushctl tail')) assert.match(r.out, /"stream":"btcusdt@/, `${line} printed events:\n${r.out}`);
  }
  const down = await sh('npx pushctl down', env, 60_000);
  assert.equal(down.code, 0, down.out);

  // The TLS lines need the cluster started with --tls (its certificate in the default data dir).
  assert.ok(tlsLines.length >= 1, 'the README shows a TLS client');
  const upTls = await sh('npx pushctl up --detach --tls --symbols 5', env, 120_000);
  assert.equal(upTls.code, 0, `npx pushctl up --detach --tls:\n${upTls.out}`);
  for (const line of tlsLines) {
    const r = await sh(line, env, 60_000);
    assert.equal(r.code, 0, `${line} exited ${r.code}:\n${r.out}`);
    assert.match(r.out, /"gateways"/, `${line}:\n${r.out}`);
  }
});

test('README: every benchmark command names an npm script or a bundled scenario that exists', () => {
  const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const lines = commandsOf('Benchmarks');
  assert.ok(lines.length >= 5);
  for (const line of lines) {
    const cmd = line.split('#')[0]!.trim();
    const npmRun = /^npm run (\S+)/.exec(cmd);
    const bench = /^npx pushctl bench (\S+)/.exec(cmd);
    assert.ok(npmRun || bench, `"${cmd}": runs through npm or npx (the pinned Node), not a bare command`);
    if (npmRun) assert.ok(scripts[npmRun[1]!], `npm script ${npmRun[1]} exists`);
    if (bench) assert.ok(existsSync(join(ROOT, 'scenarios', `${bench[1]}.yaml`)), `bundled scenario ${bench[1]} exists`);
  }
  // The two commands of the front door.
  assert.match(README, /npm ci && npx pushctl up/);
  assert.match(README, /npm ci && npm test/);
  assert.match(scripts.test ?? '', /^(\w+=\S* )*node --test /, 'npm test runs node\'s test runner');
});
