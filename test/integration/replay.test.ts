// Real data through the real pipeline: a Binance aggTrades CSV and a .jsonl
// capture of combined-stream frames, written here, replayed by the feed
// (looped, 4× faster) → NATS → push-server → gateway → a WebSocket client,
// which receives the aggregates and trades in file order with their original
// ids, prices and quantities; the replayed symbols are the cluster's symbol
// list (router, exchangeInfo) and nothing else is.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { adminJson, startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';
import { pushctl } from '../helpers/pushctl.ts';

type Msg = Record<string, any>;

const T0 = 1_735_689_600_000; // 2025-01-01, written in µs as Binance's 2025 spot files are
// [aggregate id, price, qty, first id, last id, ms after T0, buyer is maker]
const AGG: Array<[number, string, string, number, number, number, boolean]> = [
  [3_000_000_001, '93576.00000000', '0.00052000', 4_000_000_001, 4_000_000_003, 0, true],
  [3_000_000_002, '93576.01000000', '0.12345000', 4_000_000_004, 4_000_000_004, 120, false],
  [3_000_000_003, '93575.99000000', '1.00000000', 4_000_000_005, 4_000_000_009, 300, true],
  [3_000_000_004, '93580.50000000', '0.00008000', 4_000_000_010, 4_000_000_010, 420, false],
  [3_000_000_005, '93581.00000000', '2.50000000', 4_000_000_011, 4_000_000_012, 600, false],
];
// [trade id, price, qty, ms after T0]
const ETH: Array<[number, string, string, number]> = [
  [700, '3337.12000000', '0.01000000', 50],
  [701, '3337.13000000', '0.50000000', 250],
  [702, '3336.90000000', '0.07770000', 450],
];

let dir: string;
let cluster: TestCluster;
let ws: WebSocket | undefined;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'replay-it-'));
  const csv = join(dir, 'BTCUSDT-aggTrades-2025-01-01.csv');
  writeFileSync(csv, 'agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,is_best_match\n' +
    AGG.map(([a, p, q, f, l, dt, m]) => `${a},${p},${q},${f},${l},${(T0 + dt) * 1000},${m ? 'True' : 'False'},True`).join('\n') + '\n');
  const jsonl = join(dir, 'capture.jsonl');
  writeFileSync(jsonl, [
    ...ETH.map(([t, p, q, dt]) => JSON.stringify({ stream: 'ethusdt@trade', data: { e: 'trade', E: T0 + dt + 1, s: 'ETHUSDT', t, p, q, T: T0 + dt, m: t % 2 === 0, M: true } })),
    JSON.stringify({ stream: 'ethusdt@depth', data: { e: 'depthUpdate', E: T0 + 460, s: 'ETHUSDT', U: 1, u: 2, b: [], a: [] } }),
  ].join('\n') + '\n');
  cluster = await startCluster({ servers: 1, gateways: 1, feed: { replay: { files: [csv, jsonl], speed: 4, loop: true } } });
});

