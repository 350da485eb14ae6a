// Two push-router processes on one real nats-server share the JetStream KV
// registry: whatever one is told, the other answers.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort, startNats } from '../helpers/servers.ts';
import { startHttpRole, http, waitForValue } from '../helpers/role-http.ts';
import { createLogger } from '../../system/common/logger.ts';
import { MemoryRegistry, type NodeRecord } from '../../system/common/registry.ts';
import { defaults } from '../../system/common/config.ts';
import { startRouter } from '../../system/router/router.ts';
import { connectNats } from '../../system/common/nats-bus.ts';
import { REGISTRY_BUCKET } from '../../system/common/kv-registry.ts';
import { clusterHeaders, startRole as startRoleProc, testSecrets } from '../helpers/cluster.ts';
import { Kvm } from '@nats-io/kv';

const EXPIRY_MS = 1500;

const startRole = startHttpRole;
const waitFor = waitForValue;

function rec(id: string, role: NodeRecord['role'], over: Partial<NodeRecord> = {}): Partial<NodeRecord> {
  return { id, role, urls: {}, protocols: [], draining: false, startedAt: Date.now(), ...over };
}

// The gateways here are records, not processes. A router probes a gateway whose heartbeat is late (/healthz):
// this stub answers for all of them, so a beat of the keep-alive loop delayed by a busy machine drops nobody.
const stub = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
after(() => stub.close());
const STUB_PORT = (stub.address() as AddressInfo).port;

const gateway = (id: string, connections: number, cpu: number, draining = false) =>
  rec(id, 'gateway', {
    urls: { ws: `ws://127.0.0.1:${STUB_PORT}/${id}`, http: `http://127.0.0.1:${STUB_PORT}/${id}` },
    draining,
    load: { connections, subscriptions: 0, msgsInPerSec: 0, msgsOutPerSec: 0, cpu, eventLoopP99Ms: 0, rssMb: 0 },
  });
const server = (id: string) => rec(id, 'server', { urls: { grpc: `127.0.0.1:7300/${id}`, admin: `http://127.0.0.1:1/${id}` } });

/** Re-posts a set of records every 300 ms so they outlive the 1.5 s expiry while a test looks at them. */
class KeepAlive {
  records = new Map<string, Partial<NodeRecord>>();
  target: string;
  #timer: NodeJS.Timeout;
  #round: Promise<void> = Promise.resolve();

  constructor(target: string) {
    this.target = target;
    this.#timer = setInterval(() => {
      this.#round = this.#round.then(() => this.beatAll()).catch(() => {});
    }, 300);
  }

  async beatAll(): Promise<void> {
    for (const r of [...this.records.values()]) {
      const res = await http('POST', `${this.target}/v1/heartbeat`, r);
      assert.equal(res.status, 200, JSON.stringify(res.json));
    }
  }

  async add(...records: Partial<NodeRecord>[]): Promise<void> {
    for (const r of records) this.records.set(r.id!, r);
    await this.beatAll();
  }

  /** Stops beating `id`, waiting out a round in flight so it cannot re-register it. */
  async forget(id: string): Promise<void> {
    this.records.delete(id);
    await this.#round;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#round;
  }
}

const ids = (nodes: { id: string }[]) => nodes.map((n) => n.id);

