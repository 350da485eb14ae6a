// Replay parsers on files written here: Binance's CSV layouts with and
// without a header row, ms and µs timestamps, .jsonl frames of both shapes,
// skips counted by reason, and a malformed row failing with file and line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { csvNameInfo, toMs } from '../../system/feed/replay-parse.ts';
import { readReplayFile, scanReplayFile, type ReplayRow } from '../../system/feed/replay-source.ts';

const dir = mkdtempSync(join(tmpdir(), 'replay-parse-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function rows(path: string, opts = {}): Promise<ReplayRow[]> {
  const out: ReplayRow[] = [];
  for await (const r of readReplayFile(path, opts)) out.push(r);
  return out;
}

const value = (r: ReplayRow) => r.event.payload!.value as Record<string, unknown>;

test('file names: symbol, kind and kline interval as Binance names its files', () => {
  assert.deepEqual(csvNameInfo('/x/BTCUSDT-aggTrades-2024-01-01.csv'), { symbol: 'btcusdt', kind: 'aggTrades' });
  assert.deepEqual(csvNameInfo('ETHUSDT-trades-2025-03.csv'), { symbol: 'ethusdt', kind: 'trades' });
  assert.deepEqual(csvNameInfo('BNBUSDT-1M-2024-01.csv'), { symbol: 'bnbusdt', kind: 'klines', interval: '1M' });
  assert.deepEqual(csvNameInfo('capture.csv'), {});
  assert.equal(toMs(1_704_067_200_123), 1_704_067_200_123);
  assert.equal(toMs(1_735_689_600_123_456), 1_735_689_600_123);
});

test('aggTrades CSV without header (ms) and with header (µs) give the same trades', async () => {
  const ms = file('BTCUSDT-aggTrades-2024-01-01.csv', '100,42000.10000000,0.50000000,200,201,1704067200000,true,true\n101,42000.20000000,0.00100000,202,202,1704067200250,False,True\n');
  const us = file('BTCUSDT-aggTrades-2025-01-01.csv',
    'agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,is_best_match\r\n100,42000.10000000,0.50000000,200,201,1704067200000000,true,true\r\n101,42000.20000000,0.00100000,202,202,1704067200250999,False,True\r\n');
  for (const path of [ms, us]) {
    const r = await rows(path);
    assert.deepEqual(r.map((x) => [x.event.symbol, x.event.stream, x.event.timeMs]), [['btcusdt', 'trade', 1704067200000], ['btcusdt', 'trade', 1704067200250]]);
    assert.deepEqual(r.map((x) => [value(x).tradeId, value(x).firstTradeId, value(x).lastTradeId, value(x).price, value(x).qty, value(x).buyerIsMaker, value(x).symbol]), [
      [100n, 200n, 201n, '42000.10000000', '0.50000000', true, 'BTCUSDT'],
      [101n, 202n, 202n, '42000.20000000', '0.00100000', false, 'BTCUSDT'],
    ]);
  }
});

test('trades CSV: the symbol from --replay-symbol when the name has none; gzip read through', async () => {
  const path = file('mytrades.csv.gz', gzipSync('id,price,qty,quote_qty,time,is_buyer_maker,is_best_match\n7,1.5,2,3,1704067200000,false,true\n'));
  await assert.rejects(rows(path), /mytrades\.csv\.gz:1: .*--replay-symbol/);
  const r = await rows(path, { symbol: 'SOLUSDT' });
  assert.equal(r.length, 1);
  assert.deepEqual([r[0]!.line, r[0]!.event.symbol, value(r[0]!).price, value(r[0]!).qty], [2, 'solusdt', '1.5', '2']);
});

test('klines CSV: closed candles on kline_<interval>, due at their close time', async () => {
  const path = file('ETHUSDT-1m-2024-01-01.csv', '1704067200000,2281.87000000,2283.00000000,2281.86000000,2282.50000000,123.4560,1704067259999,281700.1,250,60.1,137000.5,0\n');
  const [k] = await rows(path);
  assert.equal(k!.event.stream, 'kline_1m');
  assert.equal(k!.event.timeMs, 1704067259999);
  const v = value(k!);
  assert.deepEqual([v.interval, v.openTime, v.open, v.high, v.low, v.close, v.volume, v.tradeCount, v.closed], ['1m', 1704067200000n, '2281.87000000', '2283.00000000', '2281.86000000', '2282.50000000', '123.4560', 250n, true]);
});

test('jsonl: combined-stream frames and bare events; bookTicker takes the previous time; skips are counted by reason', async () => {
  const lines = [
    JSON.stringify({ stream: 'ethusdt@trade', data: { e: 'trade', E: 1704067200001, s: 'ETHUSDT', t: 5, p: '2281.50', q: '0.1000', T: 1704067200000, m: true, M: true } }),
    JSON.stringify({ u: 9, s: 'ETHUSDT', b: '2281.49', B: '1.5', a: '2281.51', A: '2' }),
    '',
    JSON.stringify({ e: 'aggTrade', E: 1704067200600000, s: 'XRPUSDT', a: 3, p: '0.6', q: '10', f: 1, l: 2, T: 1704067200500000, m: false, M: true }),
    JSON.stringify({ stream: 'ethusdt@depth', data: { e: 'depthUpdate', E: 1704067200700, s: 'ETHUSDT', U: 1, u: 2, b: [], a: [] } }),
    JSON.stringify({ e: 'aggTrade', E: 1704067200800, s: 'ETHUSDT', a: 3, p: '2281.6', q: '1', f: 1, l: 2, T: 1704067200800, m: false }),
    JSON.stringify({ e: 'kline', E: 1704067200900, s: 'ETHUSDT', k: { t: 1704067200000, T: 1704067259999, s: 'ETHUSDT', i: '1m', f: 5, L: 5, o: '2281.50', c: '2281.50', h: '2281.50', l: '2281.50', v: '0.1', n: 1, x: false, q: '228.15', V: '0', Q: '0' } }),
  ];
  const path = file('capture.jsonl', lines.join('\n') + '\n');
  const skipped: Array<[string, number]> = [];
  const r: ReplayRow[] = [];
  for await (const x of readReplayFile(path, {}, { onSkip: (why, line) => skipped.push([why, line]) })) r.push(x);
  assert.deepEqual(r.map((x) => [x.line, x.event.symbol, x.event.stream, x.event.timeMs]), [
    [1, 'ethusdt', 'trade', 1704067200000],
    [2, 'ethusdt', 'bookticker', 1704067200000],
    [4, 'xrpusdt', 'trade', 1704067200500],
    [7, 'ethusdt', 'kline_1m', 1704067200900],
  ]);
  assert.deepEqual([value(r[2]!).tradeId, value(r[2]!).firstTradeId, value(r[2]!).lastTradeId, value(r[2]!).price, value(r[2]!).qty], [3n, 1n, 2n, '0.6', '10']);
  assert.equal(value(r[0]!).firstTradeId, undefined); // a plain trade is its own aggregate
  assert.deepEqual(skipped.map(([why, line]) => [why.split(' ')[0], line]), [['diff', 5], ['aggTrade', 6]]);
  const s = await scanReplayFile(path);
  assert.equal(s.events, 4);
  assert.deepEqual(s.symbols, ['ethusdt', 'xrpusdt']);
  assert.equal(Object.values(s.skipped).reduce((a, b) => a + b, 0), 2);
});

test('a malformed row fails with file and line; nothing is skipped silently', async () => {
  const cases: Array<[string, string, RegExp]> = [
    ['BTCUSDT-aggTrades-2024-01-02.csv', '1,2.0,3.0,1,1,1704067200000,true,true\n2,abc,3.0,1,1,1704067200001,true,true\n', /BTCUSDT-aggTrades-2024-01-02\.csv:2: price is not a decimal number: "abc"/],
    ['BTCUSDT-trades-2024-01-02.csv', '\n1,2.0,3.0,6,1704067200000,maybe,true\n', /BTCUSDT-trades-2024-01-02\.csv:2: is_buyer_maker is not true or false/],
    ['BTCUSDT-aggTrades-2024-01-03.csv', '1,2.0,3.0,1,1,1704067200000\n', /:1: expected 7-8 columns \(aggTrades\), found 6/],
    ['BTCUSDT-trades-2024-01-03.csv', '1,2.0,3.0,x,1704067200000,true,true\n', /BTCUSDT-trades-2024-01-03\.csv:1: quote_qty is not a decimal number/],
    ['bad.jsonl', '{"e":"trade","s":"BTCUSDT","t":1,"p":"1","q":"1","T":1,"m":true}\n{"e":"trade",\n', /bad\.jsonl:2: not JSON/],
    ['bad2.jsonl', '{"e":"trade","s":"BTC/USDT","t":1,"p":"1","q":"1","T":1,"m":true}\n', /bad2\.jsonl:1: invalid symbol/],
    ['bad3.jsonl', '[1,2]\n', /bad3\.jsonl:1: expected a JSON object/],
  ];
  for (const [name, text, re] of cases) await assert.rejects(scanReplayFile(file(name, text)), re);
  await assert.rejects(scanReplayFile(file('x.txt', '')), /unknown replay file type/);
  await assert.rejects(scanReplayFile(join(dir, 'missing.csv')), /replay file .*missing\.csv/);
  await assert.rejects(scanReplayFile(file('only-skips.jsonl', '{"e":"depthUpdate","s":"BTCUSDT"}\n')), /no event to replay \(skipped: 1 × diff depth/);
});
