import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toBinary } from '@bufbuild/protobuf';
import { EventSchema, type Event, type Kline, type Trade, type DepthSnapshot, type DepthUpdate, type BookTicker } from '../../proto/gen/market_pb.js';
import { MarketSimulator, symbolInfo, type SimulatorOptions } from '../../system/feed/simulator.ts';
import { BINANCE_KLINE_INTERVALS, TZ_KLINE_INTERVALS, subjectTopic, symbolTopics } from '../../system/common/topics.ts';

// 10 s before a 5-minute boundary, so a run crosses 1m and 5m closes early on.
const START = Date.UTC(2024, 0, 1, 12, 4, 50);

interface Out {
  subject: string;
  event: Event;
}

function options(over: Partial<SimulatorOptions> = {}): SimulatorOptions {
  return {
    symbols: ['btcusdt', 'xrpusdt', 'sym031usdt'],
    rate: 20,
    tickerMs: 1000,
    klineMs: 1000,
    depthSnapshotMs: 500,
    depthLevels: 5,
    seed: 42,
    epoch: 9,
    startTimeMs: START,
    ...over,
  };
}

function run(sim: MarketSimulator, untilMs: number, out: Out[] = [], stepMs?: number): Out[] {
  const emit = (subject: string, event: Event) => void out.push({ subject, event });
  if (stepMs === undefined) sim.advanceTo(untilMs, emit);
  else {
    for (let t = sim.startTimeMs; t < untilMs; t += stepMs) sim.advanceTo(t, emit);
    sim.advanceTo(untilMs, emit); // the last step lands on untilMs itself, where candles may close
  }
  return out;
}

const us = (e: Event) => Number(e.publishTimeUs);
/** A decimal string as an integer count of its last digit (every value of a symbol uses fixed decimals). */
const units = (s: string) => BigInt(s.replace('.', ''));

test('every event: subject matches topic, seq +1 per topic without gaps, epoch set, times non-decreasing', () => {
  const sim = new MarketSimulator(options());
  const out = run(sim, START + 130_000);
  assert.ok(out.length > 10_000, `expected a busy run, got ${out.length} events`);
  const seqs = new Map<string, number>();
  let lastUs = 0;
  for (const { subject, event } of out) {
    assert.equal(event.epoch, 9n);
    assert.ok(us(event) >= lastUs, `intended time went backwards at ${event.topic} seq ${event.seq}`);
    lastUs = us(event);
    assert.ok(us(event) <= (START + 130_000) * 1000);
    if (event.payload.case === 'depthSnapshot') {
      const sym = event.topic.slice(0, event.topic.indexOf('@'));
      assert.equal(subject, `md.depthsnap.${sym}`);
      assert.ok(event.topic === `${sym}@depth` || event.topic === `${sym}@depth@100ms`, event.topic);
      // A snapshot consumes no seq: it carries the seq of the last diff already emitted.
      assert.equal(Number(event.seq), seqs.get(event.topic) ?? 0);
      continue;
    }
    assert.equal(subjectTopic(subject), event.topic);
    const prev = seqs.get(event.topic) ?? 0;
    assert.equal(Number(event.seq), prev + 1, `gap on ${event.topic}`);
    seqs.set(event.topic, prev + 1);
  }
  // Every topic of every symbol was published.
  const expected = sim.symbols.flatMap(symbolTopics).sort();
  assert.deepEqual([...seqs.keys()].sort(), expected);
});

