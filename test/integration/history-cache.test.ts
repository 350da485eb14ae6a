// Kline answers as caches see them, through a real cluster (nats-server,
// router, push-server, gateway, feed, real Redis) and the history process
// (system/history/main.ts, REST on a port of its own): ETag + 304, immutable
// closed ranges, a short max-age with the open candle, uiKlines = klines,
// the same bytes from both paths and the old JSON shape, the open candle
// current to the last trade, Binance errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startCluster, startRole, waitFor } from '../helpers/cluster.ts';
import { startRedis } from '../helpers/servers.ts';
import { makeKlines, expected } from '../helpers/klines.ts';
import { RedisKlineStore } from '../../system/history/redis-store.ts';
import { toRow } from '../../system/history/kline.ts';
import { REAL_SYMBOLS } from '../../system/common/topics.ts';

const M = 60_000;
const H = 60 * M;

test('kline caching headers, 304s, the history process, and the open candle current to the last trade', async (t) => {
  const redisSrv = await startRedis();
  t.after(() => redisSrv.stop());
  const symbol = REAL_SYMBOLS[0]!.toUpperCase();
  const lastClosed = Math.floor(Date.now() / M) * M - M;
  const past = makeKlines(symbol, '1m', lastClosed - 3 * H, M, 3 * 60 + 1);
  const seed = await new RedisKlineStore({ url: redisSrv.url, horizonMs: 15 * 24 * H }).connect();
  await seed.put(past);
  await seed.close();
  const cluster = await startCluster({ symbols: 2, server: { redis: redisSrv.url } });
  t.after(() => cluster.stop());
  const hp = await startRole('history', { id: 'history-1', nats: cluster.nats.url, redis: redisSrv.url, host: '127.0.0.1', port: 0 });
  t.after(() => hp.kill());
  const gw = cluster.gateways[0]!.urls.http!;
  const hist = hp.urls.http!;
  const get = async (base: string, path: string, headers: Record<string, string> = {}) => {
    const r = await fetch(`${base}${path}`, { headers });
    return { status: r.status, headers: r.headers, text: await r.text() };
  };

  // A closed range: immutable, the same content tag from the gateway and the history process, 304 on revalidation.
  const startTime = lastClosed - 2 * H;
  const endTime = lastClosed - H;
  const closedPath = `/api/v3/klines?symbol=${symbol}&interval=1m&startTime=${startTime}&endTime=${endTime}&limit=1000`;
  const want = JSON.stringify(expected(past, { startTime, endTime, limit: 1000 }).map(toRow));
  const viaGw = await get(gw, closedPath);
  const viaHist = await get(hist, closedPath);
  for (const r of [viaGw, viaHist]) {
    assert.equal(r.status, 200);
    assert.equal(r.text, want, 'the old JSON shape, byte for byte');
    assert.equal(r.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.match(r.headers.get('etag') ?? '', /^"[A-Za-z0-9_-]+"$/);
  }
  assert.equal(viaGw.headers.get('etag'), viaHist.headers.get('etag'));
  const etag = viaGw.headers.get('etag')!;
  for (const base of [gw, hist]) {
    const nm = await get(base, closedPath, { 'if-none-match': etag });
    assert.equal(nm.status, 304, base);
    assert.equal(nm.text, '');
    assert.equal(nm.headers.get('etag'), etag);
    assert.equal((await get(base, closedPath, { 'if-none-match': '"stale"' })).status, 200);
    // uiKlines: the same answer.
    assert.equal((await get(base, closedPath.replace('/klines', '/uiKlines'))).text, want, `${base} uiKlines`);
  }
  assert.ok(viaHist.headers.get('x-mbx-used-weight-1m'), 'the history port charges Binance weights');

  // The newest candles: from memory, cacheable for a second only.
  let hot = await get(hist, `/api/v3/klines?symbol=${symbol}&interval=1m&limit=100`);
  await waitFor(async () => {
    hot = await get(hist, `/api/v3/klines?symbol=${symbol}&interval=1m&limit=100`);
    const rows = JSON.parse(hot.text) as number[][];
    return rows.length === 100 && rows[99]![6]! > Date.now();
  }, 20_000, 'the open candle on the history process');
  assert.equal(hot.headers.get('cache-control'), 'public, max-age=1');
  assert.equal(hot.headers.get('x-mp-tiers'), 'memory');
  assert.equal((await get(hist, `/api/v3/klines?symbol=${symbol}&interval=1m&limit=100`, { 'if-none-match': '*' })).status, 304);

  // Open candle current to the last trade: a client sees trades and the feed's candle updates on the
  // gateway; after a trade newer than any candle update it has seen, REST must already contain it.
  const trades = new Map<number, string>();
  let kl: { t: number; f: number; L: number; n: number; x: boolean } | undefined;
  const ws = new WebSocket(`${cluster.gateways[0]!.urls.ws}/stream?streams=${symbol.toLowerCase()}@trade/${symbol.toLowerCase()}@kline_1m`, { perMessageDeflate: false });
  t.after(() => ws.terminate());
  ws.on('message', (d: Buffer) => {
    const m = JSON.parse(d.toString()) as { data?: { e?: string; t?: number; p?: string; k?: typeof kl } };
    if (m.data?.e === 'trade') trades.set(m.data.t!, m.data.p!);
    if (m.data?.e === 'kline' && !m.data.k!.x) kl = m.data.k;
  });
  let checked = 0;
  for (let attempt = 0; attempt < 10 && checked < 2; attempt++) {
    await waitFor(() => kl !== undefined && kl.n > 0, 20_000, 'a candle update with trades');
    const k = kl!;
    const floor = Math.max(k.L, ...[...trades.keys()].filter((id) => id <= k.L));
    await waitFor(() => [...trades.keys()].some((id) => id > floor), 10_000, 'a trade after the candle update');
    const seen = Math.max(...trades.keys());
    for (const base of [hist, gw]) {
      const row = (JSON.parse((await get(base, `/api/v3/klines?symbol=${symbol}&interval=1m&limit=1`)).text) as Array<[number, string, string, string, string, string, number, string, number]>)[0]!;
      if (row[0] !== k.t || kl!.t !== k.t) continue; // the minute rolled over: try again
      const count = row[8];
      assert.ok(k.f + count - 1 >= seen, `${base}: the open candle holds ${count} trades from ${k.f}, the client has seen trade ${seen}`);
      await waitFor(() => trades.has(k.f + count - 1), 5_000, 'the last trade of the answer');
      assert.equal(row[4], trades.get(k.f + count - 1), `${base}: close = the last trade's price`);
      checked++;
    }
  }
  assert.ok(checked >= 2, 'checked the open candle on both paths');

  // Bad input: Binance's error JSON, never cached.
  const bad = await get(hist, `/api/v3/klines?symbol=${symbol}&interval=7m`);
  assert.equal(bad.status, 400);
  assert.deepEqual(JSON.parse(bad.text), { code: -1120, msg: 'Invalid interval.' });
  assert.equal(bad.headers.get('cache-control'), 'no-store');
  assert.equal(JSON.parse((await get(hist, '/api/v3/klines?symbol=NOPEUSDT&interval=1m')).text).code, -1121);
  assert.equal(JSON.parse((await get(hist, `/api/v3/klines?symbol=${symbol}&interval=1m&limit=x`)).text).code, -1100);
  const unknown = await get(hist, '/api/v3/depth?symbol=BTCUSDT');
  assert.equal(unknown.status, 404);
  assert.equal(JSON.parse(unknown.text).code, -1000);
});
