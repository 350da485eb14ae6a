import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseCsvLine, seriesFromFileName } from '../../system/history/csv-import.ts';
import { SqliteKlineStore } from '../../system/history/sqlite-store.ts';
import { planCluster, portsFromBase } from '../../cli/lib/cluster-plan.ts';

test('Binance CSV dump lines: milliseconds, microseconds, header', () => {
  assert.deepEqual(seriesFromFileName('/x/BTCUSDT-1m-2024-01.csv'), { symbol: 'BTCUSDT', interval: '1m' });
  assert.equal(seriesFromFileName('klines.csv'), undefined);
  assert.equal(parseCsvLine('open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore', 'BTCUSDT', '1m'), undefined);
  const k = parseCsvLine('1704067200000,42283.58,42298.62,42261.02,42298.61,35.92724,1704067259999,1519036.93,1327,14.32,605425.39,0', 'BTCUSDT', '1m')!;
  assert.deepEqual(k, {
    symbol: 'BTCUSDT', interval: '1m', openTime: 1704067200000, open: '42283.58', high: '42298.62', low: '42261.02', close: '42298.61',
    volume: '35.92724', closeTime: 1704067259999, quoteVolume: '1519036.93', trades: 1327, takerBuyBase: '14.32', takerBuyQuote: '605425.39',
  });
  const us = parseCsvLine('1735689600000000,1,2,0.5,1.5,10,1735689659999999,15,3,4,6,0', 'BTCUSDT', '1m')!;
  assert.equal(us.openTime, 1735689600000);
  assert.equal(us.closeTime, 1735689659999);
});

test('pushctl history import loads a dump into the embedded store with progress', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mp-import-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'ETHUSDT-1h-2023-05.csv');
  const lines = ['open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore'];
  const t0 = Date.UTC(2023, 4, 1);
  for (let i = 0; i < 5000; i++) lines.push(`${t0 + i * 3_600_000},1.${i},2,0.5,1.5,10,${t0 + (i + 1) * 3_600_000 - 1},15,${i},4,6,0`);
  writeFileSync(file, lines.join('\n') + '\n');
  const r = spawnSync(process.execPath, ['bin/run.js', 'history', 'import', file, '--data-dir', dir, '--no-redis'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /imported 5000 ETHUSDT 1h klines/);
  assert.match(r.stderr, /ETHUSDT 1h: \d+ klines \(\d+%/);
  const store = new SqliteKlineStore(join(dir, 'history.sqlite'));
  t.after(() => store.close());
  const rows = await store.query({ symbol: 'ETHUSDT', interval: '1h', from: 0, to: Number.MAX_SAFE_INTEGER, limit: 10_000, order: 'asc' });
  assert.equal(rows.length, 5000);
  assert.equal(rows[4999]!.open, '1.4999');
  assert.equal(rows[4999]!.openTime, t0 + 4999 * 3_600_000);
});

test('pushctl up plan: embedded history by default, a Cassandra process with --history cassandra', () => {
  const base = { routers: 1, gateways: 1, servers: 2, symbols: 2, rate: 1, host: '127.0.0.1', dataDir: '/tmp/x', bus: { kind: 'embedded' as const }, cache: { kind: 'none' as const } };
  const ports = portsFromBase(7100, base);
  const def = planCluster({ ...base, ports });
  assert.deepEqual(def.history, { kind: 'embedded' });
  assert.deepEqual(def.roles.find((r) => r.id === 'server-2')!.config.history, { embeddedPath: '/tmp/x/history.sqlite' });
  const cas = planCluster({ ...base, ports, history: { kind: 'spawn', port: 9999 } });
  assert.equal(cas.cassandra, '127.0.0.1:9999');
  const p = cas.processes.find((x) => x.id === 'cassandra')!;
  assert.equal(p.kind, 'binary');
  assert.deepEqual(p.ports, [9999]);
  assert.deepEqual(p.args.slice(0, 3), ['scripts/cassandra/start.ts', '--port', '9999']);
  assert.deepEqual(cas.roles.find((r) => r.id === 'server-1')!.config.history, { cassandra: '127.0.0.1:9999' });
  const ext = planCluster({ ...base, ports, history: { kind: 'external', contactPoints: '10.0.0.9:9042' } });
  assert.equal(ext.processes.some((x) => x.id === 'cassandra'), false);
  assert.equal(ext.cassandra, '10.0.0.9:9042');
});
