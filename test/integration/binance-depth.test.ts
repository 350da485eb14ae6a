// Binance's order-book surface against real processes (feed → NATS → two
// push-servers → gateway): the diff-depth streams and GET /api/v3/depth obey
// Binance's documented local-order-book algorithm, /ws/<name> accepts a
// connection name as Binance does, and /api errors are Binance's {code,msg}.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';

interface DepthEvent {
  e: string;
  E: number;
  s: string;
  U: number;
  u: number;
  b: [string, string][];
  a: [string, string][];
}

interface RestBook {
  lastUpdateId: number;
  bids: [string, string][];
  asks: [string, string][];
}

/** A local book kept the way Binance documents it (and ccxt, binance, @binance/connector do it). */
class LocalBook {
  bids = new Map<string, string>();
  asks = new Map<string, string>();
  lastUpdateId: number;
  started = false;
  applied = 0;

  constructor(snap: RestBook) {
    this.lastUpdateId = snap.lastUpdateId;
    for (const [p, q] of snap.bids) this.bids.set(p, q);
    for (const [p, q] of snap.asks) this.asks.set(p, q);
  }

  apply(e: DepthEvent): void {
    if (e.u <= this.lastUpdateId) return; // older than the snapshot
    if (!this.started) assert.ok(e.U <= this.lastUpdateId + 1 && this.lastUpdateId + 1 <= e.u, `first event U=${e.U} u=${e.u} must cover lastUpdateId+1=${this.lastUpdateId + 1}`);
    else assert.equal(e.U, this.lastUpdateId + 1, 'each event continues the previous one');
    this.started = true;
    for (const [side, levels] of [[this.bids, e.b], [this.asks, e.a]] as const) {
      for (const [p, q] of levels) {
        if (Number(q) === 0) side.delete(p);
        else side.set(p, q);
      }
    }
    this.lastUpdateId = e.u;
    this.applied++;
    const { bids, asks } = this.sorted();
    assert.ok(bids.length > 0 && asks.length > 0, 'both sides present');
    assert.ok(Number(bids[0]![0]) < Number(asks[0]![0]), `book crossed at u=${e.u}: bid ${bids[0]![0]} ≥ ask ${asks[0]![0]}`);
  }

  sorted(): { bids: [string, string][]; asks: [string, string][] } {
    return {
      bids: [...this.bids].sort((x, y) => Number(y[0]) - Number(x[0])),
      asks: [...this.asks].sort((x, y) => Number(x[0]) - Number(y[0])),
    };
  }
}

function collect(url: string): { ws: WebSocket; opened: Promise<void>; msgs: Record<string, unknown>[] } {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const msgs: Record<string, unknown>[] = [];
  ws.on('message', (d: Buffer) => msgs.push(JSON.parse(d.toString()) as Record<string, unknown>));
  ws.on('error', () => {});
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
  return { ws, opened, msgs };
}

