// Reads a trade event's id, price, qty and time straight off the wire: the
// rolling windows take every trade a push-server receives, and a full
// protobuf decode of each would put one back on the hot path that
// event-header.ts keeps free of it (wire format: proto/market.proto, Event
// field 14 = Trade {2 trade_id, 3 price, 4 qty, 5 trade_time}).
import type { TradeIn } from './rolling-window.ts';

const TRADE_FIELD = 14;
const decoder = new TextDecoder();

/** The trade of an encoded Event; undefined when the event is no trade or is malformed. */
export function readTrade(buf: Uint8Array): TradeIn | undefined {
  let pos = 0;
  const varint = (): number => {
    // Ids and ms timestamps stay below 2^53: plain arithmetic is exact.
    let result = 0;
    let mul = 1;
    for (;;) {
      if (pos >= buf.length || mul > 2 ** 63) return NaN;
      const b = buf[pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
  };
  const skip = (wire: number): boolean => {
    if (wire === 0) return !Number.isNaN(varint());
    if (wire === 2) {
      const len = varint();
      pos += len;
      return !Number.isNaN(len) && pos <= buf.length;
    }
    if (wire === 1) return (pos += 8) <= buf.length;
    if (wire === 5) return (pos += 4) <= buf.length;
    return false;
  };
  while (pos < buf.length) {
    const key = varint();
    if (Number.isNaN(key)) return undefined;
    if (key !== ((TRADE_FIELD << 3) | 2)) {
      if (!skip(key & 7)) return undefined;
      continue;
    }
    const len = varint();
    const end = pos + len;
    if (Number.isNaN(len) || end > buf.length) return undefined;
    const t: TradeIn = { id: 0, price: '', qty: '', time: 0 };
    while (pos < end) {
      const k = varint();
      const field = Math.floor(k / 8);
      const wire = k & 7;
      if (Number.isNaN(k)) return undefined;
      if (wire === 0 && (field === 2 || field === 5)) {
        const v = varint();
        if (field === 2) t.id = v;
        else t.time = v;
      } else if (wire === 2 && (field === 3 || field === 4)) {
        const n = varint();
        if (Number.isNaN(n) || pos + n > end) return undefined;
        // Decimal strings are short ASCII: built in place, cheaper than a TextDecoder call each.
        let s = '';
        if (n > 32) s = decoder.decode(buf.subarray(pos, pos + n));
        else for (let i = pos; i < pos + n; i++) s += String.fromCharCode(buf[i]!);
        pos += n;
        if (field === 3) t.price = s;
        else t.qty = s;
      } else if (!skip(wire)) return undefined;
    }
    return Number.isNaN(t.id + t.time) ? undefined : t;
  }
  return undefined;
}
