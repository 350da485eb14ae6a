// The case the bench's liveness watchdog exists for, end to end: `pushctl
// bench` on a `pushctl up` cluster with a reset partition (nft) on the
// clients' link for 2 s. The resets close the gateways' side of every
// connection but never reach the listen-only clients in the namespace; once
// the cut heals they would sit on dead connections for the rest of the run.
// With `liveness: 3s` each one is found, counted and reconnected through the
// router, and every client receives again by the end (measured without a
// liveness: 0 msgs/s after the heal, no close seen). Needs root (the
// client namespace).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pushctl } from '../helpers/pushctl.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CAPTURE = join(ROOT, 'scenarios', 'captures', 'hot-symbol.jsonl');

type Phase = { name: string; intervals: number; msgsPerSec: number; reconnects: number; unplannedCloses: number; openEnd: number };

test('after a reset partition on the clients\' link heals, listen-only sessions are found by liveness and reconnect', { timeout: 300_000 }, async (t) => {
  assert.equal(process.getuid?.(), 0, 'client-side faults need root (a network namespace for the agents)');
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-bench-liveness-'));
  t.after(async () => {
    await pushctl(['chaos', 'off', '--data-dir', dir]);
    if (existsSync(join(dir, 'cluster.json'))) await pushctl(['down', '--data-dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const up = await pushctl(['up', '--detach', '--port-base', '0', '--servers', '1', '--gateways', '2', '--symbols', '3', '--data-dir', dir]);
  assert.equal(up.code, 0, up.stderr + up.stdout);
  const file = join(dir, 'cut.yaml');
  writeFileSync(file, `name: cut\ncapture: ${CAPTURE}\namplify: 2\njitter: 1s\nduration: 16s\nliveness: 3s\n`);
  const r = await pushctl([
    'bench', file, '--data-dir', dir, '--no-dashboard', '--json', '--out', join(dir, 'reports'),
    '--chaos', 'partition-reset', '--chaos-at', '3s', '--chaos-for', '2s', '--chaos-backend', 'auto',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const { report } = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { report: string };
  const s = JSON.parse(readFileSync(join(report, 'summary.json'), 'utf8'));
  const c = s.results.counters;
  const target = s.results.connections.target as number;
  const [before, during, after] = s.phases.phases as Phase[];
  t.diagnostic(`liveness timeouts ${c.livenessTimeouts}, unplanned closes ${c.unplannedCloses}, reconnects ${c.reconnects}; msgs/s before ${before!.msgsPerSec}, during ${during!.msgsPerSec}, after ${after!.msgsPerSec}; fault window ${s.faults[0].window}`);
  assert.equal(s.scenario.livenessMs, 3_000);
  assert.equal(s.faults[0].ok, true, s.faults[0].message);
  assert.ok(c.livenessTimeouts > 0, `the cut clients saw no close: only the watchdog finds them (${JSON.stringify(c)})`);
  assert.ok(c.unplannedCloses >= c.livenessTimeouts, 'a liveness timeout is an unplanned close');
  assert.equal(c.reconnects, c.unplannedCloses, 'every cut session came back');
  assert.equal(c.connectFailures, 0);
  // The window of a profile is its own 2 s; the clients find out after the heal, in the after phase, then settle.
  assert.equal(after!.unplannedCloses, c.livenessTimeouts, 'each found once, after the heal');
  assert.deepEqual(s.timeline.slice(-3).map((i: { unplannedCloses: number }) => i.unplannedCloses), [0, 0, 0], 'settled by the end');
  assert.equal(after!.openEnd, target, 'every client is connected at the end');
  assert.ok(after!.msgsPerSec > 0, 'and receiving');
  assert.ok(s.timeline.some((i: { livenessTimeouts: number }) => i.livenessTimeouts > 0), 'the timeline shows when');
  assert.match(readFileSync(join(report, 'report.html'), 'utf8'), /liveness timeouts\)<\/th><td>\d+ \(\d+\)/);
});
