// The replay player against a clock it is given: events fall due at
// start + (time − first time) ÷ speed, files play side by side on their own
// time bases, seq counts per topic across loop passes, publish_time_us is the
// intended time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Event } from '../../proto/gen/market_pb.js';
import { ReplayPlayer } from '../../system/feed/replay-player.ts';

const dir = mkdtempSync(join(tmpdir(), 'replay-player-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const T0 = 1_704_067_200_000;
const csv = join(dir, 'BTCUSDT-aggTrades-2024-01-01.csv');
// Trades at +0, +1000 and +3000 ms (the last in µs).
writeFileSync(csv, `1,100.0,1,1,1,${T0},true,true\n2,101.0,2,2,2,${T0 + 1000},false,true\n3,102.0,3,3,3,${(T0 + 3000) * 1000},true,true\n`);
const jsonl = join(dir, 'eth.jsonl');
writeFileSync(jsonl, `${JSON.stringify({ stream: 'ethusdt@trade', data: { e: 'trade', E: 5, s: 'ETHUSDT', t: 9, p: '2000.5', q: '0.25', T: 5_000, m: false } })}\n`);

type Out = { subject: string; event: Event };
const collect = (out: Out[]) => (subject: string, event: Event) => out.push({ subject, event });

test('events fall due by their original times ÷ speed, files side by side', async () => {
  const start = 1_000_000;
  const p = new ReplayPlayer({ files: [csv, jsonl], speed: 2, loop: false, epoch: 7, startTimeMs: start });
  const out: Out[] = [];
  assert.equal(await p.nextDueMs(), start);
  assert.equal(await p.advanceTo(start, collect(out)), 2); // the first of each file
  assert.equal(await p.nextDueMs(), start + 500);
  assert.equal(await p.advanceTo(start + 499, collect(out)), 0);
  assert.equal(await p.advanceTo(start + 1499, collect(out)), 1);
  assert.equal(await p.nextDueMs(), start + 1500);
  assert.equal(await p.advanceTo(start + 1500, collect(out)), 1);
  assert.equal(await p.nextDueMs(), Infinity);
  assert.ok(p.done);
  assert.deepEqual(out.map((o) => [o.subject, o.event.topic, Number(o.event.seq), Number(o.event.epoch), Number(o.event.publishTimeUs) / 1000]), [
    ['md.trade.btcusdt', 'btcusdt@trade', 1, 7, start],
    ['md.trade.ethusdt', 'ethusdt@trade', 1, 7, start],
    ['md.trade.btcusdt', 'btcusdt@trade', 2, 7, start + 500],
    ['md.trade.btcusdt', 'btcusdt@trade', 3, 7, start + 1500],
  ]);
  const trades = out.map((o) => (o.event.payload.case === 'trade' ? o.event.payload.value : undefined)!);
  assert.deepEqual(trades.map((t) => [t.symbol, Number(t.tradeId), t.price, t.qty, Number(t.tradeTime), t.buyerIsMaker]), [
    ['BTCUSDT', 1, '100.0', '1', T0, true],
    ['ETHUSDT', 9, '2000.5', '0.25', 5_000, false],
    ['BTCUSDT', 2, '101.0', '2', T0 + 1000, false],
    ['BTCUSDT', 3, '102.0', '3', T0 + 3000, true],
  ]);
});

test('with loop a file starts over 1 ms after its last event; seq keeps counting; maxEvents bounds a turn', async () => {
  const start = 5_000;
  const passes: number[] = [];
  const p = new ReplayPlayer({ files: [csv], speed: 1000, loop: true, epoch: 1, startTimeMs: start, onPassEnd: (_f, pass) => passes.push(pass) });
  const out: Out[] = [];
  assert.equal(await p.advanceTo(start + 100, collect(out), 4), 4);
  assert.equal(await p.advanceTo(start + 7, collect(out)), 2);
  assert.deepEqual(out.map((o) => Number(o.event.publishTimeUs) / 1000), [start, start + 1, start + 3, start + 4, start + 5, start + 7]);
  assert.deepEqual(out.map((o) => Number(o.event.seq)), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(passes, [1, 2]); // the second pass ends once the player looks past its last event
  assert.equal(p.done, false);
  await p.close();
  assert.ok(p.done);
});

test('a bad speed is refused', () => {
  assert.throws(() => new ReplayPlayer({ files: [csv], speed: 0, loop: false, epoch: 1, startTimeMs: 0 }), /speed must be a positive number/);
  assert.throws(() => new ReplayPlayer({ files: [], speed: 1, loop: false, epoch: 1, startTimeMs: 0 }), /at least one file/);
});
