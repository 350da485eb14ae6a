// The pieces of the metrics plane that need no running role: who may scrape,
// fixed buckets, scrape targets and the files `pushctl up` writes for
// Prometheus, and the deploy/ configs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { authorize } from '../../system/common/admin-http.ts';
import { generateSecrets, validateSecrets } from '../../system/common/secrets.ts';
import { FixedBuckets } from '../../system/common/metrics-buckets.ts';
import { RoleMetrics } from '../../system/common/metrics.ts';
import { gatewayMetrics, protocolOf } from '../../system/common/metrics-roles.ts';
import { ProcessStats } from '../../system/common/process-stats.ts';
import { fileSdGroups, metricsSummary, scrapeTargets, writePrometheusFiles } from '../../cli/lib/scrape-targets.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const req = (token: string | undefined, remote = '10.0.0.9') =>
  ({ headers: token ? { authorization: `Bearer ${token}` } : {}, socket: { remoteAddress: remote } }) as unknown as IncomingMessage;

test('the metrics audience: the metrics token scrapes and does nothing else; the admin token scrapes; the cluster token does not', () => {
  const s = generateSecrets();
  assert.match(s.metricsToken!, /^mpm_/);
  assert.equal(authorize(req(undefined), 'metrics', s)?.status, 401);
  assert.equal(authorize(req('wrong-token-wrong-token'), 'metrics', s)?.status, 401);
  assert.equal(authorize(req(s.metricsToken), 'metrics', s), undefined);
  assert.equal(authorize(req(s.adminToken), 'metrics', s), undefined);
  assert.equal(authorize(req(s.clusterToken), 'metrics', s)?.status, 403);
  for (const a of ['admin', 'cluster'] as const) assert.equal(authorize(req(s.metricsToken), a, s)?.status, 403, `metrics token on ${a}`);
  // A role without secrets serves figures to loopback only, like its cluster routes.
  assert.equal(authorize(req(undefined, '127.0.0.1'), 'metrics', undefined), undefined);
  assert.equal(authorize(req(undefined), 'metrics', undefined)?.status, 403);
});

test('secrets files: the metrics token is optional (older files load) but never short', () => {
  const s = generateSecrets();
  const { metricsToken: _m, ...older } = s;
  assert.equal(validateSecrets(older, 'old').metricsToken, undefined);
  assert.throws(() => validateSecrets({ ...s, metricsToken: 'short' }, 'f'), /"metricsToken" \(optional\) must be a string of at least 16 characters/);
});

test('fixed buckets are cumulative, count everything (above the last bound too) and sum the values', () => {
  const b = new FixedBuckets([0.001, 0.01, 0.1]);
  for (const v of [0.0005, 0.001, 0.005, 0.05, 0.5, 2]) b.observe(v);
  const snap = b.cumulative();
  assert.deepEqual(snap.counts, [2, 3, 4]);
  assert.equal(snap.count, 6);
  assert.ok(Math.abs(snap.sum - 2.5565) < 1e-9);
  assert.throws(() => new FixedBuckets([1, 1]), /ascend/);
});

