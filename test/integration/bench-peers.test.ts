// npm run bench:peers, tiny: 40 clients in 2 processes, 10 symbols, one rate
// step, one repetition, idle memory with 200 connections, through all four
// systems (bare ws, market-push, Socket.IO + Redis, nginx + nchan). Each must
// deliver events with sane latencies; summary.json and report.html are
// written; and nothing it started is left running afterwards (every process
// it started carries a marker in its environment, inherited from the run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Processes whose environment carries the marker, or whose command line names the run's temp dir (nginx rewrites its environ area for its title). */
function marked(marker: string, tmp: string): string[] {
  const out: string[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (readFileSync(`/proc/${d}/environ`).includes(marker) || cmd.includes(tmp)) out.push(`${d}: ${cmd}`);
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

test('bench:peers tiny run: all four systems deliver, the report is written, nothing is left running', { timeout: 280_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'peers-report-'));
  const marker = randomUUID();
  // The run's data dirs (nats, redis, nginx prefix) go under here, and must be gone after it.
  const tmp = join(out, 'tmp');
  mkdirSync(tmp);
  try {
    const args = ['bench/peers.ts', '--clients', '40', '--load-procs', '2', '--symbols', '10', '--rates', '2000', '--repeats', '1',
      '--warm-seconds', '2', '--measure-seconds', '3', '--idle-connections', '200', '--out', out, '--max-seconds', '250'];
    const run = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PEERS_TEST_RUN: marker, TMPDIR: tmp } });
    let stdout = '';
    let stderr = '';
    run.stdout.on('data', (d: Buffer) => (stdout += d));
    run.stderr.on('data', (d: Buffer) => (stderr += d));
    const code = await new Promise<number | null>((r) => run.once('exit', r));
    assert.equal(code, 0, `bench:peers failed:\n${stdout}\n${stderr}`);
    assert.doesNotMatch(stderr, /NOT measured/);

    const [dir] = readdirSync(out).filter((d) => d.endsWith('-peers'));
    assert.ok(dir, `no report folder in ${out}: ${readdirSync(out).join(', ')}`);
    const summary = JSON.parse(readFileSync(join(out, dir, 'summary.json'), 'utf8')) as {
      unavailable: Record<string, string>;
      versions: Record<string, string>;
      steps: Array<{ system: string; rate: number; deliveredPerSec: number; connected: number; latency: { count: number; p50Ms: number; p99Ms: number }; cpu: Record<string, number | null>; msgsPerCpuSecond: number | null; error?: string; publisher?: { published: number; failures: number } }>;
      idleMemory: Array<{ system: string; connections: number; perProcess: Record<string, { bytesPerConnection: number | null }> }>;
    };
    assert.deepEqual(summary.unavailable, {});
    assert.match(summary.versions['nginx+nchan']!, /libnginx-mod-nchan/);
    assert.deepEqual(summary.steps.map((s) => s.system).sort(), ['bare-ws', 'market-push', 'nchan', 'socketio']);
    for (const s of summary.steps) {
      assert.equal(s.error, undefined, `${s.system}: ${s.error}`);
      assert.equal(s.connected, 40, `${s.system} connected ${s.connected}`);
      // 2,000/s intended: each system delivers most of it (a loaded CI machine may lag, but not drop to nothing).
      assert.ok(s.deliveredPerSec > 1_000, `${s.system} delivered ${s.deliveredPerSec}/s`);
      assert.ok(s.latency.count > 1_000, `${s.system} latency samples ${s.latency.count}`);
      // Sane: positive and well under the 1 s kept-up bound at a median.
      assert.ok(s.latency.p50Ms > 0 && s.latency.p50Ms < 500, `${s.system} p50 ${s.latency.p50Ms} ms`);
      assert.ok(s.latency.p99Ms >= s.latency.p50Ms && s.latency.p99Ms < 5_000, `${s.system} p99 ${s.latency.p99Ms} ms`);
      assert.ok(s.msgsPerCpuSecond !== null && s.msgsPerCpuSecond > 0, `${s.system} msgs per CPU-second ${s.msgsPerCpuSecond}`);
      assert.ok(Object.keys(s.cpu).some((k) => k.startsWith('load-clients')), `${s.system} CPU of the load clients`);
    }
    // market-push is measured as its whole pipeline: every role's CPU counts.
    const mp = summary.steps.find((s) => s.system === 'market-push')!;
    for (const role of ['nats', 'feed', 'server', 'gateway']) assert.ok(role in mp.cpu, `market-push CPU lacks ${role}`);
    const sio = summary.steps.find((s) => s.system === 'socketio')!;
    for (const p of ['socketio-server', 'socketio-publisher', 'redis']) assert.ok(p in sio.cpu, `socket.io CPU lacks ${p}`);
    // The peers are fed by separate publishers: they published, and nothing was refused.
    for (const name of ['socketio', 'nchan']) {
      const pub = summary.steps.find((s) => s.system === name)!.publisher;
      assert.ok(pub && pub.published > 0 && pub.failures === 0, `${name} publisher ${JSON.stringify(pub)}`);
    }

    const idle = Object.fromEntries(summary.idleMemory.map((m) => [m.system, m]));
    assert.deepEqual(Object.keys(idle).sort(), ['bare-ws', 'market-push', 'nchan', 'socketio']);
    for (const m of summary.idleMemory) {
      assert.equal(m.connections, 200, `${m.system} idle connections`);
      for (const [k, v] of Object.entries(m.perProcess)) assert.equal(typeof v.bytesPerConnection, 'number', `${m.system} ${k}`);
    }
    assert.deepEqual(Object.keys(idle['market-push']!.perProcess).sort(), ['market-push gateway', 'market-push server']);

    const html = readFileSync(join(out, dir, 'report.html'), 'utf8');
    assert.match(html, /<svg /);
    assert.match(html, /Idle memory per subscribed connection/);
    assert.doesNotMatch(html, /class="warn"/);
    for (const s of ['bare-ws', 'market-push', 'socketio', 'nchan']) assert.match(html, new RegExp(`>${s}<`));
    assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/);
    assert.match(stdout, /report: /);

    // Stops are awaited before the run exits; give stragglers a moment, then nothing of the run may remain.
    let left: string[] = [];
    for (let i = 0; i < 20; i++) {
      left = marked(marker, tmp);
      if (!left.length) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.deepEqual(left, [], `left running:\n${left.join('\n')}`);
    assert.deepEqual(readdirSync(tmp), [], 'data dirs of the run left behind');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('bench:peers without nginx + nchan on the machine says so loudly, in its output and its summary', { timeout: 120_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'peers-report-'));
  try {
    // No nginx on this PATH: node itself is run by its absolute path.
    const run = spawn(process.execPath, ['bench/peers.ts', '--systems', 'nchan', '--clients', '4', '--load-procs', '1', '--symbols', '2', '--rates', '100', '--repeats', '1', '--idle-connections', '0', '--out', out],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH: '/nonexistent' } });
    let stdout = '';
    let stderr = '';
    run.stdout.on('data', (d: Buffer) => (stdout += d));
    run.stderr.on('data', (d: Buffer) => (stderr += d));
    await new Promise((r) => run.once('exit', r));
    assert.match(stderr, /!!! bench:peers: nchan is NOT measured in this run: nginx is not installed/);
    const [dir] = readdirSync(out).filter((d) => d.endsWith('-peers'));
    assert.ok(dir, `no report: ${stdout}\n${stderr}`);
    const summary = JSON.parse(readFileSync(join(out, dir, 'summary.json'), 'utf8')) as { unavailable: Record<string, string>; steps: unknown[] };
    assert.match(summary.unavailable.nchan!, /nginx is not installed/);
    assert.deepEqual(summary.steps, []);
    assert.match(readFileSync(join(out, dir, 'report.html'), 'utf8'), /class="warn">nchan was NOT measured/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
