// The order-flow simulator in a real feed on a real nats-server with the
// users and permissions `pushctl up` configures: simulated users' fills are
// shares of public trades (same trade id, price and time; never more than the
// trade's quantity), and their balances move by exactly what each fill moves.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, DeliverPolicy } from '@nats-io/jetstream';
import { fromBinary } from '@bufbuild/protobuf';
import { EventSchema, OrderSchema, type Order, type Trade } from '../../proto/gen/market_pb.js';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';
import { ORDERS_STREAM } from '../../system/gateway/orders.ts';

/** A decimal string in units of 10^-8 (balances have 8 decimals; amounts fewer). */
const units = (d: string): bigint => {
  const neg = d.startsWith('-');
  const [i, f = ''] = (neg ? d.slice(1) : d).split('.');
  const v = BigInt(i!) * 10n ** 8n + BigInt((f + '00000000').slice(0, 8));
  return neg ? -v : v;
};

describe('order-flow simulator', () => {
  let cluster: TestCluster;
  let market: NatsConnection;
  let reader: NatsConnection;
  const trades = new Map<string, Trade>();
  const firstTrade = new Map<string, bigint>();
  const orders: Order[] = [];

  before(async () => {
    cluster = await startCluster({ servers: 1, gateways: 1, symbols: 2, rate: 20, storeAuth: true, feed: { users: 4, orderRate: 4, seed: 7 } });
    const s = cluster.secrets!;
    // The operator may read market data; the gateway's user may read ORDERS: the test reads as each.
    market = await connect({ servers: cluster.nats.url, user: s.nats.operator.user, pass: s.nats.operator.password });
    reader = await connect({ servers: cluster.nats.url, user: s.nats.gateway.user, pass: s.nats.gateway.password });
    const sub = market.subscribe('md.>');
    void (async () => {
      for await (const m of sub) {
        const ev = fromBinary(EventSchema, m.data);
        if (ev.payload.case !== 'trade') continue;
        const t = ev.payload.value;
        if (!firstTrade.has(t.symbol)) firstTrade.set(t.symbol, t.tradeId);
        trades.set(`${t.symbol}:${t.tradeId}`, t);
      }
    })();
    await market.flush();
    const consumer = await jetstream(reader).consumers.get(ORDERS_STREAM, { filter_subjects: 'orders.>', deliver_policy: DeliverPolicy.All });
    const messages = await consumer.consume();
    void (async () => {
      for await (const m of messages) orders.push(fromBinary(OrderSchema, m.data));
    })();
    // Enough fills of trades this test saw, with a bounded wait.
    await waitFor(() => orders.filter((o) => o.execType === 'TRADE' && trades.has(`${o.symbol}:${o.tradeId}`)).length >= 20, 60_000);
    // Trades published around the last fills have arrived too.
    await new Promise((r) => setTimeout(r, 500));
  });
  after(async () => {
    await market?.close();
    await reader?.close();
    await cluster?.stop();
  });

  test('every fill is a share of a public trade at the same price and time', () => {
    const fills = orders.filter((o) => o.execType === 'TRADE' && o.tradeId >= (firstTrade.get(o.symbol) ?? Infinity as unknown as bigint));
    assert.ok(fills.length >= 20, `fills seen: ${fills.length}`);
    const perTrade = new Map<string, bigint>();
    for (const f of fills) {
      const t = trades.get(`${f.symbol}:${f.tradeId}`);
      if (!t) continue; // published after the market subscription stopped being read: checked below by count
      assert.equal(f.lastPrice, t.price, `fill of trade ${f.tradeId}: price`);
      assert.equal(f.updateTime, t.tradeTime, `fill of trade ${f.tradeId}: time`);
      assert.equal(f.maker, true);
      // The user was the resting side: a buy fills when the taker sells.
      assert.equal(f.side === 'BUY', t.buyerIsMaker, `fill of trade ${f.tradeId}: side`);
      const k = `${f.symbol}:${f.tradeId}`;
      perTrade.set(k, (perTrade.get(k) ?? 0n) + units(f.lastQty));
    }
    assert.ok(perTrade.size >= 10, `distinct trades with fills: ${perTrade.size}`);
    for (const [k, q] of perTrade) assert.ok(q <= units(trades.get(k)!.qty), `fills of ${k} exceed the trade: ${q} > ${trades.get(k)!.qty}`);
  });

  test('balances move by exactly what each fill, order and deposit moves', () => {
    const last = new Map<string, { free: bigint; locked: bigint }>(); // user:asset
    const deposits = orders.filter((o) => o.balanceDelta);
    assert.ok(deposits.length >= 4, 'each user starts with deposits (balanceUpdate)');
    let checked = 0;
    for (const o of orders) {
      const before = new Map(o.balances.map((b) => [b.asset, last.get(`${o.user}:${b.asset}`)]));
      for (const b of o.balances) last.set(`${o.user}:${b.asset}`, { free: units(b.free), locked: units(b.locked) });
      if (o.execType !== 'TRADE') continue;
      const [base, quote] = [o.balances[0]!.asset, o.balances[1]!.asset];
      const b0 = before.get(base);
      const q0 = before.get(quote);
      if (!b0 || !q0) continue;
      const b1 = last.get(`${o.user}:${base}`)!;
      const q1 = last.get(`${o.user}:${quote}`)!;
      const qty = units(o.lastQty);
      const cost = units(o.lastQuoteQty);
      if (o.side === 'BUY') {
        assert.equal(b1.free - b0.free, qty, `buy fill ${o.id}: base free`);
        // Quote: locked at the order price, spent at the trade price; total quote falls by exactly the cost.
        assert.equal(q1.free + q1.locked - (q0.free + q0.locked), -cost, `buy fill ${o.id}: quote total`);
      } else {
        assert.equal(b1.locked - b0.locked, -qty, `sell fill ${o.id}: base locked`);
        assert.equal(q1.free - q0.free, cost, `sell fill ${o.id}: quote free`);
      }
      checked++;
    }
    assert.ok(checked >= 10, `fills with both balances known before: ${checked}`);
    for (const [k, v] of last) assert.ok(v.free >= 0n && v.locked >= 0n, `${k} went negative`);
  });

  test('a user\'s events are ordered: amends and cancels only follow that order\'s NEW', () => {
    const seen = new Set<string>();
    let n = 0;
    for (const o of orders) {
      if (o.balanceDelta) continue;
      const k = `${o.user}:${o.orderId}`;
      if (o.execType === 'NEW') seen.add(k);
      else {
        assert.ok(seen.has(k), `${o.execType} of order ${o.orderId} before its NEW`);
        n++;
      }
    }
    assert.ok(n > 0);
    const kinds = new Set(orders.map((o) => o.execType));
    for (const k of ['NEW', 'TRADE', 'CANCELED']) assert.ok(kinds.has(k), `execution type ${k} seen`);
  });
});
