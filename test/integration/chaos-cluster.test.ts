// pushctl chaos against a cluster `pushctl up --detach` started: process
// faults (pause/resume, restart, kill) on a gateway, a proxy put in front of a
// role by name, and `chaos exec` reaching the cluster's own 127.0.0.1 URLs from
// inside its namespace through the shaped link (root for the last part).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFaults, startFaultSchedule } from '../../cli/lib/chaos/schedule.ts';
import { isAlive } from '../../cli/lib/processes.ts';
import type { ClusterState } from '../../cli/lib/state-file.ts';
import { pushctl as runPushctl } from '../helpers/pushctl.ts';

const pushctl = (args: string[], timeoutMs = 90_000) => runPushctl(args, { timeoutMs });

const ROOT = fileURLToPath(new URL('../..', import.meta.url));


async function healthy(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(700) })).ok;
  } catch {
    return false;
  }
}

async function until(cond: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function upCluster(t: TestContext): Promise<{ dir: string; state: () => ClusterState }> {
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-chaos-up-'));
  t.after(async () => {
    await pushctl(['chaos', 'off', '--data-dir', dir]);
    if (existsSync(join(dir, 'cluster.json'))) await pushctl(['down', '--data-dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const up = await pushctl(['up', '--detach', '--port-base', '0', '--servers', '1', '--gateways', '2', '--symbols', '3', '--data-dir', dir]);
  assert.equal(up.code, 0, up.out);
  return { dir, state: () => JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as ClusterState };
}

test('process faults: pause/resume, restart (new pid recorded, same port), kill; down stops the restarted one', { timeout: 180_000 }, async (t) => {
  const { dir, state } = await upCluster(t);
  const gw = state().roles.find((r) => r.id === 'gateway-1')!;
  assert.ok(gw, `gateway-1 in ${state().roles.map((r) => r.id)}`);
  const before = state().processes.find((p) => p.id === 'gateway-1')!;

  const pause = await pushctl(['chaos', 'pause', 'gateway-1', '--data-dir', dir]);
  assert.equal(pause.code, 0, pause.out);
  assert.equal(await healthy(gw.healthUrl.replace(/\/healthz$/, '')), false, 'a paused gateway does not answer');
  const resume = await pushctl(['chaos', 'resume', 'gateway-1', '--data-dir', dir]);
  assert.equal(resume.code, 0, resume.out);
  await until(() => healthy(gw.healthUrl.replace(/\/healthz$/, '')), 10_000, 'the resumed gateway to answer');

  const restart = await pushctl(['chaos', 'restart', 'gateway-1', '--data-dir', dir]);
  assert.equal(restart.code, 0, restart.out);
  const after = state().processes.find((p) => p.id === 'gateway-1')!;
  assert.notEqual(after.pid, before.pid);
  assert.equal(isAlive(before.pid, before.startTime), false, 'the old process is gone');
  await until(() => healthy(gw.healthUrl.replace(/\/healthz$/, '')), 20_000, 'the restarted gateway to answer on its port');

  const kill = await pushctl(['chaos', 'kill', 'gateway-2', '--data-dir', dir]);
  assert.equal(kill.code, 0, kill.out);
  const g2 = state().processes.find((p) => p.id === 'gateway-2')!;
  assert.equal(isAlive(g2.pid, g2.startTime), false);
  const unknown = await pushctl(['chaos', 'kill', 'gateway-9', '--data-dir', dir]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.out, /no role gateway-9 .*roles: .*gateway-1/);

  const down = await pushctl(['down', '--data-dir', dir]);
  assert.equal(down.code, 0, down.out);
  assert.equal(isAlive(after.pid, after.startTime), false, 'down stopped the restarted gateway');
});

test('a role by name gets a proxy in front; chaos exec reaches the cluster at 127.0.0.1 from inside its namespace', { timeout: 180_000 }, async (t) => {
  const { dir, state } = await upCluster(t);
  const apply = spawn(process.execPath, ['bin/run.js', 'chaos', 'apply', 'rtt-100ms', '--target', 'router', '--data-dir', dir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (apply.exitCode === null) apply.kill('SIGKILL');
  });
  let out = '';
  apply.stdout.on('data', (d) => (out += d));
  apply.stderr.on('data', (d) => (out += d));
  await until(() => /session \w+ active/.test(out), 20_000, `chaos apply to be active:\n${out}`);
  const m = /proxy (127\.0\.0\.1:\d+) → 127\.0\.0\.1:(\d+)/.exec(out);
  assert.ok(m, out);
  assert.equal(m[2], new URL(state().endpoints.routers[0]!).port);
  const t0 = performance.now();
  const res = await fetch(`http://${m[1]}/v1/gateways?protocol=ws`);
  assert.equal(res.status, 200);
  assert.ok(performance.now() - t0 >= 90, 'the request went through the 100 ms round trip');
  apply.kill('SIGINT'); // Ctrl-C
  await new Promise<void>((r) => apply.once('exit', () => r()));
  assert.match(out, /chaos: SIGINT: undoing session/);
  assert.match(out, /everything undone/);

  if (process.getuid?.() !== 0) {
    t.diagnostic('not root: the chaos exec part needs a network namespace and is not run');
    return;
  }
  // Inside the namespace the router's own URL (127.0.0.1:port) works, through the veth and the host-side proxy.
  const router = state().endpoints.routers[0]!;
  const script = `const r = await fetch('${router}/v1/gateways?protocol=ws'); const b = await r.json(); console.log(JSON.stringify({ status: r.status, n: b.gateways.length, host: process.env.PUSHCTL_CHAOS_HOST, netns: process.env.PUSHCTL_CHAOS_NETNS }));`;
  const exec = spawnSync(process.execPath, ['bin/run.js', 'chaos', 'exec', 'rtt-100ms', '--quiet', '--data-dir', dir, '--', process.execPath, '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(exec.status, 0, `${exec.stdout}${exec.stderr}`);
  const got = JSON.parse(exec.stdout.trim().split('\n').pop()!) as { status: number; n: number; host: string; netns: string };
  assert.equal(got.status, 200);
  assert.equal(got.n, 2);
  assert.match(got.host, /^10\.200\.\d+\.1$/);
  assert.match(got.netns, /^mpchaos-[0-9a-f]{6}$/);
  assert.equal(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.includes(got.netns), false, 'exec undid its namespace');

  // A scenario's fault schedule: kill gateway-2 at 200 ms; the router stops listing it once its heartbeat expires.
  const run = startFaultSchedule(parseFaults([{ at: '200ms', kill: 'gateway-2' }]), { dataDir: dir });
  t.after(() => run.stop());
  await run.settled;
  assert.ok(run.events[0]!.ok && run.events[0]!.startedMs! >= 190, JSON.stringify(run.events[0]));
  assert.match(run.events[0]!.message, /killed gateway-2/);
  await until(async () => {
    const r = (await (await fetch(`${router}/v1/gateways?protocol=ws`)).json()) as { gateways: unknown[] };
    return r.gateways.length === 1;
  }, 30_000, 'the router to drop the killed gateway');
});

test('apply --detach returns once active; status shows the session; off stops its holder and undoes it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-chaos-detach-'));
  t.after(async () => {
    await pushctl(['chaos', 'off', '--data-dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const a = await pushctl(['chaos', 'apply', 'partition-reset', '--target', 'tcp:127.0.0.1:9', '--detach', '--data-dir', dir]);
  assert.equal(a.code, 0, a.out);
  const holder = Number(/held by pid (\d+)/.exec(a.out)?.[1]);
  assert.ok(isAlive(holder), a.out);
  const s = await pushctl(['chaos', 'status', '--json', '--data-dir', dir]);
  const { sessions } = JSON.parse(s.out) as { sessions: Array<{ ownerPid: number; report: Array<{ field: string; backend: string }> }> };
  assert.equal(sessions.length, 1);
  assert.equal(sessions[0]!.ownerPid, holder);
  assert.deepEqual(sessions[0]!.report.map((r) => [r.field, r.backend]), [['partition', 'proxy']]);
  const off = await pushctl(['chaos', 'off', '--data-dir', dir]);
  assert.equal(off.code, 0, off.out);
  assert.match(off.out, /everything undone/);
  await until(() => !isAlive(holder), 5_000, 'the holder to exit');
  assert.equal(existsSync(join(dir, 'chaos.json')), false);
});