describe('Binance order book: diff streams + GET /api/v3/depth', () => {
  let cluster: TestCluster;
  let http: string;
  let wsUrl: string;
  const sockets: WebSocket[] = [];

  before(async () => {
    cluster = await startCluster({ servers: 2, gateways: 1, symbols: 3, rate: 50 });
    http = cluster.gateways[0]!.urls.http!;
    wsUrl = cluster.gateways[0]!.urls.ws!;
    // The servers have a book once the feed's first snapshot reached them.
    await waitFor(async () => (await fetch(`${http}/api/v3/depth?symbol=BTCUSDT`)).status === 200, 10_000, 'a first depth snapshot');
  });
  after(async () => {
    for (const s of sockets) s.terminate();
    await cluster?.stop();
  });

  test('GET /api/v3/depth: Binance shape, limit, sorted sides as decimal strings', async () => {
    const r = await fetch(`${http}/api/v3/depth?symbol=BTCUSDT&limit=5`);
    assert.equal(r.status, 200);
    const book = (await r.json()) as RestBook;
    assert.deepEqual(Object.keys(book), ['lastUpdateId', 'bids', 'asks']);
    assert.ok(Number.isSafeInteger(book.lastUpdateId) && book.lastUpdateId > 0);
    assert.equal(book.bids.length, 5);
    assert.equal(book.asks.length, 5);
    for (const [p, q] of [...book.bids, ...book.asks]) {
      assert.match(p, /^\d+\.\d{2}$/, 'BTCUSDT prices have its tick size (0.01)');
      assert.match(q, /^\d+\.\d{5}$/, 'BTCUSDT quantities have its step size (0.00001)');
    }
    for (let i = 1; i < 5; i++) {
      assert.ok(Number(book.bids[i]![0]) < Number(book.bids[i - 1]![0]), 'bids descend');
      assert.ok(Number(book.asks[i]![0]) > Number(book.asks[i - 1]![0]), 'asks ascend');
    }
    assert.ok(Number(book.bids[0]![0]) < Number(book.asks[0]![0]), 'not crossed');
    // The default (100) and 5000 return every level the book has (the feed keeps 20 a side).
    const full = (await (await fetch(`${http}/api/v3/depth?symbol=btcusdt&limit=5000`)).json()) as RestBook;
    assert.equal(full.bids.length, 20);
    assert.equal(full.asks.length, 20);
  });

  test('bad depth queries and unknown /api routes answer Binance error bodies', async () => {
    const cases: Array<[string, number, number]> = [
      ['/api/v3/depth', 400, -1102],
      ['/api/v3/depth?symbol=', 400, -1102],
      ['/api/v3/depth?symbol=BTC-USDT', 400, -1100],
      ['/api/v3/depth?symbol=NOSUCHUSDT', 400, -1121],
      ['/api/v3/depth?symbol=BTCUSDT&limit=abc', 400, -1100],
      ['/api/v3/depth?symbol=BTCUSDT&limit=0', 400, -1100],
      ['/api/v3/nosuchendpoint', 404, -1000],
      ['/api/v1/depth', 404, -1000],
    ];
    for (const [path, status, code] of cases) {
      const r = await fetch(`${http}${path}`);
      assert.equal(r.status, status, path);
      const body = (await r.json()) as { code: number; msg: string };
      assert.deepEqual(Object.keys(body), ['code', 'msg'], path);
      assert.equal(body.code, code, path);
      assert.doesNotMatch(body.msg, /at .*\.ts|Error:/, `${path}: no internals in the message`);
    }
  });

  test('@depth@100ms + REST snapshot build a book that never crosses and equals a fresh GET /api/v3/depth at the same update id', async () => {
    const c = collect(`${wsUrl}/ws/btcusdt@depth@100ms`);
    sockets.push(c.ws);
    await c.opened;
    const diffs = () => c.msgs.filter((m) => m.e === 'depthUpdate') as unknown as DepthEvent[];
    // 1. buffer events, 2. then fetch the snapshot (Binance's order).
    await waitFor(() => diffs().length >= 2, 5_000, 'buffered diffs');
    const book = new LocalBook((await (await fetch(`${http}/api/v3/depth?symbol=BTCUSDT&limit=1000`)).json()) as RestBook);
    let next = 0;
    const drain = (stopAt = Infinity) => {
      const list = diffs();
      while (next < list.length && book.lastUpdateId < stopAt) book.apply(list[next++]!);
    };
    const until = Date.now() + 3_000;
    while (Date.now() < until) {
      drain();
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(book.applied >= 10, `only ${book.applied} diffs applied`);
    for (const e of diffs()) {
      assert.equal(e.s, 'BTCUSDT');
      assert.ok(e.E > 0 && Number.isSafeInteger(e.U) && Number.isSafeInteger(e.u));
    }
    // A fresh snapshot: keep applying the stream until the local book reaches its update id, then compare.
    const fresh = (await (await fetch(`${http}/api/v3/depth?symbol=BTCUSDT&limit=1000`)).json()) as RestBook;
    await waitFor(() => {
      drain(fresh.lastUpdateId);
      return book.lastUpdateId >= fresh.lastUpdateId;
    }, 5_000, `the stream to reach update id ${fresh.lastUpdateId}`);
    assert.equal(book.lastUpdateId, fresh.lastUpdateId, 'REST lastUpdateId is the u of a @depth@100ms event');
    assert.deepEqual(book.sorted(), { bids: fresh.bids, asks: fresh.asks });
  });

  test('@depth (1 s): events a second apart whose U/u continue a REST snapshot', async () => {
    const c = collect(`${wsUrl}/stream?streams=ethusdt@depth`);
    sockets.push(c.ws);
    await c.opened;
    const diffs = () => c.msgs.filter((m) => (m.data as DepthEvent | undefined)?.e === 'depthUpdate').map((m) => m.data) as unknown as DepthEvent[];
    await waitFor(() => diffs().length >= 1, 5_000, 'a first 1 s diff');
    const book = new LocalBook((await (await fetch(`${http}/api/v3/depth?symbol=ETHUSDT&limit=1000`)).json()) as RestBook);
    await waitFor(() => diffs().length >= 4, 8_000, 'four 1 s diffs');
    for (const e of diffs()) book.apply(e);
    assert.ok(book.applied >= 2);
    const times = diffs().map((e) => e.E);
    for (let i = 1; i < times.length; i++) assert.ok(Math.abs(times[i]! - times[i - 1]! - 1000) <= 1, `1 s cadence, got ${times[i]! - times[i - 1]!} ms`);
  });

  test('REST tickers, trades, aggTrades and avgPrice: Binance shapes, consistent with the book and the trades', async () => {
    const get = async (path: string) => {
      const r = await fetch(`${http}${path}`);
      assert.equal(r.status, 200, `${path}: ${r.status}`);
      return (await r.json()) as never;
    };
    const full = (await get('/api/v3/ticker/24hr?symbol=BTCUSDT')) as Record<string, unknown>;
    for (const k of ['priceChange', 'priceChangePercent', 'weightedAvgPrice', 'lastPrice', 'lastQty', 'bidPrice', 'bidQty', 'askPrice', 'askQty', 'openPrice', 'highPrice', 'lowPrice', 'volume', 'quoteVolume']) {
      assert.equal(typeof full[k], 'string', k);
      assert.match(full[k] as string, /^-?\d+(\.\d+)?$/, k);
    }
    for (const k of ['openTime', 'closeTime', 'firstId', 'lastId', 'count']) assert.equal(typeof full[k], 'number', k);
    assert.equal(full.symbol, 'BTCUSDT');
    assert.ok(Number(full.lowPrice) <= Number(full.lastPrice) && Number(full.lastPrice) <= Number(full.highPrice));
    const mini = (await get('/api/v3/ticker/24hr?symbol=BTCUSDT&type=MINI')) as Record<string, unknown>;
    assert.equal(mini.bidPrice, undefined, 'MINI has no book fields');
    assert.equal(typeof mini.lastPrice, 'string');
    const all = (await get('/api/v3/ticker/24hr')) as Array<{ symbol: string }>;
    assert.deepEqual(all.map((t) => t.symbol), ['BNBUSDT', 'BTCUSDT', 'ETHUSDT']);
    const two = (await get(`/api/v3/ticker/price?symbols=${encodeURIComponent('["BTCUSDT","ETHUSDT"]')}`)) as Array<{ symbol: string; price: string }>;
    assert.deepEqual(two.map((t) => t.symbol), ['BTCUSDT', 'ETHUSDT']);

    // bookTicker is the top of the depth book.
    const bt = (await get('/api/v3/ticker/bookTicker?symbol=BTCUSDT')) as { bidPrice: string; askPrice: string; bidQty: string; askQty: string };
    const book = (await get('/api/v3/depth?symbol=BTCUSDT&limit=1')) as RestBook;
    const btAgain = (await get('/api/v3/ticker/bookTicker?symbol=BTCUSDT')) as typeof bt;
    // The book may move between the two calls; when it did not, they agree exactly.
    if (JSON.stringify(bt) === JSON.stringify(btAgain)) assert.deepEqual([bt.bidPrice, bt.bidQty, bt.askPrice, bt.askQty], [...book.bids[0]!, ...book.asks[0]!]);
    assert.ok(Number(bt.bidPrice) < Number(bt.askPrice));

    const trades = (await get('/api/v3/trades?symbol=BTCUSDT&limit=20')) as Array<{ id: number; price: string; qty: string; quoteQty: string; time: number; isBuyerMaker: boolean }>;
    assert.equal(trades.length, 20);
    for (let i = 1; i < trades.length; i++) assert.equal(trades[i]!.id, trades[i - 1]!.id + 1, 'consecutive trade ids');
    for (const t of trades) {
      assert.match(t.price, /^\d+\.\d{2}$/);
      assert.match(t.qty, /^\d+\.\d{5}$/);
      assert.equal(Number(t.quoteQty).toFixed(7), (Number(t.price) * Number(t.qty)).toFixed(7));
    }
    const agg = (await get(`/api/v3/aggTrades?symbol=BTCUSDT&fromId=${trades[5]!.id}&limit=3`)) as Array<{ a: number; p: string; q: string; f: number; l: number; T: number; m: boolean }>;
    assert.deepEqual(agg.map((a) => [a.a, a.p, a.q, a.f, a.l, a.T, a.m]), trades.slice(5, 8).map((t) => [t.id, t.price, t.qty, t.id, t.id, t.time, t.isBuyerMaker]));
    const avg = (await get('/api/v3/avgPrice?symbol=BTCUSDT')) as { mins: number; price: string; closeTime: number };
    assert.equal(avg.mins, 5);
    assert.ok(Number(avg.price) >= Number(full.lowPrice) * 0.99 && Number(avg.price) <= Number(full.highPrice) * 1.01);

    for (const [path, code] of [['/api/v3/trades', -1102], ['/api/v3/trades?symbol=NOPEUSDT', -1121], ['/api/v3/aggTrades?symbol=BTCUSDT&limit=x', -1100], ['/api/v3/ticker/24hr?symbol=BTCUSDT&type=HUGE', -1100]] as const) {
      const r = await fetch(`${http}${path}`);
      assert.equal(r.status, 400, path);
      assert.equal(((await r.json()) as { code: number }).code, code, path);
    }
  });

  test('X-MBX-USED-WEIGHT-1M counts request weight; past the budget: 429, -1003, Retry-After', async () => {
    const r = await fetch(`${http}/api/v3/depth?symbol=BTCUSDT&limit=5`);
    assert.match(r.headers.get('x-mbx-used-weight-1m') ?? '', /^\d+$/);
    const small = await cluster.startGateway(2, { restWeightPerMinute: 30 });
    const used: number[] = [];
    let refused: Response | undefined;
    for (let i = 0; i < 20 && !refused; i++) {
      const res = await fetch(`${small.urls.http}/api/v3/depth?symbol=BTCUSDT&limit=5`);
      used.push(Number(res.headers.get('x-mbx-used-weight-1m')));
      if (res.status === 429) refused = res;
      else await res.arrayBuffer();
    }
    assert.ok(refused, `never refused; weights ${used.join(',')}`);
    assert.ok(used.at(-1)! > 30 && used.includes(5), `weights ${used.join(',')}`);
    const retry = Number(refused.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    assert.equal(((await refused.json()) as { code: number }).code, -1003);
  });

  test('@bookTicker: Binance shape (u, s, b, B, a, A), its u the u of a @depth@100ms event (prices vs the book: feed-simulator unit test)', async () => {
    const c = collect(`${wsUrl}/stream?streams=bnbusdt@depth@100ms/bnbusdt@bookTicker`);
    sockets.push(c.ws);
    await c.opened;
    const of = (stream: string) => c.msgs.filter((m) => m.stream === stream).map((m) => m.data as Record<string, unknown>);
    await waitFor(() => of('bnbusdt@bookTicker').length >= 3, 10_000, 'bookTicker events');
    const bt = of('bnbusdt@bookTicker').at(-1)!;
    for (const k of ['b', 'B', 'a', 'A']) assert.match(bt[k] as string, /^\d+\.\d+$/, k);
    assert.equal(bt.s, 'BNBUSDT');
    assert.equal(bt.e, undefined, 'Binance spot bookTicker has no event type');
    assert.ok(Number(bt.b) < Number(bt.a));
    // The two topics travel apart (another server may carry each): the diff of the same u may come second.
    await waitFor(() => of('bnbusdt@depth@100ms').some((d) => d.e === 'depthUpdate' && d.u === bt.u), 5_000, `a diff with u=${String(bt.u)}`);
  });

  test('/ws/<connection name> is accepted, carries nothing until SUBSCRIBE, then the subscribed stream', async () => {
    const c = collect(`${wsUrl}/ws/1`);
    sockets.push(c.ws);
    await c.opened;
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(c.msgs.length, 0, 'nothing before SUBSCRIBE');
    c.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['bnbusdt@depth@100ms'], id: 1 }));
    await waitFor(() => c.msgs.some((m) => m.e === 'depthUpdate'), 5_000, 'depth after SUBSCRIBE');
    assert.deepEqual(c.msgs[0], { result: null, id: 1 });
    // A path segment that names a stream must still be a valid one.
    const bad = collect(`${wsUrl}/ws/btcusdt@depth@250ms`);
    sockets.push(bad.ws);
    await assert.rejects(bad.opened, /upgrade refused: 400/);
  });
});
