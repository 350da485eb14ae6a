// push-control over a real router on a real nats-server: topology from the
// registry, and drain/config relayed to a node's own admin endpoint (here a
// tiny HTTP server standing in for the nodes, recording what reaches it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort, startNats } from '../helpers/servers.ts';
import { startHttpRole, http, waitForValue } from '../helpers/role-http.ts';
import type { NodeLoad, NodeRecord } from '../../system/common/registry.ts';
import { adminHeaders } from '../helpers/cluster.ts';


const startRole = startHttpRole;
const waitFor = waitForValue;


const load = (l: Partial<NodeLoad>): NodeLoad => ({
  connections: 0,
  subscriptions: 0,
  msgsInPerSec: 0,
  msgsOutPerSec: 0,
  cpu: 0,
  eventLoopP99Ms: 0,
  rssMb: 0,
  ...l,
});

interface AdminCall {
  path: string;
  body: unknown;
  /** The Authorization header control sent. */
  auth?: string | undefined;
}

/** Stands in for the nodes' admin endpoints: /<node>/admin/drain, /<node>/admin/config, /<node>/stats. */
async function startFakeNodes(): Promise<{ base: string; calls: AdminCall[]; close(): Promise<void> }> {
  const calls: AdminCall[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const [, node, ...rest] = (req.url ?? '/').split('/');
    const path = `/${rest.join('/')}`;
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== adminHeaders().authorization) return reply(401, { error: 'credential required' });
    if (req.method === 'GET' && path === '/stats') return reply(200, { fake: node });
    if (req.method !== 'POST') return reply(404, { error: 'no route' });
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
    calls.push({ path: req.url!, body });
    if (path === '/admin/drain') return reply(200, { ok: true, id: node, draining: body.draining });
    if (path === '/admin/config') {
      if ('bogus' in body) return reply(400, { error: 'bogus is not a setting' });
      if ('crash' in body) return reply(500, { error: 'it broke' });
      return reply(200, { ok: true, id: node, applied: body });
    }
    reply(404, { error: 'no route' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    calls,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

test('control: topology from the registry, drain and config reach the node', async (t) => {
  const nats = await startNats();
  t.after(() => nats.stop());
  const fake = await startFakeNodes();
  t.after(() => fake.close());
  const deadPort = await freePort(); // nothing listens here

  const router = await startRole('router', { id: 'router-1', port: await freePort(), nats: nats.url, expiryMs: 10_000, heartbeatMs: 300 });
  t.after(() => router.stop());
  // The first router listed is down: control must fall through to the next.
  const control = await startRole('control', {
    id: 'control-1',
    port: await freePort(),
    routers: [`http://127.0.0.1:${deadPort}`, router.adminUrl],
    heartbeatMs: 300,
  });
  t.after(() => control.stop());

  const nodes: Partial<NodeRecord>[] = [
    { id: 'gw-1', role: 'gateway', urls: { ws: 'ws://127.0.0.1:1', http: 'http://127.0.0.1:1', admin: `${fake.base}/gw-1` }, load: load({ connections: 10, subscriptions: 30, msgsOutPerSec: 100 }) },
    { id: 'gw-2', role: 'gateway', urls: { ws: 'ws://127.0.0.1:2', http: 'http://127.0.0.1:2', admin: `${fake.base}/gw-2` }, draining: true, load: load({ connections: 5, subscriptions: 7, msgsOutPerSec: 50 }) },
    { id: 'gw-dead', role: 'gateway', urls: { ws: 'ws://127.0.0.1:3', http: 'http://127.0.0.1:3', admin: `http://127.0.0.1:${deadPort}` } },
    { id: 'srv-1', role: 'server', urls: { grpc: '127.0.0.1:7300', admin: `${fake.base}/srv-1` }, load: load({ msgsInPerSec: 200 }) },
    { id: 'feed-1', role: 'feed', urls: { admin: `${fake.base}/feed-1` }, meta: { symbols: ['btcusdt'] } },
  ];
  for (const n of nodes) assert.equal((await http('POST', `${router.adminUrl}/v1/heartbeat`, n)).status, 200);
  // The fake nodes keep beating as real ones do: one silent for three beats (900 ms) is reported
  // unhealthy, and on a loaded machine the test can take that long to ask.
  const beat = setInterval(() => {
    for (const n of nodes) void http('POST', `${router.adminUrl}/v1/heartbeat`, n).catch(() => {});
  }, 250);
  t.after(() => clearInterval(beat));

  await t.test('every control action needs the admin token', async () => {
    assert.equal((await http('GET', `${control.url}/v1/topology`, undefined, 'none')).status, 401);
    assert.equal((await http('POST', `${control.url}/v1/nodes/gw-1/drain`, undefined, 'none')).status, 401);
    assert.equal((await http('GET', `${control.url}/healthz`, undefined, 'none')).status, 200, 'health stays public');
    assert.equal(fake.calls.length, 0);
  });

  await t.test('topology lists every node with health and sums the load', async () => {
    const topo = await waitFor('control in the topology', async () => {
      const r = await http('GET', `${control.url}/v1/topology`);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      return r.json.summary.controls === 1 && r.json;
    });
    assert.deepEqual(topo.summary, {
      routers: 1,
      gateways: 3,
      servers: 1,
      feeds: 1,
      controls: 1,
      draining: 1,
      unhealthy: 0,
      connections: 15,
      subscriptions: 37,
      msgsInPerSec: 200,
      msgsOutPerSec: 150,
    });
    assert.equal(topo.router, router.adminUrl);
    assert.equal(typeof topo.at, 'number');
    assert.deepEqual(
      topo.nodes.map((n: { id: string }) => n.id),
      ['control-1', 'feed-1', 'gw-1', 'gw-2', 'gw-dead', 'router-1', 'srv-1'],
    );
    for (const n of topo.nodes) {
      assert.equal(n.healthy, true, n.id);
      assert.ok(n.ageMs >= 0, n.id);
      assert.equal(n.stats, undefined, 'stats only with ?detail=1');
    }
    assert.equal(topo.nodes.find((n: NodeRecord) => n.id === 'control-1').urls.http, control.url);
  });

  await t.test('?detail=1 attaches each node\'s /stats, or why it could not', async () => {
    const r = await http('GET', `${control.url}/v1/topology?detail=1`);
    const byId = new Map<string, any>(r.json.nodes.map((n: { id: string }) => [n.id, n]));
    assert.deepEqual(byId.get('gw-1').stats, { fake: 'gw-1' });
    assert.deepEqual(byId.get('srv-1').stats, { fake: 'srv-1' });
    assert.deepEqual(byId.get('feed-1').stats, { fake: 'feed-1' });
    assert.equal(byId.get('router-1').stats.role, 'router');
    assert.equal(byId.get('control-1').stats.role, 'control');
    assert.equal(byId.get('gw-dead').stats, undefined);
    assert.equal(typeof byId.get('gw-dead').statsError, 'string');
  });

  await t.test('drain and undrain reach the node\'s admin endpoint', async () => {
    const d = await http('POST', `${control.url}/v1/nodes/gw-1/drain`);
    assert.equal(d.status, 200, JSON.stringify(d.json));
    assert.deepEqual(d.json.answer, { ok: true, id: 'gw-1', draining: true });
    const u = await http('POST', `${control.url}/v1/nodes/srv-1/undrain`);
    assert.equal(u.status, 200);
    assert.deepEqual(u.json.answer, { ok: true, id: 'srv-1', draining: false });
    assert.deepEqual(fake.calls.splice(0), [
      { path: '/gw-1/admin/drain', body: { draining: true } },
      { path: '/srv-1/admin/drain', body: { draining: false } },
    ]);
  });

  await t.test('config is relayed as given; the node\'s refusal comes back', async () => {
    const ok = await http('POST', `${control.url}/v1/nodes/feed-1/config`, { rate: 5 });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json.answer, { ok: true, id: 'feed-1', applied: { rate: 5 } });
    const refused = await http('POST', `${control.url}/v1/nodes/feed-1/config`, { bogus: 1 });
    assert.equal(refused.status, 400);
    assert.match(refused.json.error, /feed-1.*400.*bogus is not a setting/);
    const broken = await http('POST', `${control.url}/v1/nodes/feed-1/config`, { crash: true });
    assert.equal(broken.status, 502);
    assert.match(broken.json.error, /it broke/);
    assert.deepEqual(fake.calls.splice(0), [
      { path: '/feed-1/admin/config', body: { rate: 5 } },
      { path: '/feed-1/admin/config', body: { bogus: 1 } },
      { path: '/feed-1/admin/config', body: { crash: true } },
    ]);
    const notObject = await http('POST', `${control.url}/v1/nodes/feed-1/config`, [1]);
    assert.equal(notObject.status, 400);
    assert.equal(fake.calls.length, 0, 'a bad body never reaches the node');
  });

  await t.test('unknown node is 404, a silent node is 502, unknown action is 404', async () => {
    const unknown = await http('POST', `${control.url}/v1/nodes/nope/drain`);
    assert.equal(unknown.status, 404);
    assert.match(unknown.json.error, /unknown node "nope"/);
    const silent = await http('POST', `${control.url}/v1/nodes/gw-dead/drain`);
    assert.equal(silent.status, 502);
    assert.match(silent.json.error, /gw-dead.*did not answer/);
    assert.equal((await http('POST', `${control.url}/v1/nodes/gw-1/explode`)).status, 404);
    assert.equal(fake.calls.length, 0);
  });

  await t.test('healthz, and a stopped control deregisters', async () => {
    const h = await http('GET', `${control.url}/healthz`);
    assert.equal(h.status, 200);
    assert.equal(h.json.ok, true);
    await control.stop();
    const left = await http('GET', `${router.adminUrl}/v1/nodes?role=control`);
    assert.deepEqual(left.json.nodes, []);
  });
});

test('control with no router answering says so', async (t) => {
  const control = await startRole('control', { id: 'control-lonely', port: await freePort(), routers: [`http://127.0.0.1:${await freePort()}`] });
  t.after(() => control.stop());
  const r = await http('GET', `${control.url}/v1/topology`);
  assert.equal(r.status, 503);
  assert.match(r.json.error, /no router answered/);
  assert.equal((await http('POST', `${control.url}/v1/nodes/x/drain`)).status, 503);
});