after(async () => {
  ws?.terminate();
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('the replayed symbols are the cluster\'s symbols: router, exchangeInfo, and an unknown symbol refused', async () => {
  const { symbols } = (await (await fetch(`${cluster.routerUrl}/v1/symbols`)).json()) as { symbols: string[] };
  assert.deepEqual([...symbols].sort(), ['btcusdt', 'ethusdt']);
  const http = cluster.gateways[0]!.urls.http!;
  await waitFor(async () => {
    const info = (await (await fetch(`${http}/api/v3/exchangeInfo`)).json()) as { symbols?: Array<{ symbol: string }> };
    return (info.symbols ?? []).map((s) => s.symbol).sort().join() === 'BTCUSDT,ETHUSDT';
  }, 10_000, 'exchangeInfo listing BTCUSDT and ETHUSDT');
});

test('a WebSocket client receives the CSV\'s aggregates and the capture\'s trades in order, with their original prices and quantities', async () => {
  const msgs: Msg[] = [];
  ws = new WebSocket(`${cluster.gateways[0]!.urls.ws!}/stream?streams=btcusdt@aggTrade/ethusdt@trade`, { perMessageDeflate: false });
  ws.on('message', (d: Buffer) => msgs.push(JSON.parse(d.toString()) as Msg));
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws!.once('open', () => resolve());
    ws!.once('unexpected-response', (_q, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
  // A symbol that is not in the files is not the cluster's.
  ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['solusdt@trade'], id: 1 }));
  // Looped: at least one whole pass of each file arrives after subscribing.
  const pass = (stream: string, first: number, idKey: string, n: number): Msg[] | undefined => {
    const data = msgs.filter((m) => String(m.stream).toLowerCase() === stream.toLowerCase()).map((m) => m.data as Msg);
    const i = data.findIndex((d) => d[idKey] === first);
    return i >= 0 && data.length >= i + n ? data.slice(i, i + n) : undefined;
  };
  await waitFor(() => pass('btcusdt@aggTrade', AGG[0]![0], 'a', AGG.length) !== undefined && pass('ethusdt@trade', ETH[0]![0], 't', ETH.length) !== undefined, 20_000, 'a whole pass of both files');
  const reply = msgs.find((m) => m.id === 1);
  assert.match(String(reply?.error?.msg), /unknown symbol "solusdt"/, JSON.stringify(reply));

  const agg = pass('btcusdt@aggTrade', AGG[0]![0], 'a', AGG.length)!;
  assert.deepEqual(agg.map((d) => [d.e, d.s, d.a, d.p, d.q, d.f, d.l, d.T, d.m]), AGG.map(([a, p, q, f, l, dt, m]) => ['aggTrade', 'BTCUSDT', a, p, q, f, l, T0 + dt, m]));
  const eth = pass('ethusdt@trade', ETH[0]![0], 't', ETH.length)!;
  assert.deepEqual(eth.map((d) => [d.e, d.s, d.t, d.p, d.q, d.T, d.m]), ETH.map(([t, p, q, dt]) => ['trade', 'ETHUSDT', t, p, q, T0 + dt, t % 2 === 0]));

  // REST aggTrades (the owning server's recent trades, several passes by now) carries them too.
  const rest = (await (await fetch(`${cluster.gateways[0]!.urls.http!}/api/v3/aggTrades?symbol=BTCUSDT&limit=1000`)).json()) as Msg[];
  const from = rest.findIndex((d, i) => d.a === AGG[0]![0] && i + AGG.length <= rest.length);
  assert.ok(from >= 0, JSON.stringify(rest.slice(-10)));
  assert.deepEqual(rest.slice(from, from + AGG.length).map((d) => [d.a, d.p, d.q, d.f, d.l]), AGG.map(([a, p, q, f, l]) => [a, p, q, f, l]));

  // The feed counts the capture's diff-depth line as skipped, every pass, and says why in its stats.
  const stats = await adminJson<{ mode: string; replay: { files: Array<{ skipped: Record<string, number>; events: number }>; passes: Record<string, number> } }>(`${cluster.feed!.urls.admin!}/stats`);
  assert.equal(stats.mode, 'replay');
  assert.deepEqual(stats.replay.files.map((f) => f.events), [AGG.length, ETH.length]);
  assert.deepEqual(Object.values(stats.replay.files[1]!.skipped), [1]);
  assert.ok(Object.values(stats.replay.passes).every((n) => n >= 1), JSON.stringify(stats.replay.passes));
});

test('pushctl up --feed replay:FILE reads the file through first: a malformed row stops it (exit 2, file and line) before anything starts', async () => {
  const bad = join(dir, 'BTCUSDT-trades-2025-01-02.csv');
  writeFileSync(bad, `1,93576.0,0.1,9357.6,${T0},true,true\n2,93576.0,oops,9357.6,${T0 + 1},true,true\n`);
  const r = await pushctl(['up', '--feed', `replay:${bad}`, '--replay-speed', '2', '--data-dir', join(dir, 'pushctl'), '--port-base', '0', '--detach'], { timeoutMs: 60_000 });
  assert.equal(r.code, 2, r.out);
  assert.match(r.stderr, /BTCUSDT-trades-2025-01-02\.csv:2: qty is not a decimal number: "oops"/);
  assert.doesNotMatch(r.out, /starting the/);
});