test('trades are evenly spaced per rate, each symbol at its own phase', () => {
  const rate = 40;
  const out = run(new MarketSimulator(options({ rate })), START + 5_000);
  const bySymbol = new Map<string, number[]>();
  for (const { event } of out) {
    if (event.payload.case !== 'trade') continue;
    const list = bySymbol.get(event.topic) ?? [];
    list.push(us(event));
    bySymbol.set(event.topic, list);
  }
  assert.equal(bySymbol.size, 3);
  const firsts: number[] = [];
  for (const [topic, times] of bySymbol) {
    assert.ok(Math.abs(times.length - rate * 5) <= 1, `${topic}: ${times.length} trades in 5 s at ${rate}/s`);
    for (let i = 1; i < times.length; i++) {
      assert.ok(Math.abs(times[i]! - times[i - 1]! - 1e6 / rate) <= 1, `${topic} trade spacing ${times[i]! - times[i - 1]!} µs`);
    }
    firsts.push(times[0]!);
  }
  assert.equal(new Set(firsts).size, 3, 'symbols share a phase');
});

test('klines of every interval, in progress and closed, equal the trades emitted before them in their candle (a trade updates only the current second)', () => {
  const out = run(new MarketSimulator(options({ symbols: ['btcusdt'], rate: 10 })), START + 130_000);
  const seen: Trade[] = [];
  let checked = 0;
  const closes = new Map<string, number>();
  for (const o of out) {
    const p = o.event.payload;
    if (p.case === 'trade') seen.push(p.value);
    if (p.case !== 'kline') continue;
    const k = p.value;
    const inside = seen.filter((t) => t.tradeTime >= k.openTime && t.tradeTime <= k.closeTime);
    assert.equal(Number(k.tradeCount), inside.length, `${o.event.topic} n at ${us(o.event)}`);
    if (inside.length > 0) {
      assert.equal(k.firstTradeId, inside[0]!.tradeId, o.event.topic);
      assert.equal(k.close, inside.at(-1)!.price, o.event.topic);
      assert.equal(units(k.volume), inside.reduce((a, t) => a + units(t.qty), 0n), o.event.topic);
      const prices = inside.map((t) => units(t.price));
      assert.equal(units(k.high), prices.reduce((a, b) => (b > a ? b : a)), o.event.topic);
    }
    if (k.closed) closes.set(o.event.topic, (closes.get(o.event.topic) ?? 0) + 1);
    checked++;
  }
  assert.ok(checked > 1000, `${checked} klines checked`);
  // 130 s from 12:04:50 to 12:07:00 (inclusive): 130 one-second closes, 3 of 1m, 1 of 3m (12:06), 1 of 5m (12:05), none of 15m.
  assert.equal(closes.get('btcusdt@kline_1s'), 130);
  assert.equal(closes.get('btcusdt@kline_1m'), 3);
  assert.equal(closes.get('btcusdt@kline_3m'), 1);
  assert.equal(closes.get('btcusdt@kline_5m'), 1);
  assert.equal(closes.get('btcusdt@kline_15m'), undefined);
});

