import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toBinary } from '@bufbuild/protobuf';
import { EventSchema, type Event, type Kline, type Trade, type DepthSnapshot, type DepthUpdate } from '../../proto/gen/market_pb.js';
import { MarketSimulator, symbolInfo, type SimulatorOptions } from '../../system/feed/simulator.ts';
import { KLINE_INTERVALS, subjectTopic, symbolTopics } from '../../system/common/topics.ts';

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
  else for (let t = sim.startTimeMs; t <= untilMs; t += stepMs) sim.advanceTo(Math.min(t, untilMs), emit);
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
      assert.equal(event.topic, `${sym}@depth`);
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
    for (const interval of KLINE_INTERVALS) {
      assert.ok(out.some((o) => o.event.topic === `${sym}@kline_${interval}`));
    }
  }
});

test('a depth snapshot plus the diffs after it reproduces the next snapshot exactly', () => {
  const depthLevels = 8;
  const out = run(new MarketSimulator(options({ depthLevels, rate: 50 })), START + 20_000);
  for (const sym of ['btcusdt', 'xrpusdt', 'sym031usdt']) {
    const stream = out.filter((o) => o.event.topic === `${sym}@depth`);
    let book: { bids: Map<string, string>; asks: Map<string, string>; lastUpdateId: bigint; seq: bigint } | undefined;
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
        if (book) {
          assert.equal(event.seq, book.seq);
          assert.equal(snap.lastUpdateId, book.lastUpdateId);
          assert.deepEqual(snap.bids.map((l) => [l.price, l.qty]), [...book.bids].sort((a, b) => Number(b[0]) - Number(a[0])));
          assert.deepEqual(snap.asks.map((l) => [l.price, l.qty]), [...book.asks].sort((a, b) => Number(a[0]) - Number(b[0])));
          checked++;
        }
        book = {
          bids: new Map(snap.bids.map((l) => [l.price, l.qty])),
          asks: new Map(snap.asks.map((l) => [l.price, l.qty])),
          lastUpdateId: snap.lastUpdateId,
          seq: event.seq,
        };
        continue;
      }
      if (!book) continue;
      const diff = event.payload.value as DepthUpdate;
      assert.equal(event.seq, book.seq + 1n);
      assert.equal(diff.firstUpdateId, book.lastUpdateId + 1n, 'update ids continue');
      assert.ok(diff.finalUpdateId >= diff.firstUpdateId);
      for (const [side, levels] of [[book.bids, diff.bids], [book.asks, diff.asks]] as const) {
        for (const l of levels) {
          if (Number(l.qty) === 0) side.delete(l.price);
          else side.set(l.price, l.qty);
        }
      }
      book.seq = event.seq;
      book.lastUpdateId = diff.finalUpdateId;
    }
    assert.ok(checked >= 30, `${sym}: only ${checked} snapshot pairs checked`);
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
    assert.ok(n <= 100 + KLINE_INTERVALS.length, `turn emitted ${n}`);
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
