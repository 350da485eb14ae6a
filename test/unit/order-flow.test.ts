// The order-flow engine on its own, driven by the real market simulator:
// exact balance conservation over thousands of events, fills never beyond
// their trade, every user's events consistent, and bad settings refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MarketSimulator } from '../../system/feed/simulator.ts';
import { OrderFlow, type OrderInit } from '../../system/feed/order-flow.ts';

const units = (d: string): bigint => {
  const neg = d.startsWith('-');
  const [i, f = ''] = (neg ? d.slice(1) : d).split('.');
  const v = BigInt(i!) * 10n ** 8n + BigInt((f + '00000000').slice(0, 8));
  return neg ? -v : v;
};

function run(users: number, seconds: number) {
  const sim = new MarketSimulator({ symbols: ['btcusdt', 'ethusdt'], rate: 20, tickerMs: 1000, klineMs: 1000, depthSnapshotMs: 1000, depthLevels: 20, seed: 5, epoch: 1, startTimeMs: 0 });
  const flow = new OrderFlow({ users, ratePerUser: 3, symbols: sim.symbols, seed: 5, startTimeMs: 0 });
  const trades = new Map<string, { price: string; qty: string; T: bigint }>();
  const events: OrderInit[] = [];
  const emit = (user: string, e: OrderInit) => {
    assert.equal(e.user, user);
    events.push(e);
  };
  for (let t = 0; t <= seconds * 1000; t += 20) {
    sim.advanceTo(t, (_s, ev) => {
      if (ev.payload.case === 'trade') trades.set(`${ev.payload.value.symbol}:${ev.payload.value.tradeId}`, { price: ev.payload.value.price, qty: ev.payload.value.qty, T: ev.payload.value.tradeTime });
      flow.onMarketEvent(ev, emit);
    });
    flow.advanceTo(t, emit);
  }
  return { flow, trades, events };
}

test('balances are conserved exactly: each asset\'s total moves only by deposits and fills', () => {
  const { events, trades } = run(6, 120);
  const fills = events.filter((e) => e.execType === 'TRADE');
  assert.ok(fills.length > 100, `fills: ${fills.length}`);
  // Per user and asset: deposits + Σ fills = free + locked of the last report.
  const expected = new Map<string, bigint>();
  const reported = new Map<string, bigint>();
  const add = (k: string, d: bigint) => expected.set(k, (expected.get(k) ?? 0n) + d);
  const perTrade = new Map<string, bigint>();
  for (const e of events) {
    if (e.balanceDelta) add(`${e.user}:${e.balanceDelta.asset}`, units(e.balanceDelta.delta!));
    if (e.execType === 'TRADE') {
      const [base, quote] = [e.balances![0]!.asset!, e.balances![1]!.asset!];
      const q = units(e.lastQty!);
      const cost = units(e.lastQuoteQty!);
      add(`${e.user}:${base}`, e.side === 'BUY' ? q : -q);
      add(`${e.user}:${quote}`, e.side === 'BUY' ? -cost : cost);
      const t = trades.get(`${e.symbol}:${e.tradeId}`)!;
      assert.ok(t, `fill of unknown trade ${e.tradeId}`);
      assert.equal(e.lastPrice, t.price);
      assert.equal(e.updateTime, t.T);
      const k = `${e.symbol}:${e.tradeId}`;
      perTrade.set(k, (perTrade.get(k) ?? 0n) + q);
      assert.ok(perTrade.get(k)! <= units(t.qty), `fills of ${k} beyond the trade`);
    }
    for (const b of e.balances ?? []) {
      const total = units(b.free!) + units(b.locked!);
      assert.ok(units(b.free!) >= 0n && units(b.locked!) >= 0n, `${e.user} ${b.asset} negative`);
      reported.set(`${e.user}:${b.asset}`, total);
    }
  }
  for (const [k, v] of reported) assert.equal(v, expected.get(k), `${k}: reported total ≠ deposits + fills`);
});

test('every order ends consistently: filled ≤ qty, FILLED means filled = qty, nothing after the end', () => {
  const { events } = run(3, 60);
  const ended = new Set<string>();
  for (const e of events) {
    if (e.balanceDelta) continue;
    const k = `${e.user}:${e.orderId}`;
    assert.ok(!ended.has(k), `event ${e.execType} after order ${k} ended`);
    assert.ok(units(e.filledQty!) <= units(e.qty!));
    if (e.status === 'FILLED') assert.equal(e.filledQty, e.qty);
    if (e.status === 'FILLED' || e.status === 'CANCELED') ended.add(k);
    assert.equal(e.working, e.status === 'NEW' || e.status === 'PARTIALLY_FILLED');
  }
  const kinds = new Set(events.map((e) => e.execType));
  for (const k of ['NEW', 'TRADE', 'CANCELED', 'REPLACED']) assert.ok(kinds.has(k), `no ${k}`);
});

test('no users, no events; bad settings are refused with the reason', () => {
  assert.equal(run(0, 5).events.length, 0);
  assert.throws(() => new OrderFlow({ users: -1, ratePerUser: 1, symbols: ['btcusdt'], seed: 0, startTimeMs: 0 }), /invalid users -1/);
  assert.throws(() => new OrderFlow({ users: 2, ratePerUser: Number.NaN, symbols: ['btcusdt'], seed: 0, startTimeMs: 0 }), /invalid order rate/);
});