test('two router processes share one registry on NATS', async (t) => {
  const nats = await startNats();
  t.after(() => nats.stop());
  const [portA, portB] = [await freePort(), await freePort()];
  const common = { nats: nats.url, expiryMs: EXPIRY_MS, heartbeatMs: 300 };
  // Started together on purpose: both create the KV bucket at once, as `pushctl up` does.
  const [a, b] = await Promise.all([
    startRole('router', { ...common, id: 'router-1', port: portA }),
    startRole('router', { ...common, id: 'router-2', port: portB }),
  ]);
  t.after(() => Promise.all([a.stop(), b.stop()]));
  assert.equal(a.url, `http://127.0.0.1:${portA}`);
  const keep = new KeepAlive(a.adminUrl);
  t.after(() => keep.stop());

  await t.test('stats name the shared registry; both routers list themselves', async () => {
    const h = await http('GET', `${b.url}/healthz`, undefined, 'none');
    assert.equal(h.status, 200);
    assert.equal(h.json.ok, true);
    assert.equal(h.json.registry, undefined, 'the client port shows no topology');
    assert.equal((await http('GET', `${b.adminUrl}/stats`)).json.registry, 'jetstream-kv');
    const routers = await waitFor('both routers in the registry', async () => {
      const r = await http('GET', `${b.adminUrl}/v1/nodes?role=router`);
      return r.json.nodes.length === 2 && r.json.nodes;
    });
    assert.deepEqual(ids(routers), ['router-1', 'router-2']);
    assert.equal(routers[0].urls.http, a.url);
    assert.equal(routers[0].urls.admin, a.adminUrl);
  });

  await t.test('a heartbeat posted to A is answered by B, gateways least-loaded first, draining excluded', async () => {
    await keep.add(gateway('gw-busy', 50, 0.1), gateway('gw-idle', 2, 0.5), gateway('gw-cool', 2, 0.1), gateway('gw-drain', 0, 0, true));
    const nodes = await waitFor('gateways visible on B', async () => {
      const r = await http('GET', `${b.adminUrl}/v1/nodes?role=gateway`);
      return r.json.nodes.length === 4 && r.json.nodes;
    });
    assert.deepEqual(ids(nodes), ['gw-busy', 'gw-cool', 'gw-drain', 'gw-idle']);

    const g = await http('GET', `${b.url}/v1/gateways?protocol=ws`);
    assert.equal(g.status, 200);
    assert.equal(g.headers.get('access-control-allow-origin'), '*');
    assert.deepEqual(ids(g.json.gateways), ['gw-cool', 'gw-idle', 'gw-busy']);
    assert.equal(g.json.gateways[0].url, `ws://127.0.0.1:${STUB_PORT}/gw-cool`);
    assert.equal(g.json.gateways[0].draining, false);
    assert.equal(g.json.gateways[0].load.connections, 2);

    const one = await http('GET', `${a.url}/v1/gateways?protocol=ws&limit=1`);
    assert.deepEqual(ids(one.json.gateways), ['gw-cool']);

    // A gateway's load changes with its next heartbeat, and so does the order.
    await keep.add(gateway('gw-cool', 80, 0.1));
    await waitFor('gw-cool to fall behind', async () => {
      const r = await http('GET', `${b.url}/v1/gateways?protocol=ws&limit=1`);
      return r.json.gateways[0].id === 'gw-idle';
    });

    const none = await http('GET', `${b.url}/v1/gateways?protocol=tcp`);
    assert.equal(none.status, 503);
    assert.match(none.json.error, /no healthy gateway for protocol "tcp"/);
    assert.equal(none.headers.get('access-control-allow-origin'), '*');
    assert.equal((await http('GET', `${b.url}/v1/gateways?limit=0`)).status, 400);
  });

  await t.test('routes are the same on both routers, stable, and only a leaving server\'s topics move', async () => {
    assert.equal((await http('GET', `${a.adminUrl}/v1/route?topic=btcusdt@ticker`)).status, 503);
    await keep.add(server('srv-1'), server('srv-2'), server('srv-3'), { ...server('srv-drain'), draining: true });
    await waitFor('servers visible on B', async () => (await http('GET', `${b.adminUrl}/v1/servers`)).json.servers.length === 3);
    const servers = (await http('GET', `${b.adminUrl}/v1/servers`)).json.servers as NodeRecord[];
    assert.deepEqual(ids(servers), ['srv-1', 'srv-2', 'srv-3']);

    const symbols = ['btcusdt', 'ethusdt', 'solusdt', 'xrpusdt', 'adausdt', 'dogeusdt', 'bnbusdt', 'ltcusdt'];
    const topics = symbols.flatMap((s) => [`${s}@ticker`, `${s}@depth`, `${s}@trade`, `${s}@kline_1m`]);
    const routesOn = async (url: string) => {
      const m = new Map<string, string>();
      for (const topic of topics) {
        const r = await http('GET', `${url}/v1/route?topic=${encodeURIComponent(topic)}`);
        assert.equal(r.status, 200, JSON.stringify(r.json));
        assert.equal(r.json.topic, topic);
        assert.equal(r.json.server.grpc, `127.0.0.1:7300/${r.json.server.id}`);
        m.set(topic, r.json.server.id);
      }
      return m;
    };
    const onA = await routesOn(a.adminUrl);
    assert.deepEqual(await routesOn(b.adminUrl), onA);
    assert.deepEqual(await routesOn(a.adminUrl), onA, 'stable across calls');
    assert.deepEqual(new Set(onA.values()), new Set(['srv-1', 'srv-2', 'srv-3']));

    // Upper case is normalised, malformed topics are refused.
    const upper = await http('GET', `${b.adminUrl}/v1/route?topic=BTCUSDT@ticker`);
    assert.equal(upper.json.server.id, onA.get('btcusdt@ticker'));
    for (const bad of ['btcusdt', 'btcusdt@nope', '@ticker', 'btcusdt@kline_7m']) {
      const r = await http('GET', `${b.adminUrl}/v1/route?topic=${encodeURIComponent(bad)}`);
      assert.equal(r.status, 400, bad);
      assert.equal(typeof r.json.error, 'string');
    }
    assert.equal((await http('GET', `${b.adminUrl}/v1/route`)).status, 400);

    // srv-2 leaves: DELETE takes it out at once on the router it was sent to.
    await keep.forget('srv-2');
    const del = await http('DELETE', `${a.adminUrl}/v1/nodes/srv-2`);
    assert.equal(del.status, 200);
    assert.equal(del.json.existed, true);
    assert.deepEqual(ids((await http('GET', `${a.adminUrl}/v1/servers`)).json.servers), ['srv-1', 'srv-3']);
    await waitFor('srv-2 gone on B', async () => (await http('GET', `${b.adminUrl}/v1/servers`)).json.servers.length === 2);

    const after = await routesOn(b.adminUrl);
    assert.deepEqual(await routesOn(a.adminUrl), after);
    for (const topic of topics) {
      if (onA.get(topic) === 'srv-2') assert.notEqual(after.get(topic), 'srv-2', topic);
      else assert.equal(after.get(topic), onA.get(topic), `${topic} must stay on ${onA.get(topic)}`);
    }
    assert.equal((await http('DELETE', `${b.adminUrl}/v1/nodes/srv-2`)).json.existed, false);
  });

  await t.test('symbols are the union of the live feeds', async () => {
    await keep.add(
      rec('feed-a', 'feed', { urls: { admin: 'http://127.0.0.1:1' }, meta: { symbols: ['ethusdt', 'btcusdt'] } }),
      rec('feed-b', 'feed', { urls: { admin: 'http://127.0.0.1:2' }, meta: { symbols: ['solusdt', 'btcusdt'] } }),
    );
    const s = await waitFor('feeds on B', async () => {
      const r = await http('GET', `${b.url}/v1/symbols`);
      return r.json.symbols.length === 3 && r.json.symbols;
    });
    assert.deepEqual(s, ['btcusdt', 'ethusdt', 'solusdt']);
  });

  await t.test('an entry expires after expiryMs without heartbeats', async () => {
    const once = await http('POST', `${a.adminUrl}/v1/heartbeat`, gateway('gw-once', 0, 0));
    assert.equal(once.status, 200);
    await waitFor('gw-once on B', async () => ids((await http('GET', `${b.adminUrl}/v1/nodes`)).json.nodes).includes('gw-once'));
    await waitFor(
      'gw-once to expire on both',
      async () => {
        const [na, nb] = await Promise.all([http('GET', `${a.adminUrl}/v1/nodes`), http('GET', `${b.adminUrl}/v1/nodes`)]);
        return !ids(na.json.nodes).includes('gw-once') && !ids(nb.json.nodes).includes('gw-once');
      },
      EXPIRY_MS * 4,
    );
    // The kept-alive nodes are still there.
    assert.ok(ids((await http('GET', `${b.adminUrl}/v1/nodes`)).json.nodes).includes('gw-idle'));
  });

  await t.test('malformed heartbeats get 400 with a reason', async () => {
    const cases: [unknown, RegExp][] = [
      ['{not json', /not valid JSON/],
      [[1, 2], /JSON object/],
      [{ role: 'gateway', urls: {} }, /"id"/],
      [{ id: 'bad id!', role: 'gateway', urls: {} }, /invalid node id/],
      [{ id: 'x1', urls: {} }, /"role"/],
      [{ id: 'x1', role: 'wizard', urls: {} }, /unknown role "wizard"/],
      [{ id: 'x1', role: 'gateway' }, /"urls"/],
      [{ id: 'x1', role: 'gateway', urls: { ws: 5 } }, /urls\.ws/],
      [{ id: 'x1', role: 'gateway', urls: {}, load: { connections: 'many' } }, /load\.connections/],
      [{ id: 'x1', role: 'gateway', urls: {}, draining: 'yes' }, /draining/],
      [{ id: 'x1', role: 'gateway', urls: {}, protocols: 'ws' }, /protocols/],
    ];
    for (const [body, reason] of cases) {
      const r = await http('POST', `${b.adminUrl}/v1/heartbeat`, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.json.error, reason);
    }
    assert.ok(!ids((await http('GET', `${b.adminUrl}/v1/nodes`)).json.nodes).includes('x1'));
  });

  await t.test('killing router A leaves B answering', async () => {
    const killed = new Promise((r) => a.proc.once('exit', r));
    a.proc.kill('SIGKILL');
    await killed;
    keep.target = b.adminUrl;
    await keep.beatAll();
    const h = await http('GET', `${b.url}/healthz`);
    assert.equal(h.status, 200);
    const g = await http('GET', `${b.url}/v1/gateways?protocol=ws&limit=1`);
    assert.deepEqual(ids(g.json.gateways), ['gw-idle']);
    const r = await http('GET', `${b.adminUrl}/v1/route?topic=btcusdt@ticker`);
    assert.equal(r.status, 200);
    // A could not deregister; its entry ages out.
    await waitFor(
      'router-1 to expire',
      async () => ids((await http('GET', `${b.adminUrl}/v1/nodes?role=router`)).json.nodes).join() === 'router-2',
      EXPIRY_MS * 4,
    );
  });
});

