// Issue 11, the control plane: every attack below is run as an outsider
// (no token, or a made-up one) against real roles on a real nats-server, and
// must be refused with the cluster left as it was; the operator's admin token
// still works. Also: `pushctl up` generates the secrets (0600) and every port
// its processes listen on is in its printed port plan.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { adminHeaders, clusterHeaders, startCluster, startRole, waitFor } from '../helpers/cluster.ts';
import { http } from '../helpers/role-http.ts';
import { pushctl } from '../helpers/pushctl.ts';
import { TestClient } from '../helpers/ws-client.ts';

const NONE = 'none' as const;
const WRONG = { authorization: 'Bearer mpa_not-the-real-token-at-all-0000000000' };
const fakeGateway = {
  id: 'gateway-evil',
  role: 'gateway',
  urls: { ws: 'ws://203.0.113.66:80', http: 'http://203.0.113.66:80' },
  protocols: ['ws'],
  load: { connections: 0 },
};
/** Internals an error body must never carry. */
const assertNoInternals = (body: unknown) => {
  const text = JSON.stringify(body);
  assert.doesNotMatch(text, /Unexpected token|JSON at position|at \w+ \(|node:internal|\.ts:\d+/, `body leaks internals: ${text}`);
};

test('control plane: attacks from outside the credentials are refused', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster({ servers: 1, gateways: 1, symbols: 2, rate: 5 });
  t.after(() => cluster.stop());
  const gw = cluster.gateways[0]!;
  const router = cluster.routerUrl;
  const registry = cluster.routerAdminUrl;
  const gatewayIds = async () => ((await http('GET', `${router}/v1/gateways?limit=50`, undefined, NONE)).json.gateways as { id: string }[]).map((g) => g.id);
  const listed = async () => ((await http('GET', `${registry}/v1/nodes`)).json.nodes as { id: string }[]).map((n) => n.id);

  await t.test('spoofed heartbeat: refused on both router ports, the fake gateway is never handed out', async () => {
    assert.equal((await http('POST', `${router}/v1/heartbeat`, fakeGateway, NONE)).status, 404, 'no registry on the client port');
    const bare = await http('POST', `${registry}/v1/heartbeat`, fakeGateway, NONE);
    assert.equal(bare.status, 401);
    assertNoInternals(bare.json);
    assert.equal((await http('POST', `${registry}/v1/heartbeat`, fakeGateway, WRONG)).status, 401);
    for (let i = 0; i < 5; i++) assert.ok(!(await gatewayIds()).includes('gateway-evil'));
    assert.ok(!(await listed()).includes('gateway-evil'));
    assert.deepEqual(await gatewayIds(), ['gateway-1']);
  });

  await t.test('DELETE /v1/nodes/<real gateway>: refused, the gateway stays listed', async () => {
    assert.equal((await http('DELETE', `${router}/v1/nodes/gateway-1`, undefined, NONE)).status, 404);
    assert.equal((await http('DELETE', `${registry}/v1/nodes/gateway-1`, undefined, NONE)).status, 401);
    assert.equal((await http('DELETE', `${registry}/v1/nodes/gateway-1`, undefined, WRONG)).status, 401);
    assert.ok((await listed()).includes('gateway-1'));
    assert.ok((await gatewayIds()).includes('gateway-1'));
  });

  await t.test('the cluster token may register but not act as the operator', async () => {
    const drain = await http('POST', `${registry}/admin/drain`, { draining: true }, clusterHeaders());
    assert.equal(drain.status, 403);
    assertNoInternals(drain.json);
    assert.equal((await http('GET', `${registry}/stats`, undefined, clusterHeaders())).status, 403);
    assert.equal((await http('POST', `${gw.urls.admin}/admin/config`, { maxConnections: 5 }, clusterHeaders())).status, 403);
    assert.equal((await http('GET', `${registry}/v1/servers`, undefined, clusterHeaders())).status, 200, 'a role lookup works');
  });

  const clients = await Promise.all([1, 2, 3].map(async () => {
    const c = new TestClient(`${gw.urls.ws}/ws/btcusdt@trade`);
    await c.opened;
    return c;
  }));
  t.after(() => clients.forEach((c) => c.close()));

  await t.test('drain and config on the gateway: 404 on the client port, 401 without or with a wrong token; clients stay', async () => {
    for (const [path, body] of [['/admin/drain', { draining: true }], ['/admin/config', { maxConnections: 5 }]] as const) {
      assert.equal((await http('POST', `${gw.urls.http}${path}`, body, NONE)).status, 404, `${path} on the client port`);
      assert.equal((await http('POST', `${gw.urls.http}${path}`, body, adminHeaders())).status, 404, `${path} on the client port, even with the token`);
      assert.equal((await http('POST', `${gw.urls.admin}${path}`, body, NONE)).status, 401);
      assert.equal((await http('POST', `${gw.urls.admin}${path}`, body, WRONG)).status, 401);
    }
    assert.equal((await http('GET', `${gw.urls.http}/stats`, undefined, NONE)).status, 404);
    assert.equal((await http('GET', `${gw.urls.admin}/stats`, undefined, NONE)).status, 401);
    const health = (await http('GET', `${gw.urls.http}/healthz`, undefined, NONE)).json;
    assert.equal(health.servers, undefined, 'client /healthz shows no topology');
    // Still connected, still fed, and new clients still admitted (maxConnections was not set to 5).
    const before = clients.map((c) => c.json.length);
    await waitFor(() => clients.every((c, i) => c.json.length > before[i]!), 10_000, 'clients still receiving');
    assert.ok(clients.every((c) => c.ws.readyState === WebSocket.OPEN));
    assert.equal((await http('GET', `${gw.urls.admin}/stats`)).json.draining, false);
  });

  await t.test('live config: bad values get 400 with the reason; acceptRate is applied (measured)', async () => {
    for (const bad of [{ acceptRate: -5 }, { acceptRate: 0 }, { acceptRate: 'fast' }, { acceptRate: 1.5 }, { maxConnections: 0 }, { bogus: 1 }, [1]]) {
      const r = await http('POST', `${gw.urls.admin}/admin/config`, bad);
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.match(r.json.error, /acceptRate|maxConnections|bogus|object/);
    }
    const broken = await http('POST', `${gw.urls.admin}/admin/config`, '{"acceptRate": ');
    assert.equal(broken.status, 400);
    assert.deepEqual(broken.json, { error: 'request body is not valid JSON' });
    const ok = await http('POST', `${gw.urls.admin}/admin/config`, { acceptRate: 20 });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.acceptRate, 20);
    // 60 connects at once: a bucket of 20/s (burst 20) admits about 20 in the first second; the default 2000/s would admit all.
    const started = Date.now();
    const attempts = await Promise.all(Array.from({ length: 60 }, () => new Promise<WebSocket | undefined>((resolve) => {
      const ws = new WebSocket(`${gw.urls.ws}/ws/btcusdt@trade`, { perMessageDeflate: false });
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_q, res) => { res.resume(); resolve(undefined); });
      ws.once('error', () => resolve(undefined));
    })));
    const elapsed = Date.now() - started;
    const admitted = attempts.filter((w) => w !== undefined);
    attempts.forEach((w) => w?.terminate());
    t.diagnostic(`acceptRate 20/s: ${admitted.length} of 60 admitted in ${elapsed} ms`);
    assert.ok(elapsed < 1_000 || admitted.length <= 20 + Math.ceil((elapsed / 1000) * 20), `too many admitted: ${admitted.length} in ${elapsed} ms`);
    assert.ok(admitted.length >= 15 && admitted.length <= 40, `admitted ${admitted.length}`);
    assert.equal((await http('POST', `${gw.urls.admin}/admin/config`, { acceptRate: 2000 })).status, 200);
  });

  await t.test('the operator\'s admin token works: drain drains', async () => {
    const r = await http('POST', `${gw.urls.admin}/admin/drain`, { draining: true });
    assert.equal(r.status, 200);
    assert.equal(r.json.draining, true);
    await Promise.all(clients.map((c) => c.closed));
    assert.ok(clients.every((c) => c.closeCode === 4002), `close codes ${clients.map((c) => c.closeCode).join()}`);
    await waitFor(async () => !(await gatewayIds().catch(() => ['gateway-1'])).includes('gateway-1'), 5_000, 'drained gateway no longer handed out');
  });

  await t.test('a role without secrets refuses every admin action, whatever the token', async () => {
    const bare = await startRole('router', { id: 'router-bare', nats: cluster.nats.url, port: 0, adminPort: 0, secretsFile: null });
    try {
      for (const auth of [NONE, adminHeaders(), WRONG]) {
        const r = await http('POST', `${bare.urls.admin}/admin/drain`, { draining: true }, auth);
        assert.equal(r.status, 403);
        assert.match(r.json.error, /no admin credential/);
      }
      assert.equal((await http('GET', `${bare.urls.admin}/stats`, undefined, NONE)).status, 403);
    } finally {
      await bare.kill();
    }
  });
});

