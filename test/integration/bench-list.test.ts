// `pushctl bench --list` and the errors that name the bundled scenarios:
// the real CLI, no cluster needed (nothing is started before the scenario is known).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pushctl } from '../helpers/pushctl.ts';
import { bundledScenarios } from '../../cli/lib/bench/bundled.ts';

test('pushctl bench --list prints every bundled scenario with its one-line description', async () => {
  const r = await pushctl(['bench', '--list']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^Bundled scenarios/);
  const bundled = bundledScenarios();
  assert.equal(lines.length - 1, bundled.length);
  for (const s of bundled) assert.ok(lines.some((l) => l.startsWith(`  ${s.name} `)), `${s.name} listed`);
  assert.match(r.stdout, /\n {2}hot-symbol +One hot symbol to 500 clients\n/);
  assert.match(r.stdout, /\n {2}gateway-kill +kill -9 of gateway-2 under load; its clients must come back\n/);
  for (const l of lines) assert.ok(l.length <= 80, `fits 80 columns: ${l}`);
});

test('no scenario, or an unknown one: exit 2, and the error names the bundled scenarios', async () => {
  const none = await pushctl(['bench']);
  assert.equal(none.code, 2, none.stdout + none.stderr);
  assert.match(none.stderr, /no scenario given/);
  const unknown = await pushctl(['bench', 'hot-symbl']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no scenario "hot-symbl": not a file, and not a bundled scenario/);
  for (const r of [none, unknown]) {
    for (const s of bundledScenarios()) assert.match(r.stderr, new RegExp(`\\n {2}${s.name} +\\S`), `${s.name} named`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  const badWarmup = await pushctl(['bench', 'hot-symbol', '--warmup', '25s', '--target', 'http://127.0.0.1:9', '--nats', 'nats://127.0.0.1:9']);
  assert.equal(badWarmup.code, 2);
  assert.match(badWarmup.stderr, /warm-up 25 s is not shorter than the run \(20 s\)/);
});