test('per-protocol counters keep what closed connections sent; gauges follow the live ones', async () => {
  const stats = new ProcessStats();
  const m = new RoleMetrics({ role: 'gateway', id: 'gateway-9', stats });
  try {
    class GrpcWebTransport {}
    const conns = new Set([
      { format: 'raw', transport: {}, topics: { size: 2 }, state: 'live', queuedBytes: 10, framesOut: 5, bytesOut: 500, requests: 1 },
      { format: 'grpc', transport: new GrpcWebTransport(), topics: { size: 1 }, state: 'backlogged', queuedBytes: 70, framesOut: 3, bytesOut: 90, requests: 2 },
    ]);
    assert.equal(protocolOf([...conns][1]!), 'grpc-web');
    assert.equal(protocolOf({ format: 'grpc', transport: {} }), 'grpc');
    assert.equal(protocolOf({ format: 'protobuf', transport: {} }), 'ws-protobuf');
    const buckets = () => new FixedBuckets([0.01]);
    const g = gatewayMetrics(m, {
      stats, conns: () => conns, topics: () => 3, fanoutPending: () => 0, fanoutSlices: buckets(), arrival: buckets(), egress: buckets(), restInFlight: () => 0, draining: () => false,
    });
    const text1 = await m.text();
    assert.match(text1, /market_push_connections\{protocol="ws",role="gateway",node="gateway-9"\} 1/);
    assert.match(text1, /market_push_connections\{protocol="grpc-web",role="gateway",node="gateway-9"\} 1/);
    assert.match(text1, /market_push_slow_connections\{protocol="grpc-web",state="backlogged",role="gateway",node="gateway-9"\} 1/);
    assert.match(text1, /market_push_messages_out_total\{protocol="ws",role="gateway",node="gateway-9"\} 5/);
    const ws = [...conns][0]!;
    conns.delete(ws);
    g.closed(ws);
    // The next scrape (a later HTTP request: a later turn of the event loop) walks the connections again.
    await new Promise((r) => setImmediate(r));
    const text2 = await m.text();
    assert.match(text2, /market_push_connections\{protocol="ws",role="gateway",node="gateway-9"\} 0/);
    assert.match(text2, /market_push_messages_out_total\{protocol="ws",role="gateway",node="gateway-9"\} 5/);
    assert.match(text2, /market_push_bytes_out_total\{protocol="ws",role="gateway",node="gateway-9"\} 500/);
    assert.match(text2, /# TYPE market_push_latency_seconds histogram/);
  } finally {
    m.stop();
    stats.stop();
  }
});

test('scrape targets are every admin listener; up writes prometheus.yml, file_sd targets and a 0600 token file', () => {
  const targets = scrapeTargets({
    routers: ['http://127.0.0.1:7100'],
    routerAdmins: ['http://127.0.0.1:8100'],
    control: 'http://127.0.0.1:7190',
    gateways: [{ id: 'gateway-1', ws: 'ws://127.0.0.1:7200', http: 'http://127.0.0.1:7200', admin: 'http://127.0.0.1:8000' }],
    servers: [{ id: 'server-1', grpc: '127.0.0.1:7300', admin: 'http://127.0.0.1:7400' }],
    feed: 'http://127.0.0.1:7500',
  });
  assert.deepEqual(targets.map((t) => `${t.role} ${t.id} ${t.url}`), [
    'router router-1 http://127.0.0.1:8100/metrics',
    'control control-1 http://127.0.0.1:7190/metrics',
    'gateway gateway-1 http://127.0.0.1:8000/metrics',
    'server server-1 http://127.0.0.1:7400/metrics',
    'feed feed-1 http://127.0.0.1:7500/metrics',
  ]);
  assert.deepEqual(fileSdGroups(targets)[2], { targets: ['127.0.0.1:8000'], labels: { role: 'gateway', node: 'gateway-1' } });
  const dir = mkdtempSync(join(tmpdir(), 'mp-prom-'));
  try {
    const secrets = generateSecrets();
    const files = writePrometheusFiles(dir, targets, secrets);
    assert.equal(readFileSync(files.tokenFile!, 'utf8'), secrets.metricsToken);
    assert.equal(statSync(files.tokenFile!).mode & 0o777, 0o600);
    assert.equal(JSON.parse(readFileSync(files.targets, 'utf8')).length, 5);
    assert.equal(readFileSync(files.config, 'utf8'), readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8'));
    const summary = metricsSummary(targets, files);
    assert.equal(summary.lines.length, 1 + 5 + 1);
    assert.match(summary.lines[0]!, /metrics token/);
    // Without a metrics token nothing is written that Prometheus could not use, and the summary says what to add.
    const { metricsToken: _m, ...older } = secrets;
    const none = writePrometheusFiles(join(dir, 'old'), targets, older);
    assert.equal(none.tokenFile, undefined);
    assert.match(metricsSummary(targets, none).lines.at(-1)!, /NO metrics-token/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('deploy/prometheus/prometheus.yml scrapes /metrics with a bearer token file and file-based discovery', () => {
  const cfg = parseYaml(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as { scrape_configs: Array<Record<string, any>> };
  const job = cfg.scrape_configs.find((j) => j.job_name === 'market-push');
  assert.ok(job, 'a market-push job');
  assert.equal(job.metrics_path, '/metrics');
  assert.deepEqual(job.authorization, { type: 'Bearer', credentials_file: 'metrics-token' });
  assert.deepEqual(job.file_sd_configs[0].files, ['targets.json']);
});

test('deploy/grafana/market-push.json is a dashboard whose panels each query market_push metrics', () => {
  const d = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/market-push.json'), 'utf8')) as { uid: string; panels: Array<Record<string, any>>; templating: { list: Array<{ name: string }> } };
  assert.equal(d.uid, 'market-push');
  assert.ok(d.templating.list.some((v) => v.name === 'datasource'));
  const ids = d.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const graphs = d.panels.filter((p) => p.type !== 'row');
  assert.ok(graphs.length >= 20);
  for (const p of graphs) {
    assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the grid`);
    assert.ok(p.targets.length > 0, `${p.title} has queries`);
    for (const t of p.targets) assert.match(t.expr, /market_push_[a-z_]+/, `${p.title}: ${t.expr}`);
  }
});

test('history read failures are counted per tier (market_push_store_errors_total{op="read"})', async () => {
  const { MemoryKlineStore } = await import('../../system/history/memory-store.ts');
  const { TieredReader, HistoryUnavailableError } = await import('../../system/history/tiered.ts');
  const M = 60_000;
  const NOW = 1_700_000_040_000 - (1_700_000_040_000 % M);
  const mem = new MemoryKlineStore(60 * M, () => NOW);
  const dead = (name: string) => ({ name, put: async () => {}, query: async () => { throw new Error('connection refused'); }, close: async () => {} });
  const reader = new TieredReader({ memory: mem, redis: dead('redis'), cold: dead('cassandra'), redisHorizonMs: 180 * M, memoryFrom: () => NOW - 60 * M, now: () => NOW });
  // Redis fails and is routed around; then the cold tier fails too: a clear error, and both are counted.
  await assert.rejects(reader.read({ symbol: 'BTCUSDT', interval: '1m', limit: 150 }), HistoryUnavailableError);
  assert.deepEqual([...reader.failures], [['redis', 1], ['cassandra', 1]]);
});
