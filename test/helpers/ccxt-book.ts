// ccxt's Binance exchange pointed at a gateway (only its URLs and documented
// options changed), and the local-order-book check shared by the ccxt test
// (10 s) and `npm run bench:ccxt-orderbook` (60 s): every update of
// watchOrderBook is sorted and uncrossed with positive amounts and an
// advancing nonce, and at the end the watched book equals a fresh GET
// /api/v3/depth applied to the same update id.
import assert from 'node:assert/strict';
import ccxt from 'ccxt';

export type Side = [number, number][];

export function makeExchange(http: string, ws: string) {
  const ex = new ccxt.pro.binance({
    // Documented options: spot markets only; no private currency call.
    options: { defaultType: 'spot', fetchMarkets: { types: ['spot'] }, fetchCurrencies: false, fetchMargins: false },
  });
  const api = ex.urls.api as Record<string, unknown> & { ws: Record<string, unknown> };
  api.public = `${http}/api/v3`;
  api.ws.spot = `${ws}/ws`;
  return ex;
}
export type Exchange = ReturnType<typeof makeExchange>;

export function assertSorted(bids: Side, asks: Side, what: string): void {
  for (let i = 1; i < bids.length; i++) assert.ok(bids[i]![0] < bids[i - 1]![0], `${what}: bids descend`);
  for (let i = 1; i < asks.length; i++) assert.ok(asks[i]![0] > asks[i - 1]![0], `${what}: asks ascend`);
  assert.ok(bids.length > 0 && asks.length > 0, `${what}: both sides`);
  assert.ok(bids[0]![0] < asks[0]![0], `${what}: crossed (bid ${bids[0]![0]} ≥ ask ${asks[0]![0]})`);
  // A level whose diff said 0 must be gone, not kept at 0.
  for (const [p, q] of [...bids, ...asks]) assert.ok(p > 0 && q > 0 && Number.isFinite(p) && Number.isFinite(q), `${what}: level [${p}, ${q}]`);
}

export interface BookWatch {
  updates: number;
  firstNonce: number;
  lastNonce: number;
  /** The most levels seen on a side. */
  maxLevels: number;
}

/** Watches the book for `ms`, checking every update; throws (assert) at the first bad one, `w` telling how far it got. */
export async function watchBookFor(ex: Exchange, symbol: string, ms: number, w: BookWatch = { updates: 0, firstNonce: 0, lastNonce: 0, maxLevels: 0 }): Promise<BookWatch> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ob = await ex.watchOrderBook(symbol);
    assertSorted(ob.bids as Side, ob.asks as Side, `update ${w.updates}`);
    assert.ok(ob.nonce! > w.lastNonce, `nonce advances (${w.lastNonce} → ${ob.nonce})`);
    if (w.updates === 0) w.firstNonce = ob.nonce!;
    w.lastNonce = ob.nonce!;
    w.maxLevels = Math.max(w.maxLevels, ob.bids.length, ob.asks.length);
    w.updates++;
  }
  return w;
}

/**
 * A fresh REST book, then the watched book at exactly its update id (retried
 * when the stream is already past it); asserts they are equal. Returns the
 * update id compared and the attempts it took.
 */
export async function compareWithRest(ex: Exchange, http: string, symbol: string): Promise<{ updateId: number; attempts: number }> {
  const restSymbol = symbol.replace('/', '');
  for (let attempt = 0; ; attempt++) {
    const rest = (await (await fetch(`${http}/api/v3/depth?symbol=${restSymbol}&limit=1000`)).json()) as { lastUpdateId: number; bids: [string, string][]; asks: [string, string][] };
    let ob = ex.orderbooks[symbol] as unknown as Awaited<ReturnType<Exchange['watchOrderBook']>>;
    while (ob.nonce! < rest.lastUpdateId) ob = await ex.watchOrderBook(symbol);
    if (ob.nonce === rest.lastUpdateId) {
      const num = (side: [string, string][]) => side.map(([p, q]) => [Number(p), Number(q)]);
      // ccxt's sides are its own array classes: compare plain [price, amount] pairs.
      const plain = (side: unknown) => Array.from(side as [number, number][], ([p, q]) => [p, q]);
      assert.deepEqual(plain(ob.bids), num(rest.bids));
      assert.deepEqual(plain(ob.asks), num(rest.asks));
      return { updateId: rest.lastUpdateId, attempts: attempt + 1 };
    }
    assert.ok(attempt < 5, `the watched book kept passing the REST update id (at ${ob.nonce}, REST ${rest.lastUpdateId})`);
  }
}
