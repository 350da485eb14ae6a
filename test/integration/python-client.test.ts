// A client in another language: test/clients/python_client.py (Debian's
// python3-grpcio, message classes built from proto/ at run time) subscribes
// over the gateway's gRPC PushService.Stream and prints what it receives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCluster } from '../helpers/cluster.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // Debian's interpreter, not whatever python3 is first on PATH: python3-grpcio lives in its dist-packages.
    const env = { ...process.env };
    delete env.PYTHONPATH;
    delete env.PYTHONHOME;
    const p = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    p.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('a Python gRPC client subscribes over PushService.Stream and receives events in seq order', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mp-python-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const desc = join(dir, 'proto.binpb');
  const built = await run(join(ROOT, 'node_modules', '.bin', 'buf'), ['build', '-o', desc], 60_000);
  assert.equal(built.code, 0, `buf build failed: ${built.stderr}`);

  const cluster = await startCluster({ servers: 1, gateways: 1, symbols: 2, rate: 20, gateway: { pingIntervalMs: 500, pongTimeoutMs: 3_000 } });
  t.after(() => cluster.stop());
  const gw = cluster.gateways[0]!;

  const out = await run(
    '/usr/bin/python3',
    [join(ROOT, 'test', 'clients', 'python_client.py'), '--target', gw.urls.grpc!, '--desc', desc, '--topics', 'btcusdt@trade,ethusdt@ticker', '--count', '40', '--timeout', '45'],
    60_000,
  );
  assert.equal(out.code, 0, `python client failed (${out.code}):\n${out.stdout}\n${out.stderr}`);
  const lines = out.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(lines.some((l) => l.result === 1), 'the subscribe result arrived');
  const events = lines.filter((l) => typeof l.event === 'string') as Array<{ event: string; topic: string; seq: number; pt: number }>;
  assert.ok(events.length >= 40, `40 events, got ${events.length}`);
  const trades = events.filter((e) => e.topic === 'btcusdt@trade');
  assert.ok(trades.length >= 5, `trades arrived (${trades.length})`);
  assert.ok(trades.every((e) => e.event === 'trade' && e.pt > 0));
  for (let i = 1; i < trades.length; i++) assert.equal(trades[i]!.seq, trades[i - 1]!.seq + 1, `trade seqs increase by one: ${trades.map((e) => e.seq).join(',')}`);
  const tickers = events.filter((e) => e.topic === 'ethusdt@ticker');
  for (let i = 1; i < tickers.length; i++) assert.ok(tickers[i]!.seq > tickers[i - 1]!.seq, 'ticker seqs increase');
  assert.deepEqual(lines.filter((l) => 'error' in l || 'status' in l), [], 'no errors');
});
