// Topics a push-server derives from another topic instead of taking them off
// the bus: `<sym>@aggTrade` (from @trade: each simulated trade is one taker
// order filling one level, so each aggregate is one trade, a = f = l = trade
// id), the +08:00 klines whose candles equal the UTC ones (1s … 4h, 8h), and
// partial book depth `<sym>@depth5|10|20[@100ms]` (the top levels of the
// book kept from the diff stream of the same cadence, every window: see
// partial-depth.ts), and
// `<sym>@avgPrice` (the volume-weighted price of the last 5 minutes' trades,
// at most once a second, as GET /api/v3/avgPrice computes it), and the
// all-market `!ticker@arr` / `!miniTicker@arr` (every symbol's ticker that
// changed, one array a second), and the rolling-window tickers
// `<sym>@ticker_<w>` / `!ticker_<w>@arr` (rolling-tickers.ts).
// A deriver exists only while a gateway stream is bound to its topic, so the
// feed publishes none of these and nobody pays for them unless subscribed.
// Derived events get their own per-topic seq (in the source's epoch) and go
// through the same history and fan-out as bus events; a hole in the source
// is passed on as a gap notice, never hidden behind a contiguous seq.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { EventSchema, type Event, type Ticker } from '../../proto/gen/market_pb.js';
import type { EventHeader } from '../common/event-header.ts';
import type { TopicHistory } from '../common/topic-history.ts';
import type { ParsedTopic } from '../common/topics.ts';
import { PartialDepth, PartialDepthClock } from './partial-depth.ts';
import { rollingDeriver, type RollingTickers } from './rolling-tickers.ts';

interface Deriver {
  readonly topic: string;
  readonly source: string;
  /** The derived event's payload for one source event (undefined: nothing to publish). */
  derive(ev: Event, isSnapshot: boolean): Event['payload'] | undefined;
  /** The source lost events: state built from it is no longer right. */
  reset(): void;
}

export interface DerivedTopicsOptions {
  historyOf: (topic: string) => TopicHistory;
  topics: ReadonlyMap<string, TopicHistory>;
  /** Publishes a derived event (already in the topic's history) to the streams bound to it. */
  deliver: (topic: string, bytes: Uint8Array) => void;
  /** Tells the streams bound to a derived topic that events are missing upstream. */
  gap: (topic: string, detail: string) => void;
  /** The server's rolling windows, for `@ticker_<w>` and `!ticker_<w>@arr` (none: those are not derived). */
  rolling?: RollingTickers;
}

export class DerivedTopics {
  #o: DerivedTopicsOptions;
  #byTopic = new Map<string, Deriver>();
  #bySource = new Map<string, Set<Deriver>>();
  #wildcards = 0;
  #clock: PartialDepthClock;