test('klines: closed exactly once per boundary, o/h/l/c/v/n consistent with the trades inside', () => {
  const out = run(new MarketSimulator(options({ symbols: ['btcusdt', 'ethusdt'] })), START + 130_000);
  for (const sym of ['btcusdt', 'ethusdt']) {
    const trades = out.filter((o) => o.event.topic === `${sym}@trade`).map((o) => o.event.payload.value as Trade);
    for (const interval of ['1m', '5m'] as const) {
      const klines = out.filter((o) => o.event.topic === `${sym}@kline_${interval}`);
      const closed = klines.filter((o) => (o.event.payload.value as Kline).closed);
      const closedOpens = closed.map((o) => Number((o.event.payload.value as Kline).openTime));
      const expectOpens = interval === '1m' ? [START - 50_000, START + 10_000, START + 70_000] : [START - 290_000];
      assert.deepEqual(closedOpens, expectOpens, `${sym} ${interval} closes`);
      for (const c of closed) {
        const k = c.event.payload.value as Kline;
        const boundary = Number(k.closeTime) + 1;
        assert.equal(us(c.event), boundary * 1000, 'closed kline published at its boundary');
        const inside = trades.filter((t) => t.tradeTime >= k.openTime && t.tradeTime <= k.closeTime);
        assert.ok(inside.length > 0);
        assert.equal(Number(k.tradeCount), inside.length);
        assert.equal(k.firstTradeId, inside[0]!.tradeId);
        assert.equal(k.lastTradeId, inside.at(-1)!.tradeId);
        assert.equal(k.open, inside[0]!.price);
        assert.equal(k.close, inside.at(-1)!.price);
        const prices = inside.map((t) => units(t.price));
        assert.equal(units(k.high), prices.reduce((a, b) => (b > a ? b : a)));
        assert.equal(units(k.low), prices.reduce((a, b) => (b < a ? b : a)));
        assert.equal(units(k.volume), inside.reduce((a, t) => a + units(t.qty), 0n));
        assert.equal(units(k.quoteVolume), inside.reduce((a, t) => a + units(t.price) * units(t.qty), 0n));
        const takerBuys = inside.filter((t) => !t.buyerIsMaker);
        assert.equal(units(k.takerBuyBaseVolume), takerBuys.reduce((a, t) => a + units(t.qty), 0n));
        assert.equal(units(k.takerBuyQuoteVolume), takerBuys.reduce((a, t) => a + units(t.price) * units(t.qty), 0n));
        // The next kline event on the topic is the fresh candle that starts at the boundary.
        const next = klines[klines.indexOf(c) + 1];
        if (next) {
          const nk = next.event.payload.value as Kline;
          assert.equal(nk.closed, false);
          assert.equal(Number(nk.openTime), boundary);
        }
      }
      // In-progress klines stay within their interval and their open time is aligned.
      for (const o of klines) {
        const k = o.event.payload.value as Kline;
        assert.equal(Number(k.openTime) % (interval === '1m' ? 60_000 : 300_000), 0);
        assert.ok(us(o.event) / 1000 >= Number(k.openTime));
        if (!k.closed) assert.ok(us(o.event) / 1000 <= Number(k.closeTime) + 1);
      }
    }
    // Every interval publishes updates; the longer ones have not closed yet.
    for (const interval of BINANCE_KLINE_INTERVALS) {
      assert.ok(out.some((o) => o.event.topic === `${sym}@kline_${interval}`));
    }
  }
});

type Book = { bids: Map<string, string>; asks: Map<string, string>; lastUpdateId: bigint };

/** Binance's local-book rules: drop diffs with u ≤ L, the first applied has U ≤ L+1 ≤ u, each next one U = previous u + 1. */
function applyDiff(book: Book, d: DepthUpdate, started: boolean): boolean {
  if (d.finalUpdateId <= book.lastUpdateId) return false;
  if (!started) assert.ok(d.firstUpdateId <= book.lastUpdateId + 1n, `first diff U=${d.firstUpdateId} skips past L+1=${book.lastUpdateId + 1n}`);
  else assert.equal(d.firstUpdateId, book.lastUpdateId + 1n, 'U = previous u + 1');
  for (const [side, levels] of [[book.bids, d.bids], [book.asks, d.asks]] as const) {
    for (const l of levels) {
      if (Number(l.qty) === 0) side.delete(l.price);
      else side.set(l.price, l.qty);
    }
  }
  book.lastUpdateId = d.finalUpdateId;
  return true;
}

const sorted = (book: Book) => ({
  bids: [...book.bids].sort((a, b) => Number(b[0]) - Number(a[0])),
  asks: [...book.asks].sort((a, b) => Number(a[0]) - Number(b[0])),
});