test('embedded router: in-memory registry handed in by the caller', async (t) => {
  const registry = new MemoryRegistry(EXPIRY_MS);
  const log = createLogger('router-embedded', undefined, 'error');
  t.after(() => log.close());
  const handle = await startRouter({ ...defaults.router(), id: 'router-e', port: 0, expiryMs: EXPIRY_MS }, { log, registry, secrets: testSecrets().secrets });
  t.after(() => handle.stop());
  const url = handle.urls.http!;
  const admin = handle.urls.admin!;

  const h = await http('GET', `${url}/healthz`);
  assert.deepEqual(h.json, { ok: true, id: 'router-e', draining: false });
  assert.equal((await http('POST', `${url}/v1/heartbeat`, server('srv-e'))).status, 404, 'the registry is not on the client port');
  assert.equal((await http('POST', `${admin}/v1/heartbeat`, server('srv-e'), clusterHeaders())).status, 200);
  assert.deepEqual(ids(await registry.list()).sort(), ['router-e', 'srv-e']);
  assert.deepEqual((await http('GET', `${admin}/v1/route?topic=ethusdt@depth`, undefined, clusterHeaders())).json, {
    topic: 'ethusdt@depth',
    server: { id: 'srv-e', grpc: '127.0.0.1:7300/srv-e' },
  });

  // Draining the router itself makes /healthz fail so a load balancer drops it.
  assert.equal((await http('POST', `${admin}/admin/drain`, { draining: true }, clusterHeaders())).status, 403, 'a role may not drain');
  assert.equal((await http('POST', `${admin}/admin/drain`, { draining: true })).status, 200);
  assert.equal((await http('GET', `${url}/healthz`)).status, 503);
  assert.equal((await registry.list()).find((n) => n.id === 'router-e')?.draining, true);
  assert.equal((await http('POST', `${admin}/admin/drain`, { draining: false })).status, 200);
  assert.equal((await http('GET', `${admin}/stats`)).json.role, 'router');

  await handle.stop();
  assert.deepEqual(ids(await registry.list()), ['srv-e'], 'a stopped router deregisters itself');
});