  constructor(o: DerivedTopicsOptions) {
    this.#o = o;
    this.#clock = new PartialDepthClock((d, atUs) => {
      const th = this.#o.topics.get(d.source);
      if (th) this.#publish(d, th.epoch, atUs, d.current());
    });
  }

  get size(): number {
    return this.#byTopic.size;
  }

  /** Starts deriving a topic (idempotent); a partial-depth topic publishes its first state at once when the book is known. */
  ensure(parsed: ParsedTopic): void {
    if (!parsed.source || this.#byTopic.has(parsed.topic) || (parsed.window && !this.#o.rolling)) return;
    const rolling = parsed.window && this.#o.rolling ? rollingDeriver(parsed, this.#o.rolling) : undefined;
    const d: Deriver = rolling
      ? rolling
      : parsed.levels
      ? new PartialDepth(parsed.topic, parsed.source, parsed.levels, parsed.depthMs ?? 1000)
      : parsed.allMarket
        ? new TickerArray(parsed.topic, parsed.source)
        : parsed.stream === 'avgprice'
        ? new AvgPrice(parsed.topic, parsed.source)
        : new Retopic(parsed.topic, parsed.source);
    this.#byTopic.set(d.topic, d);
    if (d.source.startsWith('*')) this.#wildcards++;
    let set = this.#bySource.get(d.source);
    if (!set) this.#bySource.set(d.source, (set = new Set()));
    set.add(d);
    const th = this.#o.topics.get(d.source);
    if (d instanceof PartialDepth) {
      this.#clock.add(d);
      if (th && d.start(th)) this.#publish(d, th.epoch, Date.now() * 1000, d.current());
    }
    if (d instanceof AvgPrice && th && d.start(th)) this.#publish(d, th.epoch, Date.now() * 1000, d.current());
    const now = Date.now();
    const first = rolling?.initial(this.#o.topics, now);
    if (first) this.#publish(d, first.epoch, now * 1000, first.payload);
    if (d instanceof TickerArray) {
      let epoch = 0;
      for (const [topic, h] of this.#o.topics) {
        if (!topic.endsWith('@ticker') || !h.latest) continue;
        const p = fromBinary(EventSchema, h.latest.bytes).payload;
        if (p.case === 'ticker') d.take(p.value);
        epoch = Math.max(epoch, h.epoch);
      }
      if (epoch > 0) this.#publish(d, epoch, Date.now() * 1000, d.flush());
    }
  }

  /** Stops deriving a topic nobody is bound to any more. */
  release(topic: string): void {
    const d = this.#byTopic.get(topic);
    if (!d) return;
    this.#byTopic.delete(topic);
    if (d instanceof PartialDepth) this.#clock.remove(d);
    if (d.source.startsWith('*')) this.#wildcards--;
    const set = this.#bySource.get(d.source);
    set?.delete(d);
    if (set?.size === 0) this.#bySource.delete(d.source);
  }

  /** Stops the partial-depth timers (the server is stopping). */
  stop(): void {
    this.#clock.stop();
  }

  /** Every event the server takes in; cheap when its topic feeds nothing. `gap`: the source missed events before this one. */
  onSource(h: EventHeader, bytes: Uint8Array, isSnapshot: boolean, gap?: string): void {
    const own = this.#bySource.get(h.topic);
    // `*@ticker`: derivers of every symbol's tickers (the all-market arrays), besides the symbol's own (`@ticker_1h`).
    const all = this.#wildcards > 0 ? this.#bySource.get(`*${h.topic.slice(h.topic.indexOf('@'))}`) : undefined;
    if (!own && !all) return;
    const ev = fromBinary(EventSchema, bytes);
    for (const d of own && all ? [...own, ...all] : (own ?? all)!) {
      if (gap) {
        d.reset();
        this.#o.gap(d.topic, gap);
      }
      const payload = d.derive(ev, isSnapshot);
      if (payload) this.#publish(d, h.epoch, h.publishTimeUs, payload);
    }
  }

  #publish(d: Deriver, epoch: number, publishTimeUs: number, payload: Event['payload'] | undefined): void {
    if (!payload) return;
    const th = this.#o.historyOf(d.topic);
    // A new source epoch restarts the derived seq too.
    const seq = th.epoch === epoch ? th.lastSeq + 1 : 1;
    const bytes = toBinary(EventSchema, create(EventSchema, { topic: d.topic, seq: BigInt(seq), epoch: BigInt(epoch), publishTimeUs: BigInt(Math.round(publishTimeUs)), payload }));
    if (!th.add({ topic: d.topic, seq, epoch, publishTimeUs, payloadField: 0 }, bytes)) return;
    this.#o.deliver(d.topic, bytes);
  }
}

/** The same payload under another topic (aggTrade from trade, a +08:00 kline equal to its UTC one). */
class Retopic implements Deriver {
  readonly topic: string;
  readonly source: string;
  constructor(topic: string, source: string) {
    this.topic = topic;
    this.source = source;
  }
  derive(ev: Event, isSnapshot: boolean): Event['payload'] | undefined {
    return isSnapshot ? undefined : ev.payload;
  }
  reset(): void {}
}

const ARRAY_EVERY_US = 1_000_000;

/** Binance's all-market tickers: the tickers that changed since the last array, at most one array a second. */
class TickerArray implements Deriver {
  readonly topic: string;
  readonly source: string;
  #changed = new Map<string, Ticker>();
  #lastEmitUs = -Infinity;

  constructor(topic: string, source: string) {
    this.topic = topic;
    this.source = source;
  }