test('depth@100ms and depth (1 s): a book started from any snapshot, kept by the diffs, equals one started from a later snapshot at the same update id', () => {
  const depthLevels = 8;
  const out = run(new MarketSimulator(options({ depthLevels, rate: 50 })), START + 20_000);
  for (const sym of ['btcusdt', 'xrpusdt', 'sym031usdt']) {
    for (const [topic, periodMs] of [[`${sym}@depth@100ms`, 100], [`${sym}@depth`, 1000]] as const) {
      const stream = out.filter((o) => o.event.topic === topic);
      const books: Array<{ book: Book; started: boolean }> = [];
      let lastDiffUs = 0;
      let lastU = 0n;
      let checked = 0;
      for (const { event } of stream) {
        if (event.payload.case === 'depthSnapshot') {
          const snap = event.payload.value as DepthSnapshot;
          // Shape: full sides, bids strictly descending, asks strictly ascending, not crossed.
          assert.equal(snap.bids.length, depthLevels);
          assert.equal(snap.asks.length, depthLevels);
          for (let i = 1; i < depthLevels; i++) {
            assert.ok(Number(snap.bids[i]!.price) < Number(snap.bids[i - 1]!.price));
            assert.ok(Number(snap.asks[i]!.price) > Number(snap.asks[i - 1]!.price));
          }
          assert.ok(Number(snap.bids[0]!.price) < Number(snap.asks[0]!.price), 'crossed book');
          assert.ok(snap.lastUpdateId >= lastU, 'a snapshot contains every diff before it');
          // Snapshots fall on the 100 ms ticks: /api/v3/depth's lastUpdateId is always a @depth@100ms event's u.
          if (periodMs === 100 && lastU > 0n) assert.equal(snap.lastUpdateId, lastU, 'snapshot at a 100 ms diff boundary');
          books.push({ book: { bids: new Map(snap.bids.map((l) => [l.price, l.qty])), asks: new Map(snap.asks.map((l) => [l.price, l.qty])), lastUpdateId: snap.lastUpdateId }, started: false });
          continue;
        }
        const diff = event.payload.value as DepthUpdate;
        if (lastU > 0n) assert.equal(diff.firstUpdateId, lastU + 1n, `${topic}: diffs are contiguous`);
        assert.ok(diff.finalUpdateId >= diff.firstUpdateId);
        lastU = diff.finalUpdateId;
        if (lastDiffUs > 0) assert.equal((us(event) - lastDiffUs) % (periodMs * 1000), 0, `${topic} cadence`);
        lastDiffUs = us(event);
        for (const b of books) if (applyDiff(b.book, diff, b.started)) b.started = true;
        // Every book that has caught up is at this diff's update id: all must be equal.
        const live = books.filter((b) => b.started);
        for (const b of live.slice(1)) {
          assert.deepEqual(sorted(b.book), sorted(live[0]!.book));
          checked++;
        }
        if (live.length > 2) books.splice(0, books.indexOf(live.at(-2)!)); // keep the check linear
      }
      assert.ok(checked >= 10, `${topic}: only ${checked} book comparisons`);
    }
  }
});

test('bookTicker: published when the top changes, equal to the top of the book kept by @depth@100ms at the same update id', () => {
  const out = run(new MarketSimulator(options({ rate: 50 })), START + 10_000);
  for (const sym of ['btcusdt', 'xrpusdt']) {
    let book: Book | undefined;
    let started = false;
    let checked = 0;
    let lastTop = '';
    for (const { event } of out) {
      if (event.topic === `${sym}@depth@100ms`) {
        if (event.payload.case === 'depthSnapshot' && !book) {
          const snap = event.payload.value;
          book = { bids: new Map(snap.bids.map((l) => [l.price, l.qty])), asks: new Map(snap.asks.map((l) => [l.price, l.qty])), lastUpdateId: snap.lastUpdateId };
        } else if (event.payload.case === 'depthUpdate' && book && applyDiff(book, event.payload.value, started)) started = true;
      }
      if (event.topic !== `${sym}@bookticker` || !book || !started) continue;
      assert.equal(event.payload.case, 'bookTicker');
      const bt = event.payload.value as BookTicker;
      assert.equal(bt.updateId, book.lastUpdateId, 'bookTicker follows the diff of its instant');
      const { bids, asks } = sorted(book);
      assert.deepEqual([bt.bidPrice, bt.bidQty, bt.askPrice, bt.askQty], [...bids[0]!, ...asks[0]!]);
      const top = `${bt.bidPrice}/${bt.bidQty}/${bt.askPrice}/${bt.askQty}`;
      assert.notEqual(top, lastTop, 'only changes are published');
      lastTop = top;
      checked++;
    }
    assert.ok(checked >= 20, `${sym}: only ${checked} bookTickers checked`);
  }
});

