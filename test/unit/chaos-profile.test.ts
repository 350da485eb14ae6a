import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadProfiles, parseDuration, parsePercent, parseProfileText, parseRate, resolveProfile, summarize } from '../../cli/lib/chaos/profile.ts';

test('units: durations, rates and percentages', () => {
  assert.equal(parseDuration('150ms', 'd'), 150);
  assert.equal(parseDuration('2s', 'd'), 2000);
  assert.equal(parseDuration(40, 'd'), 40);
  assert.equal(parseRate('1mbit', 'r'), 1e6);
  assert.equal(parseRate('768kbit', 'r'), 768e3);
  assert.equal(parseRate('50000B/s', 'r'), 400e3);
  assert.equal(parsePercent('2.5%', 'p'), 2.5);
  assert.throws(() => parseDuration('fast', 'delay'), /delay: expected a duration/);
  assert.throws(() => parseRate('0kbit', 'bandwidth'), /bandwidth: expected a rate/);
  assert.throws(() => parsePercent('150%', 'loss'), /loss: expected a percentage between 0 and 100/);
});

test('every shipped profile loads, names its source, and the published numbers are what the file says', () => {
  const all = loadProfiles();
  assert.ok(all.length >= 20);
  for (const p of all) assert.ok(p.source.length > 10, `${p.name} has a source`);
  const slow3g = resolveProfile('devtools-slow-3g');
  assert.deepEqual(slow3g.bandwidth, { up: 400_000, down: 400_000 }); // 50,000 B/s
  assert.deepEqual(slow3g.delayMs, { up: 200, down: 200 }); // 400 ms RTT
  const wpt = resolveProfile('wpt-3g');
  assert.deepEqual(wpt.bandwidth, { down: 1.6e6, up: 768e3 });
  const gprs = resolveProfile('comcast-gprs');
  assert.equal(gprs.loss?.percent, 2);
  const flapping = resolveProfile('flapping-partition');
  assert.deepEqual(flapping.partition, { mode: 'drop', schedule: { upMs: 20_000, downMs: 5_000 } });
  assert.match(summarize(resolveProfile('lossy-wifi')), /loss 5% corr 25%/);
  for (const name of ['devtools-slow-4g', 'devtools-fast-4g', 'wpt-3g-slow', 'wpt-edge', 'wpt-2g', 'wpt-dsl', 'comcast-edge', 'comcast-3g', 'comcast-dsl-poor', 'comcast-wifi-good', 'comcast-starlink', 'satellite-geo'])
    assert.ok(resolveProfile(name));
});

test('clear errors: file, field, and what was expected', () => {
  assert.throws(() => parseProfileText('delay: 10ms\n', 'x', 'netem/x.yaml'), /netem\/x.yaml: source: required/);
  assert.throws(() => parseProfileText('source: s\ndelay: 10ms\nlatency: 5ms\n', 'x', 'f.yaml'), /f.yaml: latency: unknown field/);
  assert.throws(() => parseProfileText('source: s\njitter: 5ms\ndistribution: gaussian\n', 'x'), /distribution: one of uniform, normal/);
  assert.throws(() => parseProfileText('source: s\nreorder: 5%\n', 'x'), /reorder: needs a delay/);
  assert.throws(() => parseProfileText('source: s\npartition: {mode: blackhole}\n', 'x'), /partition.mode: drop or reset/);
  assert.throws(() => parseProfileText('source: s\nbandwidth: {down: 1mbit, sideways: 2mbit}\n', 'x'), /bandwidth.sideways: unknown field/);
  assert.throws(() => parseProfileText('a: [', 'x', 'bad.yaml'), /bad.yaml: not valid YAML/);
  assert.throws(() => resolveProfile('no-such-profile'), /no profile named no-such-profile/);
  const p = parseProfileText('source: s\nloss: {percent: 3%, correlation: 25%}\nproxy: {resetAfter: 2s, slicer: {averageSize: 64, sizeVariation: 8}}\n', 'mine');
  assert.equal(p.name, 'mine');
  assert.deepEqual(p.loss, { percent: 3, correlation: 25 });
  assert.deepEqual(p.proxy, { resetAfterMs: 2000, slicer: { averageSize: 64, sizeVariation: 8, delayMs: 0 } });
});
