// `pushctl up --feed`: sim or replay:FILE[,FILE…] with its flags, and the
// plan handing the replay to the feed (no simulated users on a replay).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkReplayFiles, parseFeedFlags } from '../../cli/lib/replay-flags.ts';
import { planCluster, portsFromBase } from '../../cli/lib/cluster-plan.ts';

const base = { feed: 'sim', 'replay-loop': false };

test('--feed sim is the simulator; replay flags without a replay are refused', () => {
  assert.equal(parseFeedFlags(base), undefined);
  assert.throws(() => parseFeedFlags({ ...base, 'replay-speed': 2, 'replay-loop': true }), /--replay-speed, --replay-loop only go with --feed replay:FILE/);
  assert.throws(() => parseFeedFlags({ ...base, feed: 'binance' }), /--feed binance: expected sim or replay:FILE/);
  assert.throws(() => parseFeedFlags({ ...base, feed: 'replay:' }), /name the file\(s\) to replay/);
});

test('--feed replay:A,B resolves the files; speed, loop and symbol pass on', () => {
  assert.deepEqual(parseFeedFlags({ feed: 'replay:a.csv, /d/b.jsonl', 'replay-speed': 10, 'replay-loop': true, 'replay-symbol': 'BTCUSDT' }, '/w'), {
    files: ['/w/a.csv', '/d/b.jsonl'], speed: 10, loop: true, symbol: 'btcusdt',
  });
  assert.deepEqual(parseFeedFlags({ ...base, feed: 'replay:x.csv' }, '/w'), { files: ['/w/x.csv'], speed: 1, loop: false });
});

test('the plan gives the feed the replay and no simulated users', () => {
  const counts = { routers: 1, gateways: 1, servers: 1 };
  const replay = { files: ['/w/BTCUSDT-aggTrades-2024-01-01.csv'], speed: 2, loop: true };
  const plan = planCluster({
    ...counts, symbols: 5, rate: 7, users: 3, host: '127.0.0.1', dataDir: '/tmp/pc',
    bus: { kind: 'spawn', bin: '/usr/bin/nats-server' }, cache: { kind: 'none' }, ports: portsFromBase(7100, counts), replay,
  });
  const feed = plan.roles.find((r) => r.role === 'feed')!;
  assert.deepEqual(feed.config.replay, replay);
  assert.equal(feed.config.users, 0);
});

test('checkReplayFiles: one line per file, what it replays and what it skips', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'replay-flags-'));
  try {
    const csv = join(dir, 'BTCUSDT-aggTrades-2024-01-01.csv');
    writeFileSync(csv, '1,2.0,3.0,1,1,1704067200000,true,true\n2,2.5,3.0,2,2,1704067202000,true,true\n');
    const jsonl = join(dir, 'c.jsonl');
    writeFileSync(jsonl, '{"e":"trade","E":1,"s":"ETHUSDT","t":1,"p":"1","q":"1","T":1,"m":true}\n{"e":"depthUpdate","s":"ETHUSDT"}\n');
    const { lines } = await checkReplayFiles({ files: [csv, jsonl], speed: 2, loop: true });
    assert.match(lines[0]!, /BTCUSDT-aggTrades-2024-01-01\.csv: 2 aggTrades events of BTCUSDT over 2\.0 s \(1\.0 s at 2×\), looped$/);
    assert.match(lines[1]!, /c\.jsonl: 1 stream events of ETHUSDT .*; 1 lines skipped: 1 × diff depth/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
