// `pushctl up --tls`: a real process cluster whose routers and gateways serve
// the self-signed certificate made into the data dir; up prints its
// fingerprint, status and bench reach the cluster over TLS on every client
// protocol, and a second up reuses the same certificate.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushctl } from '../helpers/pushctl.ts';
import { getJson } from '../helpers/cluster.ts';

const SMALL = ['--port-base', '0', '--servers', '1', '--gateways', '1', '--symbols', '3'];

function dataDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-tls-'));
  t.after(async () => {
    if (existsSync(join(dir, 'cluster.json'))) await pushctl(['down', '--data-dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Two sessions per client protocol, each on the gateway's TLS port for it. */
function writeScenario(dir: string): string {
  const formats = ['json', 'protobuf', 'tcp', 'grpc', 'grpc-web'];
  const lines = [
    JSON.stringify({ capture: 1, note: 'one session per protocol' }),
    ...formats.map((format, i) => JSON.stringify({ t: 10 * i, s: `s-${format}`, ev: 'connect', format, streams: ['btcusdt@trade', 'btcusdt@depth'] })),
  ];
  writeFileSync(join(dir, 'capture.jsonl'), lines.join('\n') + '\n');
  const file = join(dir, 'tls.yaml');
  writeFileSync(file, ['name: tls-protocols', `capture: ${join(dir, 'capture.jsonl')}`, 'amplify: 2', 'jitter: 500ms', 'duration: 5s', 'thresholds:', '  - errors==0', '  - gaps==0'].join('\n') + '\n');
  return file;
}

test('up --tls: https/wss endpoints, the printed fingerprint is the certificate\'s, status and bench over TLS, reused by the next up', { timeout: 180_000 }, async (t) => {
  const dir = dataDir(t);
  const up = await pushctl(['up', '--tls', '--detach', '--json', ...SMALL, '--data-dir', dir]);
  assert.equal(up.code, 0, `up failed:\n${up.out}`);
  const out = JSON.parse(up.stdout.trim().split('\n').at(-1)!) as {
    router: string;
    gateways: Array<{ ws: string; http: string }>;
    tls: { certFile: string; caFile: string; fingerprint256: string; selfSigned: boolean };
  };
  const certFile = join(dir, 'tls', 'cert.pem');
  assert.equal(out.tls.certFile, certFile);
  assert.equal(out.tls.selfSigned, true);
  const x509 = new X509Certificate(readFileSync(certFile));
  assert.equal(out.tls.fingerprint256, x509.fingerprint256);
  assert.equal(statSync(join(dir, 'tls', 'key.pem')).mode & 0o777, 0o600);
  assert.match(out.router, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.match(out.gateways[0]!.ws, /^wss:\/\//);
  assert.match(out.gateways[0]!.http, /^https:\/\//);

  // The router, over https with the certificate as CA, hands out the gateway's TLS URLs.
  for (const [protocol, scheme] of [['ws', 'wss://'], ['tcp', 'tls://'], ['grpc', 'grpcs://'], ['grpc-web', 'https://']] as const) {
    const body = await getJson<{ gateways: Array<{ url: string }> }>(`${out.router}/v1/gateways?protocol=${protocol}`, certFile);
    assert.ok(body.gateways[0]?.url.startsWith(scheme), `${protocol}: ${JSON.stringify(body)}`);
  }

  const status = await pushctl(['status', '--json', '--data-dir', dir]);
  assert.equal(status.code, 0, status.out);
  const st = JSON.parse(status.stdout) as { nodes: Array<{ id: string; health: string }> };
  assert.equal(st.nodes.find((n) => n.id === 'gateway-1')?.health, 'ok', status.stdout);

  // Every client protocol over TLS: the bench (and its agent process) trusts the data dir's certificate by itself.
  const bench = await pushctl(['bench', writeScenario(dir), '--data-dir', dir, '--no-dashboard', '--json', '--out', join(dir, 'reports'), '--seed', '1'], { timeoutMs: 90_000 });
  assert.equal(bench.code, 0, `bench failed:\n${bench.out}`);
  const summary = JSON.parse(bench.stdout.trim().split('\n').at(-1)!) as {
    results: { connections: { target: number; peakOpen: number; failed: number }; msgs: number; counters: { errors: number; gaps: number } };
  };
  assert.equal(summary.results.connections.target, 10);
  assert.equal(summary.results.connections.peakOpen, 10, JSON.stringify(summary.results.connections));
  assert.equal(summary.results.connections.failed, 0);
  assert.equal(summary.results.counters.errors, 0);
  assert.ok(summary.results.msgs > 0);

  const down = await pushctl(['down', '--data-dir', dir]);
  assert.equal(down.code, 0, down.out);

  // Restarted: the same certificate, said so, with the same fingerprint printed.
  const again = await pushctl(['up', '--tls', '--detach', ...SMALL, '--data-dir', dir]);
  assert.equal(again.code, 0, again.out);
  assert.match(again.stdout, /self-signed certificate \(reused\)/);
  assert.ok(again.stdout.includes(`SHA-256 fingerprint ${x509.fingerprint256}`), again.stdout);
  assert.ok(again.stdout.includes(`NODE_EXTRA_CA_CERTS=${certFile}`), again.stdout);
});

test('up refuses half-given TLS flags before starting anything', { timeout: 60_000 }, async (t) => {
  const dir = dataDir(t);
  const half = await pushctl(['up', '--tls-cert', join(dir, 'nope.pem'), '--detach', ...SMALL, '--data-dir', dir]);
  assert.equal(half.code, 2, half.out);
  assert.match(half.stderr, /--tls-cert and --tls-key go together/);
  const missing = await pushctl(['up', '--tls-cert', join(dir, 'nope.pem'), '--tls-key', join(dir, 'nope.key'), '--detach', ...SMALL, '--data-dir', dir]);
  assert.equal(missing.code, 2, missing.out);
  assert.match(missing.stderr, /cannot read the TLS certificate file .*nope\.pem \(ENOENT\)/);
  assert.doesNotMatch(missing.stderr, /at .*\.ts:\d+/, 'no stack trace');
  assert.equal(existsSync(join(dir, 'cluster.json')), false);
});