  reset(): void {}

  take(t: Ticker): void {
    this.#changed.set(t.symbol, t);
  }

  derive(ev: Event, isSnapshot: boolean): Event['payload'] | undefined {
    const p = ev.payload;
    if (isSnapshot || p.case !== 'ticker') return undefined;
    this.take(p.value);
    const at = Number(ev.publishTimeUs);
    if (at - this.#lastEmitUs < ARRAY_EVERY_US) return undefined;
    this.#lastEmitUs = at;
    return this.flush();
  }

  /** The array of what changed (by symbol), emptied. */
  flush(): Event['payload'] | undefined {
    if (this.#changed.size === 0) return undefined;
    const tickers = [...this.#changed.values()].sort((a, b) => (a.symbol < b.symbol ? -1 : 1));
    this.#changed.clear();
    return { case: 'tickerArray', value: { tickers } } as Event['payload'];
  }
}

const AVG_WINDOW_MS = 300_000;
const AVG_EVERY_US = 1_000_000;

/** Binance's avgPrice: the 5-minute volume-weighted price, updated at most once a second (only when trades came). */
class AvgPrice implements Deriver {
  readonly topic: string;
  readonly source: string;
  #symbol: string;
  #decimals = 0;
  // The window's trades, oldest first from #head: time (ms), qty, price × qty.
  #t: number[] = [];
  #q: number[] = [];
  #pq: number[] = [];
  #head = 0;
  #qty = 0;
  #quote = 0;
  #lastPrice = '';
  #lastEmitUs = -Infinity;

  constructor(topic: string, source: string) {
    this.topic = topic;
    this.source = source;
    this.#symbol = topic.slice(0, topic.indexOf('@')).toUpperCase();
  }

  /** Seeds the window from the trades the server still holds; false when it holds none. */
  start(th: TopicHistory): boolean {
    for (const bytes of th.since(th.epoch, Math.max(0, th.oldestSeq - 1)) ?? []) {
      const p = fromBinary(EventSchema, bytes).payload;
      if (p.case === 'trade') this.#add(Number(p.value.tradeTime), p.value.price, p.value.qty);
    }
    return this.#lastPrice !== '';
  }

  reset(): void {}

  #add(time: number, price: string, qty: string): void {
    const q = Number(qty);
    const pq = q * Number(price);
    this.#t.push(time);
    this.#q.push(q);
    this.#pq.push(pq);
    this.#qty += q;
    this.#quote += pq;
    this.#lastPrice = price;
    this.#decimals = price.split('.')[1]?.length ?? 0;
    while (this.#t[this.#head]! < time - AVG_WINDOW_MS) {
      this.#qty -= this.#q[this.#head]!;
      this.#quote -= this.#pq[this.#head]!;
      this.#head++;
    }
    // Drop what slid out once it is half the arrays, so they stay bounded by the window.
    if (this.#head > 1024 && this.#head * 2 > this.#t.length) {
      this.#t = this.#t.slice(this.#head);
      this.#q = this.#q.slice(this.#head);
      this.#pq = this.#pq.slice(this.#head);
      this.#head = 0;
    }
  }

  derive(ev: Event, isSnapshot: boolean): Event['payload'] | undefined {
    const p = ev.payload;
    if (isSnapshot || p.case !== 'trade') return undefined;
    this.#add(Number(p.value.tradeTime), p.value.price, p.value.qty);
    const at = Number(ev.publishTimeUs);
    if (at - this.#lastEmitUs < AVG_EVERY_US) return undefined;
    this.#lastEmitUs = at;
    return this.current();
  }

  /** Carried in a Ticker message: weightedAvgPrice = the average, closeTime = the last trade's time. */
  current(): Event['payload'] {
    const last = this.#t.at(-1) ?? 0;
    const w = this.#qty > 0 ? (this.#quote / this.#qty).toFixed(this.#decimals) : this.#lastPrice;
    return { case: 'ticker', value: { symbol: this.#symbol, weightedAvgPrice: w, lastPrice: this.#lastPrice, closeTime: BigInt(last) } } as Event['payload'];
  }
}