test('pushctl up generates 0600 secrets; status --json works with them; every listening port is in the plan', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mp-plane-'));
  t.after(async () => {
    await pushctl(['down', '--data-dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const up = await pushctl(['up', '--detach', '--json', '--port-base', '0', '--servers', '1', '--gateways', '1', '--symbols', '2', '--data-dir', dir], { timeoutMs: 150_000 });
  assert.equal(up.code, 0, up.out);
  const info = JSON.parse(up.stdout.trim().split('\n').pop()!) as {
    secretsFile: string;
    listeners: Array<{ id: string; protocol: string; address: string; audience: string }>;
    pids: Record<string, number>;
    gateways: Array<{ admin: string; http: string; tcp?: string; grpc?: string }>;
  };
  assert.equal(info.secretsFile, join(dir, 'secrets.json'));
  assert.equal(statSync(info.secretsFile).mode & 0o777, 0o600);
  assert.ok(info.gateways[0]!.tcp && info.gateways[0]!.grpc && info.gateways[0]!.admin, 'gateway tcp, grpc and admin ports are planned');

  const status = await pushctl(['status', '--json', '--data-dir', dir], { timeoutMs: 30_000 });
  assert.equal(status.code, 0, status.out);
  const snap = JSON.parse(status.stdout) as { nodes: Array<{ id: string; health: string }>; error?: string };
  assert.equal(snap.error, undefined);
  assert.ok(snap.nodes.some((n) => n.id === 'gateway-1' && n.health === 'ok'), status.stdout);

  // Control itself refuses the outsider.
  const control = info.listeners.find((l) => l.id === 'control-1')!.address;
  assert.equal((await fetch(`${control}/v1/topology`)).status, 401);

  // Every TCP port a cluster process listens on is one the plan printed.
  const planned = new Set(info.listeners.map((l) => Number(/:(\d+)$/.exec(l.address.replace(/\/$/, ''))![1])));
  const pids = new Set(Object.values(info.pids));
  const ss = spawnSync('ss', ['-Htlnp'], { encoding: 'utf8' });
  assert.equal(ss.status, 0, ss.stderr);
  const used: number[] = [];
  for (const line of ss.stdout.split('\n')) {
    const pid = /pid=(\d+)/.exec(line)?.[1];
    if (!pid || !pids.has(Number(pid))) continue;
    used.push(Number(/:(\d+)\s/.exec(line.split(/\s+/).slice(3).join(' '))?.[1]));
  }
  assert.ok(used.length >= 10, `listening ports found: ${used.join(', ')}`);
  for (const port of used) assert.ok(planned.has(port), `port ${port} is listened on but not in the plan (${[...planned].join(', ')})`);
});
