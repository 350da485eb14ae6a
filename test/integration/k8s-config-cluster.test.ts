// The local overlay's rendered config, run: nats-server with the rendered
// nats.conf and the nats-auth Secret, and every role through the container
// entry point (deploy/container/role.ts) with its ConfigMap file and the
// market-push-secrets Secret, as the pods would — inside a network namespace
// made for the test (its own loopback, so the manifests' fixed ports are
// free; /etc/netns/<ns>/hosts resolves the Service names nats and
// push-router-admin to it). The cluster must form (gateway and server
// registered with the router, NATS users and permissions as rendered) and a
// WebSocket client must receive trades. No container runtime is involved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { writeSecretFiles } from '../../deploy/k8s/gen-secrets.ts';
import { nodeFlagsFor } from '../../system/common/node-flags.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
type Obj = { kind: string; metadata: { name: string }; data?: Record<string, string> };

function renderLocal(dir: string): Obj[] {
  cpSync(join(ROOT, 'deploy', 'k8s'), join(dir, 'k8s'), { recursive: true });
  writeSecretFiles(join(dir, 'k8s', 'overlays', 'local', 'secrets'), { natsReplicas: 1 });
  const r = spawnSync('kubectl', ['kustomize', join(dir, 'k8s', 'overlays', 'local')], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `kubectl kustomize: ${r.error?.message ?? r.stderr}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj).filter(Boolean);
}

const dataOf = (objs: Obj[], kind: 'ConfigMap' | 'Secret', prefix: string): Record<string, string> => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name.startsWith(`${prefix}-`));
  assert.ok(o?.data, `no ${kind} ${prefix}-*`);
  return kind === 'Secret' ? Object.fromEntries(Object.entries(o.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])) : o.data;
};

test('the local overlay\'s config forms a working cluster through the container entry point', { timeout: 240_000 }, async (t) => {
  if (process.getuid?.() !== 0) throw new Error('this test needs root (ip netns); CI runs as root');
  const dir = mkdtempSync(join(tmpdir(), 'mp-k8s-run-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const objs = renderLocal(dir);

  // A run that was killed before its cleanup left its namespace and hosts file: removed here.
  let stale: string[] = [];
  try {
    stale = readdirSync('/etc/netns').filter((d) => /^mpk8s-\d+$/.test(d));
  } catch {
    // no /etc/netns yet
  }
  for (const d of stale) {
    const pid = Number(d.slice('mpk8s-'.length));
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (alive) continue;
    spawnSync('ip', ['netns', 'del', d]);
    rmSync(`/etc/netns/${d}`, { recursive: true, force: true });
  }
  const ns = `mpk8s-${process.pid}`;
  assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0, 'ip netns add');
  const etc = `/etc/netns/${ns}`;
  t.after(() => {
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(etc, { recursive: true, force: true });
  });
  spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  mkdirSync(etc, { recursive: true });
  // `ip netns exec` bind-mounts this over /etc/hosts: the Service names resolve inside the namespace.
  writeFileSync(join(etc, 'hosts'), '127.0.0.1 localhost nats push-router-admin push-history nats-0.nats-headless\n');

  // NATS: the rendered nats.conf (only its two paths moved to the temp dir) and the nats-auth Secret.
  const natsDir = join(dir, 'nats');
  mkdirSync(join(natsDir, 'auth'), { recursive: true });
  writeFileSync(
    join(natsDir, 'nats.conf'),
    dataOf(objs, 'ConfigMap', 'nats-config')['nats.conf']!.replace('/data/jetstream', join(natsDir, 'js')).replace('/var/run/nats.pid', join(natsDir, 'nats.pid')),
  );
  for (const [k, v] of Object.entries(dataOf(objs, 'Secret', 'nats-auth'))) writeFileSync(join(natsDir, 'auth', k), v, { mode: 0o600 });
  // The roles: the ConfigMap files (the server's history volume path moved to the temp dir) and the secrets file, mode 0600 as the init container makes it.
  const cfgDir = join(dir, 'config');
  mkdirSync(cfgDir);
  for (const [file, text] of Object.entries(dataOf(objs, 'ConfigMap', 'market-push-config')))
    writeFileSync(join(cfgDir, file), text.replace('/var/lib/market-push/history.sqlite', join(dir, 'history.sqlite')));
  const secretsFile = join(dir, 'secrets.json');
  const secretsJson = dataOf(objs, 'Secret', 'market-push-secrets')['secrets.json']!;
  writeFileSync(secretsFile, secretsJson, { mode: 0o600 });
  chmodSync(secretsFile, 0o600);
  const adminToken = (JSON.parse(secretsJson) as { adminToken: string }).adminToken;

  const children: Array<{ name: string; child: ChildProcess; out: () => string }> = [];
  t.after(async () => {
    for (const { child } of [...children].reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await new Promise((r) => child.once('exit', r));
      clearTimeout(killer);
    }
  });
  const start = (name: string, argv: string[], env: Record<string, string>, ready: RegExp): Promise<void> => {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PUSH_EXIT_WITH_PARENT: '1', ...env } });
    let out = '';
    children.push({ name, child, out: () => out });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} not ready in 60 s:\n${out}`)), 60_000);
      const onText = (d: Buffer) => {
        out += d.toString();
        if (ready.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onText);
      child.stderr!.on('data', onText);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited ${code}:\n${out}\n${children.filter((c) => c.name !== name).map((c) => `--- ${c.name} ---\n${c.out().slice(-3000)}`).join('\n')}`));
      });
    });
  };
  const role = (r: string, podName: string) =>
    start(r, [process.execPath, ...nodeFlagsFor(r), 'deploy/container/role.ts', r], { MP_CONFIG_FILE: join(cfgDir, `${r}.json`), POD_NAME: podName, POD_IP: '127.0.0.1', MP_SECRETS_FILE: secretsFile }, /"ready":true/);

  await start('nats', ['nats-server', '-c', join(natsDir, 'nats.conf')], { POD_NAME: 'nats-0' }, /Server is ready/);
  await role('router', 'push-router-7d9f-abcde');
  await Promise.all([role('server', 'push-server-0'), role('feed', 'push-feed-5c6d-fghij'), role('control', 'push-control-6b7c-klmno')]);
  await role('gateway', 'push-gateway-pqrst');
  await role('history', 'push-history-7f8e-uvwxy');

  // Inside the namespace: the registry lists the gateway and the server under their pod names, the
  // router hands out the gateway, and a WebSocket client on it receives trades.
  const check = `
    const auth = { authorization: 'Bearer ' + process.env.ADMIN_TOKEN };
    const deadline = Date.now() + 60000;
    let ids = [];
    while (Date.now() < deadline) {
      try {
        const r = await fetch('http://127.0.0.1:8100/v1/nodes', { headers: auth });
        ids = (await r.json()).nodes.map((n) => n.id);
        if (ids.includes('push-gateway-pqrst') && ids.includes('push-server-0')) break;
      } catch {}
      await new Promise((r) => setTimeout(r, 500));
    }
    let gw;
    while (Date.now() < deadline && !gw) {
      const r = await fetch('http://127.0.0.1:7100/v1/gateways?protocol=ws');
      if (r.ok) gw = (await r.json()).gateways[0];
      else await new Promise((r) => setTimeout(r, 500));
    }
    const trade = await new Promise((resolve, reject) => {
      const ws = new WebSocket(gw.url + '/ws/btcusdt@trade');
      const timer = setTimeout(() => reject(new Error('no trade in 30 s')), 30000);
      ws.onmessage = (m) => { clearTimeout(timer); ws.close(); resolve(JSON.parse(m.data)); };
      ws.onerror = (e) => reject(new Error('websocket error ' + (e.message ?? '')));
    });
    // The REST host: listed by the router, answers klines itself and forwards the other market routes.
    const rest = (await (await fetch('http://127.0.0.1:7100/v1/rest')).json()).rest;
    let klines = [];
    const klinesBy = Date.now() + 30000;
    while (Date.now() < klinesBy) {
      const r = await fetch(rest[0] + '/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=5');
      if (r.ok) { klines = await r.json(); if (klines.length > 0) break; }
      await new Promise((r) => setTimeout(r, 500));
    }
    const ticker = await (await fetch(rest[0] + '/api/v3/ticker/24hr?symbol=BTCUSDT')).json();
    process.stdout.write(JSON.stringify({ ids, gateway: gw.id, trade, rest, klines, ticker }) + '\\n');
  `;
  const checker = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', check], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ADMIN_TOKEN: adminToken },
  });
  const logs = () => children.map((c) => `--- ${c.name} ---\n${c.out().slice(-2000)}`).join('\n');
  assert.equal(checker.status, 0, `check inside ${ns} failed: ${checker.stderr}\n${logs()}`);
  const result = JSON.parse(checker.stdout.trim().split('\n').pop()!) as {
    ids: string[]; gateway: string; trade: { e: string; s: string }; rest: string[]; klines: unknown[][]; ticker: { symbol: string; lastPrice: string };
  };
  for (const id of ['push-router-7d9f-abcde', 'push-gateway-pqrst', 'push-server-0']) assert.ok(result.ids.includes(id), `registry lists ${id}: ${result.ids.join(', ')}`);
  assert.equal(result.gateway, 'push-gateway-pqrst');
  assert.deepEqual([result.trade.e, result.trade.s], ['trade', 'BTCUSDT']);
  assert.deepEqual(result.rest, ['http://push-history:8200'], 'the router lists the REST host Service');
  assert.ok(result.klines.length > 0 && typeof result.klines[0]![1] === 'string', `klines from the REST host: ${JSON.stringify(result.klines).slice(0, 200)}`);
  assert.equal(result.ticker.symbol, 'BTCUSDT', `ticker/24hr forwarded by the REST host: ${JSON.stringify(result.ticker)}`);
  // Every role logged its open-file limit at start.
  for (const c of children.filter((x) => x.name !== 'nats')) assert.match(c.out(), /"msg":"open files limit"/, `${c.name} logged its fd limit`);
});