test('router without NATS or a registry refuses to start, saying why', async (t) => {
  const log = createLogger('router-none', undefined, 'error');
  t.after(() => log.close());
  await assert.rejects(startRouter({ ...defaults.router(), port: 0 }, { log }), /needs a registry.*NATS/);
});

test('a gateway that is gone stops being handed out long before its registry entry expires, on both routers', async (t) => {
  // Production timings: every role beats each second, entries expire after 5 s.
  const expiryMs = 5_000;
  const nats = await startNats();
  t.after(() => nats.stop());
  const [portA, portB] = [await freePort(), await freePort()];
  const common = { nats: nats.url, expiryMs, heartbeatMs: 1_000 };
  const [a, b] = await Promise.all([
    startRole('router', { ...common, id: 'router-1', port: portA }),
    startRole('router', { ...common, id: 'router-2', port: portB }),
  ]);
  t.after(() => Promise.all([a.stop(), b.stop()]));
  const gw = (i: number) => startRoleProc('gateway', { id: `gateway-${i}`, nats: nats.url, routers: [a.adminUrl, b.adminUrl], port: 0, heartbeatMs: 1_000 });
  const [g1, g2] = [await gw(1), await gw(2)];
  t.after(async () => {
    g1.proc.kill('SIGCONT');
    await Promise.all([g1.kill(), g2.kill()]);
  });
  const nc = await connectNats(nats.url, 'router-test-kv');
  t.after(() => nc.close());
  const kv = await new Kvm(nc).open(REGISTRY_BUCKET);

  const handedOut = async (url: string) => {
    const r = await http('GET', `${url}/v1/gateways?protocol=ws`);
    return ids(r.json.gateways ?? []).sort();
  };
  // What both routers hand out, when they agree (each probes for itself: they may differ for a moment).
  const onBoth = async () => {
    const [x, y] = await Promise.all([handedOut(a.url), handedOut(b.url)]);
    return x.join() === y.join() ? x.join() : `A: ${x.join()}, B: ${y.join()}`;
  };
  await waitFor('both gateways on both routers', async () => (await onBoth()) === 'gateway-1,gateway-2');

  await t.test('healthy gateways are in every answer (nothing probed, nothing flaps)', async () => {
    for (const until = Date.now() + 3_000; Date.now() < until; ) {
      assert.equal(await onBoth(), 'gateway-1,gateway-2');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  await t.test('kill -9: gone from both routers\' answers while its registry entry is still there', async () => {
    await g2.kill('SIGKILL');
    const killedAt = Date.now();
    // Well below the expiry: about 1.5 heartbeat intervals after its last beat, and a refused probe.
    await waitFor('gateway-2 left out on both routers', async () => (await onBoth()) === 'gateway-1', 3_500);
    const goneAfterMs = Date.now() - killedAt;
    // Its registry entry has not expired: the router dropped it from answers, not from the registry.
    const entry = await kv.get('node.gateway-2');
    assert.ok(entry && entry.operation === 'PUT', 'the KV entry is still there');
    const seenAt = entry.json<NodeRecord>().seenAt;
    assert.ok(Date.now() - seenAt < expiryMs, `its last heartbeat (${Date.now() - seenAt} ms ago) is within the expiry`);
    assert.ok(ids((await http('GET', `${b.adminUrl}/v1/nodes?role=gateway`)).json.nodes).includes('gateway-2'), '/v1/nodes still lists it');
    t.diagnostic(`gateway-2 left out ${goneAfterMs} ms after the kill, ${Date.now() - seenAt} ms after its last heartbeat`);
    const stats = (await http('GET', `${a.adminUrl}/stats`)).json;
    assert.ok(stats.counters.gateways_gone >= 1, JSON.stringify(stats.counters));
  });

  await t.test('a frozen gateway (SIGSTOP) is left out when its probe times out, and is back with its next heartbeat', async () => {
    g1.proc.kill('SIGSTOP');
    try {
      await waitFor('gateway-1 left out on both routers', async () => (await onBoth()) === '', 4_000);
      const r = await http('GET', `${b.url}/v1/gateways?protocol=ws`);
      assert.equal(r.status, 503);
      assert.match(r.json.error, /no healthy gateway/);
      assert.ok((await kv.get('node.gateway-1'))?.operation === 'PUT', 'still in the registry');
    } finally {
      g1.proc.kill('SIGCONT');
    }
    await waitFor('gateway-1 back after it beats again', async () => (await onBoth()) === 'gateway-1', 4_000);
  });
});
