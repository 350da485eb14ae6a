// Prometheus metrics on the roles' admin listeners, with a real nats-server
// and real feed → server → gateway processes: a scrape needs the metrics (or
// admin) token, and the figures move with client traffic.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, testSecrets, type TestCluster } from '../helpers/cluster.ts';
import { TestClient } from '../helpers/ws-client.ts';
import { readFileSync } from 'node:fs';

type Series = Map<string, number>; // `name{a="x",b="y"}` (labels sorted, role/node dropped) → value

/** Parses the Prometheus text format: every sample, keyed by name and its labels except role and node. */
function parse(text: string): Series {
  const out: Series = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)]
      .filter(([, k]) => k !== 'role' && k !== 'node')
      .map(([, k, v]) => `${k}="${v}"`)
      .sort();
    out.set(labels.length ? `${m[1]}{${labels.join(',')}}` : m[1]!, Number(m[3]));
  }
  return out;
}

async function scrape(adminUrl: string, token: string | undefined): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`${adminUrl}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(5_000) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

async function metrics(adminUrl: string): Promise<Series> {
  const r = await scrape(adminUrl, testSecrets().secrets.metricsToken);
  assert.equal(r.status, 200, r.body);
  return parse(r.body);
}

const val = (s: Series, key: string): number => {
  const v = s.get(key);
  assert.ok(v !== undefined, `no series ${key} in:\n${[...s.keys()].filter((k) => k.startsWith(key.split('{')[0]!)).join('\n')}`);
  return v;
};

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('metrics: GET /metrics on every role\'s admin listener', () => {
  let cluster: TestCluster;
  let gwAdmin: string;
  const clients: TestClient[] = [];

  before(async () => {
    cluster = await startCluster({ servers: 1, gateways: 1, symbols: 3, rate: 20, storeAuth: true });
    gwAdmin = cluster.gateways[0]!.urls.admin!;
  });
  after(async () => {
    for (const c of clients) c.close();
    await cluster?.stop();
  });

  test('a scrape without a credential is refused (401); a role credential is not a scrape credential (403)', async () => {
    const s = testSecrets().secrets;
    for (const admin of [gwAdmin, cluster.servers[0]!.urls.admin!, cluster.routerAdminUrl, cluster.feed!.urls.admin!]) {
      const none = await scrape(admin, undefined);
      assert.equal(none.status, 401, `${admin}: ${none.body}`);
      assert.doesNotMatch(none.body, /market_push_/);
      assert.equal((await scrape(admin, 'mpm_not-the-token-at-all-000000')).status, 401);
      assert.equal((await scrape(admin, s.clusterToken)).status, 403);
      const ok = await scrape(admin, s.metricsToken);
      assert.equal(ok.status, 200);
      assert.match(ok.type, /^text\/plain; version=0\.0\.4/);
      assert.equal((await scrape(admin, s.adminToken)).status, 200, 'the operator may scrape too');
    }
    // The metrics token reads figures and nothing else.
    const stats = await fetch(`${gwAdmin}/stats`, { headers: { authorization: `Bearer ${s.metricsToken}` } });
    assert.equal(stats.status, 403);
    const drain = await fetch(`${gwAdmin}/admin/drain`, { method: 'POST', headers: { authorization: `Bearer ${s.metricsToken}` }, body: '{}' });
    assert.equal(drain.status, 403);
  });

  test('every sample carries its role and node; process figures are there', async () => {
    const r = await scrape(gwAdmin, testSecrets().secrets.metricsToken);
    assert.match(r.body, /market_push_connections\{protocol="ws",role="gateway",node="gateway-1"\} \d+/);
    const s = parse(r.body);
    assert.ok(val(s, 'market_push_resident_memory_bytes') > 1e6);
    assert.ok(val(s, 'market_push_event_loop_delay_p99_seconds') >= 0);
    assert.ok(val(s, 'market_push_gc_pause_seconds_total') >= 0);
    assert.equal(val(s, 'market_push_bus_connected'), 1, 'the gateway holds a NATS connection');
  });

  test('gateway figures move with client traffic and never go down when the client leaves', async () => {
    const before = await metrics(gwAdmin);
    const wsBefore = val(before, 'market_push_connections{protocol="ws"}');
    const outBefore = val(before, 'market_push_messages_out_total{protocol="ws"}');
    const bytesBefore = val(before, 'market_push_bytes_out_total{protocol="ws"}');
    const egressBefore = val(before, 'market_push_latency_seconds_count{stage="egress"}');

    const c = new TestClient(`${cluster.gateways[0]!.urls.ws}/stream?streams=btcusdt@trade/ethusdt@ticker`);
    clients.push(c);
    await c.opened;
    await c.waitFor(() => c.json.length >= 20, 20_000, '20 events');
    c.send({ method: 'LIST_SUBSCRIPTIONS', id: 7 });

    let during!: Series;
    await until('the scrape to show the client, its messages and a request', async () => {
      during = await metrics(gwAdmin);
      return (
        val(during, 'market_push_connections{protocol="ws"}') === wsBefore + 1 &&
        val(during, 'market_push_messages_out_total{protocol="ws"}') >= outBefore + 20 &&
        val(during, 'market_push_messages_in_total{protocol="ws"}') >= 1
      );
    });
    assert.equal(val(during, 'market_push_subscriptions{protocol="ws"}'), 2);
    assert.ok(val(during, 'market_push_bytes_out_total{protocol="ws"}') > bytesBefore);
    assert.ok(val(during, 'market_push_messages_in_total{protocol="link"}') > 0, 'events from the push-server');
    assert.ok(val(during, 'market_push_topics') >= 2);
    // The end-to-end histogram inside the cluster counted the events and its buckets are cumulative.
    const egress = val(during, 'market_push_latency_seconds_count{stage="egress"}');
    assert.ok(egress > egressBefore);
    assert.equal(val(during, 'market_push_latency_seconds_bucket{le="+Inf",stage="egress"}'), egress);
    assert.ok(val(during, 'market_push_latency_seconds_bucket{le="0.01",stage="egress"}') <= val(during, 'market_push_latency_seconds_bucket{le="0.1",stage="egress"}'));
    assert.ok(val(during, 'market_push_latency_seconds_count{stage="arrival"}') > 0);
    assert.ok(val(during, 'market_push_fanout_slice_seconds_count') > 0);
    assert.ok(val(during, 'market_push_bus_messages_total{direction="in"}') >= 0);

    const sentWhileOpen = val(during, 'market_push_messages_out_total{protocol="ws"}');
    c.close();
    let after!: Series;
    await until('the closed client to leave the gauge', async () => {
      after = await metrics(gwAdmin);
      return val(after, 'market_push_connections{protocol="ws"}') === wsBefore;
    });
    // A counter keeps what a closed connection sent.
    assert.ok(val(after, 'market_push_messages_out_total{protocol="ws"}') >= sentWhileOpen);
    assert.ok(val(after, 'market_push_bytes_out_total{protocol="ws"}') >= val(during, 'market_push_bytes_out_total{protocol="ws"}'));
    assert.equal(val(after, 'market_push_subscriptions{protocol="ws"}'), 0);
  });

  test('server, feed and router figures move with the feed', async () => {
    const server = cluster.servers[0]!.urls.admin!;
    const feed = cluster.feed!.urls.admin!;
    const s1 = await metrics(server);
    const f1 = await metrics(feed);
    const r1 = await metrics(cluster.routerAdminUrl);
    await until('the server and the feed to count more events', async () => {
      const s2 = await metrics(server);
      const f2 = await metrics(feed);
      return (
        val(s2, 'market_push_messages_in_total{protocol="nats"}') > val(s1, 'market_push_messages_in_total{protocol="nats"}') &&
        val(f2, 'market_push_messages_out_total{protocol="nats"}') > val(f1, 'market_push_messages_out_total{protocol="nats"}') &&
        val(f2, 'market_push_bytes_out_total{protocol="nats"}') > val(f1, 'market_push_bytes_out_total{protocol="nats"}') &&
        val(f2, 'market_push_bus_messages_total{direction="out"}') > val(f1, 'market_push_bus_messages_total{direction="out"}')
      );
    });
    assert.equal(val(s1, 'market_push_connections{protocol="link"}') >= 1, true, 'the gateway holds a link stream');
    assert.ok(val(s1, 'market_push_gaps_total{source="bus"}') >= 0);
    await until('the server stage of the latency histogram to count events', async () => val(await metrics(server), 'market_push_latency_seconds_count{stage="server"}') > 0);
    assert.ok(val(s1, 'market_push_store_errors_total{op="write",store="redis"}') >= 0);
    assert.ok(val(s1, 'market_push_send_queue_bytes{protocol="link"}') >= 0);
    await until('the router to count heartbeats', async () => val(await metrics(cluster.routerAdminUrl), 'market_push_registry_heartbeats_total') > val(r1, 'market_push_registry_heartbeats_total'));
  });

  test('every metric the Grafana dashboard queries is exported by a live role', async () => {
    const exported = new Set<string>();
    for (const admin of [gwAdmin, cluster.servers[0]!.urls.admin!, cluster.routerAdminUrl, cluster.feed!.urls.admin!]) {
      const r = await scrape(admin, testSecrets().secrets.metricsToken);
      for (const m of r.body.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
        exported.add(m[1]!);
        if (m[2] === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(m[1]! + suffix);
      }
    }
    const dashboard = readFileSync(new URL('../../deploy/grafana/market-push.json', import.meta.url), 'utf8');
    const used = new Set([...dashboard.matchAll(/market_push_[a-z0-9_]+/g)].map((m) => m[0]));
    assert.ok(used.size >= 25, `the dashboard uses ${used.size} metrics`);
    const missing = [...used].filter((n) => !exported.has(n));
    assert.deepEqual(missing, [], 'queried by the dashboard but exported by no role');
  });
});
