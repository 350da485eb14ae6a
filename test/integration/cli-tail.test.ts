// pushctl tail: the terminal client the README uses instead of wscat, against
// a real (embedded) cluster started by pushctl up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushctl } from '../helpers/pushctl.ts';

test('pushctl tail prints live frames as JSON lines (json and protobuf), and says why a stream is refused', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-tail-'));
  t.after(async () => {
    await pushctl(['down', '--data-dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const up = await pushctl(['up', '--embedded', '--detach', '--port-base', '0', '--servers', '1', '--gateways', '1', '--symbols', '3', '--data-dir', dir]);
  assert.equal(up.code, 0, up.out);

  const json = await pushctl(['tail', 'btcusdt@trade', 'ethusdt@ticker', '--count', '4', '--data-dir', dir], { timeoutMs: 30_000 });
  assert.equal(json.code, 0, json.out);
  const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { stream: string; data: { e: string; s: string; seq: number } });
  assert.equal(lines.length, 4);
  for (const l of lines) {
    assert.ok(['btcusdt@trade', 'ethusdt@ticker'].includes(l.stream), l.stream);
    assert.equal(typeof l.data.seq, 'number');
    assert.match(l.data.s, /^(BTCUSDT|ETHUSDT)$/);
  }

  const proto = await pushctl(['tail', 'btcusdt@trade', '--count', '2', '--format', 'protobuf', '--data-dir', dir], { timeoutMs: 30_000 });
  assert.equal(proto.code, 0, proto.out);
  const frames = proto.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event?: { topic: string; trade?: { price: string } } });
  assert.equal(frames.length, 2);
  assert.ok(frames.every((f) => f.event?.topic === 'btcusdt@trade' && /^\d+\.\d+$/.test(f.event.trade?.price ?? '')), proto.stdout);

  const refused = await pushctl(['tail', 'nosuchcoin@trade', '--count', '1', '--data-dir', dir], { timeoutMs: 30_000 });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /refused the stream: HTTP 400 .*unknown symbol/);
});
