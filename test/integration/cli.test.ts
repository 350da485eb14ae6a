// pushctl up / status / down against the real roles, real nats-server and
// redis-server from PATH, on free ports and a temporary data dir.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isAlive } from '../../cli/lib/processes.ts';
import { nodeFlagsFor } from '../../system/common/node-flags.ts';
import type { ClusterState } from '../../cli/lib/state-file.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SMALL = ['--port-base', '0', '--servers', '1', '--gateways', '1', '--symbols', '3'];

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 75_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/run.js', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pushctl ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A temp data dir; afterwards anything still recorded there is stopped and the dir removed. */
function dataDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-it-'));
  t.after(async () => {
    if (existsSync(join(dir, 'cluster.json'))) await runCli(['down', '--data-dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

const readState = (dir: string) => JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as ClusterState;

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
  assert.equal(res.status, 200, `GET ${url}`);
  return (await res.json()) as T;
}

async function assertAllGone(state: ClusterState): Promise<void> {
  assert.ok(state.processes.length > 0);
  const alive = state.processes.filter((p) => isAlive(p.pid, p.startTime)).map((p) => `${p.id}=${p.pid}`);
  assert.deepEqual(alive, [], 'processes left behind');
}

test('up --detach --json, status --json, down: full process cluster on nats-server and redis-server', { timeout: 120_000 }, async (t) => {
  const dir = dataDir(t);
  const up = await runCli(['up', '--detach', '--json', ...SMALL, '--data-dir', dir]);
  assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
  const out = JSON.parse(up.stdout.trim().split('\n').at(-1)!) as {
    mode: string;
    router: string;
    control: string;
    gateways: Array<{ id: string; ws: string; http: string }>;
    nats: string;
    redis: string;
    embedded: string[];
  };
  assert.equal(out.mode, 'processes');
  assert.match(out.router, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(out.control, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(out.gateways[0]!.ws, /^ws:\/\/127\.0\.0\.1:\d+/);
  assert.match(out.nats, /^nats:\/\/127\.0\.0\.1:\d+$/);
  assert.match(out.redis, /^redis:\/\/127\.0\.0\.1:\d+$/);
  assert.deepEqual(out.embedded, []);

  const state = readState(dir);
  assert.equal(state.status, 'running');
  assert.deepEqual(state.processes.map((p) => p.id).sort(), ['control-1', 'feed-1', 'gateway-1', 'history-1', 'nats', 'redis', 'router-1', 'server-1']);

  const gws = await getJson<{ gateways: Array<{ id: string; url: string }> }>(`${out.router}/v1/gateways?protocol=ws`);
  assert.deepEqual(gws.gateways.map((g) => g.id), ['gateway-1']);

  // A second up on the same data dir refuses.
  const again = await runCli(['up', '--detach', ...SMALL, '--data-dir', dir]);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /already running/);

  const status = await runCli(['status', '--json', '--data-dir', dir]);
  assert.equal(status.code, 0, status.stderr);
  const st = JSON.parse(status.stdout) as { nodes: Array<{ id: string; role: string; address: string; health: string }> };
  const ids = st.nodes.map((n) => n.id);
  for (const id of ['router-1', 'control-1', 'server-1', 'gateway-1', 'history-1', 'feed-1']) assert.ok(ids.includes(id), `status lacks ${id}: ${ids}`);
  const roles = new Set(st.nodes.map((n) => n.role));
  assert.deepEqual([...roles].sort(), ['control', 'feed', 'gateway', 'history', 'router', 'server']);
  assert.equal(st.nodes.find((n) => n.id === 'gateway-1')!.address, out.gateways[0]!.ws);

  const down = await runCli(['down', '--data-dir', dir]);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, /is down \(8 processes stopped\)/);
  assert.equal(existsSync(join(dir, 'cluster.json')), false);
  await assertAllGone(state);

  const downAgain = await runCli(['down', '--data-dir', dir]);
  assert.equal(downAgain.code, 0);
  assert.match(downAgain.stdout, /nothing to stop/);
});

test('foreground up shows the status table and stops every child on SIGINT', { timeout: 120_000 }, async (t) => {
  const dir = dataDir(t);
  const child: ChildProcess = spawn(process.execPath, ['bin/run.js', 'up', ...SMALL, '--data-dir', dir], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));

  // Up once the plain (non-TTY) status table lists the gateway.
  const deadline = Date.now() + 75_000;
  while (!/total: /.test(stdout) || !/gateway-1/.test(stdout.slice(stdout.indexOf('ROLE')))) {
    if (child.exitCode !== null) assert.fail(`up exited early (${child.exitCode}):\n${stdout}\n${stderr}`);
    if (Date.now() > deadline) assert.fail(`no status table in time:\n${stdout}\n${stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.match(stdout, /cluster up in/);
  const state = readState(dir);
  assert.equal(state.detached, false);
  assert.equal(state.supervisorPid, child.pid);
  assert.ok(state.processes.every((p) => isAlive(p.pid, p.startTime)));
  // Each role runs with its V8 flags (system/common/node-flags.ts), e.g. the gateway's young-generation size.
  const gw = state.processes.find((p) => p.id.startsWith('gateway'))!;
  const argv = readFileSync(`/proc/${gw.pid}/cmdline`, 'utf8').split('\0');
  for (const f of nodeFlagsFor('gateway')) assert.ok(argv.includes(f), `${gw.id} runs with ${f}: ${argv.join(' ')}`);

  child.kill('SIGINT');
  assert.equal(await exited, 0, stderr);
  assert.match(stderr, /stopped/);
  assert.equal(existsSync(join(dir, 'cluster.json')), false);
  await assertAllGone(state);
});

test('embedded mode when PATH has no nats-server: one process, says so, router answers, down stops it', { timeout: 120_000 }, async (t) => {
  const dir = dataDir(t);
  const emptyBin = mkdtempSync(join(tmpdir(), 'pushctl-nobin-'));
  t.after(() => rmSync(emptyBin, { recursive: true, force: true }));
  const env = { ...process.env, PATH: emptyBin };

  const up = await runCli(['up', '--detach', ...SMALL, '--data-dir', dir], env);
  assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
  assert.match(up.stdout, /embedded: bus \(in-memory\), registry \(in-memory\), cache \(in-memory\)/);
  assert.match(up.stdout, /does not survive a stop \(kline history does: .*history\.sqlite\)/, 'the one thing that outlives a stop is named');
  assert.match(up.stdout, /install nats-server and redis-server, or pass --nats URL and --redis URL/);

  const state = readState(dir);
  assert.equal(state.mode, 'embedded');
  assert.deepEqual(state.processes.map((p) => p.id), ['embedded']);
  const router = state.endpoints.routers[0]!;
  await getJson(`${router}/healthz`);
  const gws = await getJson<{ gateways: Array<{ id: string }> }>(`${router}/v1/gateways?protocol=ws`);
  assert.deepEqual(gws.gateways.map((g) => g.id), ['gateway-1']);

  const down = await runCli(['down', '--data-dir', dir], env);
  assert.equal(down.code, 0, down.stderr);
  assert.equal(existsSync(join(dir, 'cluster.json')), false);
  await assertAllGone(state);
});

test('up refuses clearly when a planned port is taken', { timeout: 60_000 }, async (t) => {
  const dir = dataDir(t);
  const { createServer } = await import('node:net');
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => blocker.close(() => r())));
  const port = (blocker.address() as { port: number }).port;
  // The blocker sits where control (base + 90) would go.
  const base = port - 90;
  const up = await runCli(['up', '--detach', '--embedded', '--port-base', String(base), '--servers', '1', '--gateways', '1', '--data-dir', dir]);
  assert.equal(up.code, 1);
  assert.match(up.stderr, new RegExp(`ports? already in use: .*\\b${port} \\(control-1\\)`));
  assert.equal(existsSync(join(dir, 'cluster.json')), false);
});
