// `pushctl logs`: a cluster's role logs from its data dir, formatted and
// interleaved by time, filtered by process id or kind, and followed with -f
// (new lines and processes that start later) until Ctrl-C.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pushctl } from '../helpers/pushctl.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const line = (node: string, time: string, msg: string, fields: object = {}) =>
  JSON.stringify({ level: 'info', time: `2026-12-03T10:00:${time}Z`, role: node.replace(/-\d+$/, ''), node, pid: 1, ...fields, msg }) + '\n';

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mp-logs-'));
  mkdirSync(join(dir, 'logs'));
  writeFileSync(join(dir, 'logs', 'gateway-1.log'), line('gateway-1', '01.000', 'g1 first') + line('gateway-1', '03.000', 'g1 second', { conn: 4 }));
  writeFileSync(join(dir, 'logs', 'gateway-2.log'), '{"ready":true,"id":"gateway-2"}\n' + line('gateway-2', '02.000', 'g2 only'));
  writeFileSync(join(dir, 'logs', 'nats.log'), '[99] 2026/12/03 10:00:00.500000 [INF] Server is ready\n');
  return dir;
}

test('pushctl logs interleaves every process by time; a kind selects its processes; --json prints the lines as they are', async () => {
  const dir = dataDir();
  try {
    const all = await pushctl(['logs', '--data-dir', dir], { timeoutMs: 60_000 });
    assert.equal(all.code, 0, all.out);
    assert.deepEqual(all.stdout.trimEnd().split('\n'), [
      '[nats] [99] 2026/12/03 10:00:00.500000 [INF] Server is ready',
      '10:00:01.000 INFO  gateway-1 g1 first',
      '10:00:02.000 INFO  gateway-2 g2 only',
      '10:00:03.000 INFO  gateway-1 g1 second conn=4',
    ]);
    const one = await pushctl(['logs', 'gateway-2', '--json', '--data-dir', dir], { timeoutMs: 60_000 });
    assert.equal(one.code, 0, one.out);
    assert.deepEqual(one.stdout.trimEnd().split('\n').map((l) => JSON.parse(l).id ?? JSON.parse(l).msg), ['gateway-2', 'g2 only']);
    const kind = await pushctl(['logs', 'gateway', '-n', '1', '--data-dir', dir], { timeoutMs: 60_000 });
    assert.deepEqual(kind.stdout.trimEnd().split('\n'), ['10:00:02.000 INFO  gateway-2 g2 only', '10:00:03.000 INFO  gateway-1 g1 second conn=4']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pushctl logs refuses an unknown process (listing the known ones) and a data dir without logs', async () => {
  const dir = dataDir();
  try {
    const bad = await pushctl(['logs', 'server', '--data-dir', dir], { timeoutMs: 60_000 });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /no log for "server"; there are: gateway-1, gateway-2, nats/);
    const empty = mkdtempSync(join(tmpdir(), 'mp-logs-empty-'));
    const none = await pushctl(['logs', '--data-dir', empty], { timeoutMs: 60_000 });
    rmSync(empty, { recursive: true, force: true });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no logs in .*\/logs: start a cluster with `pushctl up`/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pushctl logs -f prints new lines, and the logs of processes that start later, until Ctrl-C', async () => {
  const dir = dataDir();
  const p = spawn(process.execPath, [join(ROOT, 'bin', 'run.js'), 'logs', 'gateway', '-f', '-n', '0', '--data-dir', dir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d));
  p.stderr.on('data', (d: Buffer) => (out += d));
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  const seen = async (text: string) => {
    const deadline = Date.now() + 60_000;
    while (!out.includes(text)) {
      if (Date.now() > deadline || p.exitCode !== null) throw new Error(`no "${text}" in:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  try {
    await seen('pushctl: following gateway-1, gateway-2 in');
    appendFileSync(join(dir, 'logs', 'gateway-1.log'), line('gateway-1', '04.000', 'g1 later'));
    await seen('10:00:04.000 INFO  gateway-1 g1 later');
    writeFileSync(join(dir, 'logs', 'gateway-3.log'), line('gateway-3', '05.000', 'g3 started'));
    await seen('gateway-3 g3 started');
    appendFileSync(join(dir, 'logs', 'nats.log'), '[99] 2026/12/03 10:00:06.000000 [INF] not a gateway\n');
    assert.ok(!out.includes('g1 first'), 'the -n 0 start printed nothing old');
    p.kill('SIGINT');
    assert.equal(await exited, 0);
    assert.ok(!out.includes('not a gateway'), 'a filtered-out process stays out');
  } finally {
    p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