test('a 1 s depth diff equals the ten 100 ms diffs of its window applied in order', () => {
  const out = run(new MarketSimulator(options({ rate: 50 })), START + 10_000);
  const fast = out.filter((o) => o.event.topic === 'btcusdt@depth@100ms' && o.event.payload.case === 'depthUpdate').map((o) => o.event.payload.value as DepthUpdate);
  const slow = out.filter((o) => o.event.topic === 'btcusdt@depth' && o.event.payload.case === 'depthUpdate').map((o) => o.event.payload.value as DepthUpdate);
  assert.ok(slow.length >= 9);
  for (const d of slow) {
    const parts = fast.filter((f) => f.firstUpdateId >= d.firstUpdateId && f.finalUpdateId <= d.finalUpdateId);
    assert.equal(parts[0]!.firstUpdateId, d.firstUpdateId);
    assert.equal(parts.at(-1)!.finalUpdateId, d.finalUpdateId);
    const merged = { bids: new Map<string, string>(), asks: new Map<string, string>() };
    for (const p of parts) for (const [side, levels] of [[merged.bids, p.bids], [merged.asks, p.asks]] as const) for (const l of levels) side.set(l.price, l.qty);
    assert.deepEqual(d.bids.map((l) => [l.price, l.qty]), [...merged.bids].sort((a, b) => Number(b[0]) - Number(a[0])));
    assert.deepEqual(d.asks.map((l) => [l.price, l.qty]), [...merged.asks].sort((a, b) => Number(a[0]) - Number(b[0])));
  }
});

test('deterministic for a seed, however the time is advanced', () => {
  const bytes = (out: Out[]) => out.map((o) => `${o.subject} ${Buffer.from(toBinary(EventSchema, o.event)).toString('base64')}`);
  const whole = bytes(run(new MarketSimulator(options()), START + 65_000));
  const stepped = bytes(run(new MarketSimulator(options()), START + 65_000, [], 7));
  assert.deepEqual(stepped, whole);
  // Bounded turns emit the same stream as unbounded ones.
  const bounded = new MarketSimulator(options());
  const out: Out[] = [];
  let turns = 0;
  while (bounded.nextEventTimeMs() <= START + 65_000) {
    const n = bounded.advanceTo(START + 65_000, (subject, event) => void out.push({ subject, event }), 100);
    assert.ok(n <= 100 + BINANCE_KLINE_INTERVALS.length + TZ_KLINE_INTERVALS.length, `turn emitted ${n}`);
    turns++;
  }
  assert.ok(turns > 10);
  assert.deepEqual(bytes(out), whole);
  const other = bytes(run(new MarketSimulator(options({ seed: 43 })), START + 65_000));
  assert.notDeepEqual(other, whole);
});

