// The roles' logger: JSON lines through pino with role, node id and the
// caller's fields; a backed-up destination drops and counts, never blocks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, roleOfNode } from '../../system/common/logger.ts';
import { formatLogLine } from '../../cli/lib/log-format.ts';

const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test('every line is one JSON object with level, time, role, node id, message and fields; child loggers add their ids', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mp-log-'));
  try {
    const file = join(dir, 'logs', 'gateway-2.log');
    const log = createLogger('gateway-2', file, 'info');
    log.info('client connected', { conn: 41, remote: '127.0.0.1:5000' });
    log.child({ conn: 42 }).warn('slow consumer', { lagMs: 1500 });
    log.debug('below the level: not written');
    log.error('start failed', { err: 'boom' });
    await log.close();
    const got = lines(file);
    assert.equal(got.length, 3);
    for (const l of got) {
      assert.equal(l.role, 'gateway');
      assert.equal(l.node, 'gateway-2');
      assert.equal(l.pid, process.pid);
      assert.ok(!Number.isNaN(Date.parse(String(l.time))), `ISO time: ${String(l.time)}`);
    }
    assert.deepEqual([got[0]!.level, got[0]!.msg, got[0]!.conn, got[0]!.remote], ['info', 'client connected', 41, '127.0.0.1:5000']);
    assert.deepEqual([got[1]!.level, got[1]!.msg, got[1]!.conn, got[1]!.lagMs], ['warn', 'slow consumer', 42, 1500]);
    assert.deepEqual([got[2]!.level, got[2]!.err], ['error', 'boom']);
    assert.equal(log.dropped, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an explicit role wins over the one read from the node id; an unknown level falls back to info', async () => {
  assert.equal(roleOfNode('router-12'), 'router');
  assert.equal(roleOfNode('embedded'), 'embedded');
  const dir = mkdtempSync(join(tmpdir(), 'mp-log-'));
  try {
    const file = join(dir, 'edge.log');
    const log = createLogger('edge-a', file, 'loud' as never, { role: 'gateway' });
    log.debug('hidden');
    log.info('shown');
    await log.close();
    const got = lines(file);
    assert.equal(got.length, 1);
    assert.equal(got[0]!.role, 'gateway');
    assert.equal(got[0]!.node, 'edge-a');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a destination backed up past its cap drops lines and counts them instead of buffering without bound', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mp-log-'));
  try {
    const file = join(dir, 'flood.log');
    const log = createLogger('feed-1', file, 'info', { maxBufferBytes: 16 * 1024 });
    const pad = 'x'.repeat(200);
    // One synchronous burst: the async destination cannot drain in between.
    for (let i = 0; i < 5_000; i++) log.info('flood', { i, pad });
    await log.close();
    const got = lines(file);
    assert.ok(log.dropped > 0, 'some lines were dropped');
    assert.equal(got.length + log.dropped, 5_000, 'every line is either written whole or counted as dropped');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pushctl logs prints a JSON line for a person, and passes other lines through', () => {
  const line = JSON.stringify({ level: 'warn', time: '2026-12-03T13:00:01.234Z', role: 'gateway', node: 'gateway-1', pid: 7, conn: 3, msg: 'slow consumer', lagMs: 1500 });
  assert.equal(formatLogLine(line, { color: false }), '13:00:01.234 WARN  gateway-1 slow consumer conn=3 lagMs=1500');
  assert.equal(formatLogLine('[1234] nats-server says hi', { color: false }), '[1234] nats-server says hi');
  assert.equal(formatLogLine('{"ready":true,"id":"x"}', { color: false }), '{"ready":true,"id":"x"}');
  assert.match(formatLogLine(JSON.stringify({ level: 'error', time: 'bad', node: 'n', msg: 'm', err: 'a b' }), { color: false }), /ERROR n m err="a b"/);
});
