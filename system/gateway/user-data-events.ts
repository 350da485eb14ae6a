// Binance user-data-stream events from the bus's Order events: the
// executionReport of an order event, the balanceUpdate of a deposit or
// withdrawal, and the outboundAccountPosition that follows either when the
// account changed. Field names and JSON types as Binance documents them
// (binance-spot-api-docs, user-data-stream.md): numbers for ids and times,
// decimal strings for amounts, null for a missing commission asset.
import type { Order } from '../../proto/gen/market_pb.js';
import { symbolSpec } from '../common/symbols.ts';

const ZERO = '0.00000000';

/** The events one Order on the bus becomes, in the order Binance sends them. execId: a per-event id (Binance `I`). */
export function userDataEvents(o: Order, execId: number, fallbackTimeMs: number): Array<Record<string, unknown>> {
  const E = Number(o.eventTime) || Number(o.updateTime) || fallbackTimeMs;
  const out: Array<Record<string, unknown>> = [];
  if (o.balanceDelta) {
    out.push({ e: 'balanceUpdate', E, a: o.balanceDelta.asset, d: o.balanceDelta.delta, T: Number(o.balanceDelta.clearTime) || E });
  } else {
    const working = o.working;
    out.push({
      e: 'executionReport',
      E,
      s: o.symbol.toUpperCase(),
      c: o.clientOrderId,
      S: o.side,
      o: o.type,
      f: o.timeInForce || 'GTC',
      q: o.qty,
      p: o.price,
      P: ZERO,
      F: ZERO,
      g: -1,
      C: o.origClientOrderId,
      x: o.execType || o.status,
      X: o.status,
      r: o.rejectReason || 'NONE',
      i: Number(o.orderId),
      l: o.lastQty || '0',
      z: o.filledQty,
      L: o.lastPrice || '0',
      n: o.commission || '0',
      N: o.commissionAsset || (o.execType === 'TRADE' ? receivedAsset(o) : null),
      T: Number(o.updateTime) || E,
      t: o.execType === 'TRADE' ? Number(o.tradeId) : -1,
      I: execId,
      w: working,
      m: o.maker,
      M: false,
      O: Number(o.createTime) || E,
      Z: o.cumQuoteQty || '0',
      Y: o.lastQuoteQty || '0',
      Q: ZERO,
      ...(working ? { W: Number(o.createTime) || E } : {}),
      V: 'NONE',
    });
  }
  if (o.balances.length > 0) {
    out.push({ e: 'outboundAccountPosition', E, u: Number(o.updateTime) || E, B: o.balances.map((b) => ({ a: b.asset, f: b.free, l: b.locked })) });
  }
  return out;
}

/** Binance's listenKeyExpired event. */
export const listenKeyExpired = (listenKey: string) => ({ e: 'listenKeyExpired', E: Date.now(), listenKey });

/**
 * A fill's commission asset when the engine names none (the simulator charges
 * no commission): the asset the user receives, Binance's default. Binance
 * never sends null on a fill, and ccxt's fee accumulation throws on a second
 * fill of an order whose fee currency is null.
 */
function receivedAsset(o: Order): string {
  const spec = symbolSpec(o.symbol.toLowerCase());
  return o.side === 'BUY' ? spec.baseAsset : spec.quoteAsset;
}