test('setRate changes the trade spacing live without breaking seqs or time order', () => {
  const sim = new MarketSimulator(options({ symbols: ['btcusdt'], rate: 10 }));
  const out = run(sim, START + 2_000);
  const changeAt = START + 2_000;
  sim.setRate(100);
  assert.equal(sim.rate, 100);
  run(sim, START + 4_000, out);
  sim.setRate(0);
  run(sim, START + 6_000, out);
  const trades = out.filter((o) => o.event.payload.case === 'trade').map((o) => us(o.event));
  const before = trades.filter((t) => t <= changeAt * 1000);
  const after = trades.filter((t) => t > changeAt * 1000);
  assert.ok(Math.abs(before.length - 20) <= 1);
  assert.ok(Math.abs(after.length - 200) <= 1, `${after.length} trades after raising the rate`);
  for (let i = 1; i < after.length; i++) assert.ok(Math.abs(after[i]! - after[i - 1]! - 10_000) <= 1);
  assert.ok(after.at(-1)! <= (START + 4_000) * 1000, 'rate 0 pauses trading');
  let last = 0;
  const seqs = new Map<string, bigint>();
  for (const { event } of out) {
    assert.ok(us(event) >= last);
    last = us(event);
    if (event.payload.case === 'depthSnapshot') continue;
    assert.equal(event.seq, (seqs.get(event.topic) ?? 0n) + 1n);
    seqs.set(event.topic, event.seq);
  }
  assert.throws(() => sim.setRate(-1));
});

test('prices: realistic starts, tick-size formatting, ticker stats agree with trades', () => {
  const symbols = ['btcusdt', 'ethusdt', 'solusdt', 'xrpusdt', 'pepeusdt', 'sym031usdt'];
  const sim = new MarketSimulator(options({ symbols, rate: 10 }));
  const out = run(sim, START + 10_000);
  const refs: Record<string, [number, number]> = { btcusdt: [55_000, 65_000], ethusdt: [2_700, 3_300], solusdt: [135, 165], xrpusdt: [0.54, 0.66], pepeusdt: [0.000009, 0.000011] };
  const infos = sim.symbolsInfo();
  assert.deepEqual(infos.map((i) => i.symbol), symbols.map((s) => s.toUpperCase()));
  assert.deepEqual(infos[0], symbolInfo('btcusdt'));
  assert.equal(infos[0]!.tickSize, '0.01');
  assert.equal(infos[0]!.baseAsset, 'BTC');
  assert.equal(infos[0]!.quoteAsset, 'USDT');
  assert.equal(infos[0]!.status, 'TRADING');
  for (const info of infos) {
    const sym = info.symbol.toLowerCase();
    const decimals = (s: string) => (s.includes('.') ? s.length - s.indexOf('.') - 1 : 0);
    const trades = out.filter((o) => o.event.topic === `${sym}@trade`).map((o) => o.event.payload.value as Trade);
    assert.ok(trades.length >= 99);
    for (const t of trades) {
      assert.match(t.price, /^\d+(\.\d+)?$/);
      assert.equal(decimals(t.price), info.pricePrecision, `${sym} price ${t.price} vs tick ${info.tickSize}`);
      assert.equal(decimals(t.qty), info.quantityPrecision);
      assert.ok(Number(t.price) > 0 && Number(t.qty) > 0);
      assert.equal(t.symbol, info.symbol);
      const range = refs[sym];
      if (range) assert.ok(Number(t.price) > range[0] && Number(t.price) < range[1], `${sym} at ${t.price}`);
    }
    const tickers = out.filter((o) => o.event.topic === `${sym}@ticker`);
    const last = tickers.at(-1)!;
    const ticker = last.event.payload.value as import('../../proto/gen/market_pb.js').Ticker;
    const seen = trades.filter((t) => Number(t.tradeTime) <= us(last.event) / 1000);
    assert.equal(Number(ticker.tradeCount), seen.length);
    assert.equal(ticker.lastPrice, seen.at(-1)!.price);
    assert.equal(ticker.firstTradeId, 1n);
    assert.equal(ticker.lastTradeId, seen.at(-1)!.tradeId);
    assert.equal(units(ticker.volume), seen.reduce((a, t) => a + units(t.qty), 0n));
    assert.equal(units(ticker.highPrice), seen.map((t) => units(t.price)).reduce((a, b) => (b > a ? b : a)));
    assert.ok(Number(ticker.bestBid) < Number(ticker.bestAsk));
    assert.equal(Number(ticker.openTime), START);
  }
});
