// Paced trades for the peers' publishers: each symbol emits at evenly spaced
// intended times (staggered over one interval, as the feed staggers them),
// and each message is the gateway's JSON trade event (~150 bytes) with its
// intended publish time as the last field, `"pt":<µs>`, which the load
// clients read (frame-time.ts).
import { nowUs } from '../clock.ts';

interface SymbolState {
  topic: string;
  upper: string;
  seq: number;
  tradeId: number;
  priceCents: number;
  dueUs: number;
}

export interface DueTrade {
  topic: string;
  /** The whole JSON text of the event. */
  json: string;
}

export class TradeSource {
  readonly #states: SymbolState[];
  readonly #epoch = Date.now();
  #intervalUs = 0;

  constructor(symbols: string[]) {
    this.#states = symbols.map((s, i) => ({ topic: `${s}@trade`, upper: s.toUpperCase(), seq: 0, tradeId: 0, priceCents: 100_000 + i * 3_217, dueUs: 0 }));
  }

  /** trades/s per symbol; 0 stops. Schedules restart from now. */
  setRate(ratePerSymbol: number): void {
    this.#intervalUs = ratePerSymbol > 0 ? 1e6 / ratePerSymbol : 0;
    const t0 = nowUs();
    this.#states.forEach((s, i) => (s.dueUs = t0 + (this.#intervalUs * i) / this.#states.length));
  }

  /** Every trade due by now (bounded per call), and when the next one falls due (µs), or Infinity when stopped. */
  due(maxPerCall = 100_000): { trades: DueTrade[]; nextUs: number } {
    const trades: DueTrade[] = [];
    if (this.#intervalUs === 0) return { trades, nextUs: Infinity };
    const now = nowUs();
    let next = Infinity;
    for (const s of this.#states) {
      while (s.dueUs <= now && trades.length < maxPerCall) {
        trades.push({ topic: s.topic, json: this.#trade(s, s.dueUs) });
        s.dueUs += this.#intervalUs;
      }
      if (s.dueUs < next) next = s.dueUs;
    }
    return { trades, nextUs: next };
  }

  #trade(s: SymbolState, pt: number): string {
    s.seq++;
    s.tradeId++;
    s.priceCents += Math.random() < 0.5 ? -1 : 1;
    const ms = Math.floor(pt / 1000);
    const price = `${Math.floor(s.priceCents / 100)}.${String(s.priceCents % 100).padStart(2, '0')}`;
    const qty = `0.${String(100 + (s.tradeId % 900)).padStart(5, '0')}`;
    return (
      `{"stream":"${s.topic}","data":{"e":"trade","E":${ms},"s":"${s.upper}","t":${s.tradeId},"p":"${price}","q":"${qty}",` +
      `"T":${ms},"m":${(s.tradeId & 1) === 1},"M":true,"seq":${s.seq},"ep":${this.#epoch},"pt":${Math.round(pt)}}}`
    );
  }
}
