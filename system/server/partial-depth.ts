// Binance's partial book depth `<sym>@depth5|10|20[@100ms]`: the top levels
// of the book kept from the diff stream of the same cadence, sent every
// window (1000 ms or 100 ms) whether or not the book changed, as Binance
// does. Diffs only move the kept book; one wall-clock-aligned timer per
// cadence (not per topic) publishes every book that is known, so each window
// carries exactly one event per topic, and the timers exist only while some
// partial-depth topic of their cadence is derived.
import type { Event, PriceLevel } from '../../proto/gen/market_pb.js';
import type { TopicHistory } from '../common/topic-history.ts';
import { bookFromHistory } from './depth-book.ts';

/** The top `levels` of a book kept from a diff-depth topic's snapshots and diffs (Binance's local-book rules). */
export class PartialDepth {
  readonly topic: string;
  readonly source: string;
  readonly levels: number;
  /** The window: 1000 (`@depthN`) or 100 (`@depthN@100ms`) ms. */
  readonly cadenceMs: number;
  #symbol = '';
  #bids = new Map<string, string>();
  #asks = new Map<string, string>();
  /** Update id the book is at; -1 while no consistent book is known (waiting for a snapshot). */
  #last = -1;
  /** current() until the book moves: an unchanged book is re-sent every window, not re-sorted. */
  #top: Event['payload'] | undefined;

  constructor(topic: string, source: string, levels: number, cadenceMs: number) {
    this.topic = topic;
    this.source = source;
    this.levels = levels;
    this.cadenceMs = cadenceMs;
    this.#symbol = topic.slice(0, topic.indexOf('@')).toUpperCase();
  }

  /** A consistent book is known (the timer publishes only then). */
  get ready(): boolean {
    return this.#last >= 0;
  }

  /** Starts from the book the server already keeps for the source; false when it has none yet. */
  start(th: TopicHistory): boolean {
    const book = bookFromHistory(th);
    if (!book) return false;
    this.#bids = new Map(book.bids);
    this.#asks = new Map(book.asks);
    this.#last = book.lastUpdateId;
    this.#top = undefined;
    return true;
  }

  reset(): void {
    this.#last = -1;
  }

  /** Moves the book; publishes nothing itself (the cadence timer does). */
  derive(ev: Event, isSnapshot: boolean): undefined {
    const p = ev.payload;
    if (isSnapshot) {
      if (p.case !== 'depthSnapshot') return undefined;
      // A snapshot only (re)starts a book; while one is kept, the diffs already carry it.
      if (this.#last >= 0) return undefined;
      this.#bids = new Map(p.value.bids.map((l) => [l.price, l.qty]));
      this.#asks = new Map(p.value.asks.map((l) => [l.price, l.qty]));
      this.#last = Number(p.value.lastUpdateId);
      this.#top = undefined;
      return undefined;
    }
    if (p.case !== 'depthUpdate' || this.#last < 0) return undefined;
    const first = Number(p.value.firstUpdateId);
    const final = Number(p.value.finalUpdateId);
    if (final <= this.#last) return undefined;
    if (first > this.#last + 1) {
      this.#last = -1; // a hole: wait for the next snapshot rather than publish a wrong book
      return undefined;
    }
    apply(this.#bids, p.value.bids);
    apply(this.#asks, p.value.asks);
    this.#last = final;
    this.#top = undefined;
    return undefined;
  }

  /** Binance's partial depth: lastUpdateId, the best `levels` bids (highest first) and asks (lowest first). */
  current(): Event['payload'] {
    if (this.#top) return this.#top;
    const top = (side: Map<string, string>, desc: boolean): PriceLevel[] =>
      [...side]
        .sort((a, b) => (desc ? Number(b[0]) - Number(a[0]) : Number(a[0]) - Number(b[0])))
        .slice(0, this.levels)
        .map(([price, qty]) => ({ price, qty }) as PriceLevel);
    return (this.#top = { case: 'depthSnapshot', value: { symbol: this.#symbol, lastUpdateId: BigInt(this.#last), bids: top(this.#bids, true), asks: top(this.#asks, false) } } as Event['payload']);
  }
}

function apply(side: Map<string, string>, levels: PriceLevel[]): void {
  for (const l of levels) {
    if (Number(l.qty) === 0) side.delete(l.price);
    else side.set(l.price, l.qty);
  }
}

interface Cadence {
  readonly members: Set<PartialDepth>;
  timer: NodeJS.Timeout | undefined;
}

/**
 * One timer per cadence for every partial-depth topic of that cadence, firing
 * on the wall clock's multiples of the window (every server alike), so
 * consecutive events of a topic are one window apart. `publish` gets the
 * window's boundary as the event's time (µs).
 */
export class PartialDepthClock {
  #cadences = new Map<number, Cadence>();
  #publish: (d: PartialDepth, atUs: number) => void;
  #now: () => number;

  constructor(publish: (d: PartialDepth, atUs: number) => void, now: () => number = Date.now) {
    this.#publish = publish;
    this.#now = now;
  }

  /** Timers running (one per cadence in use). */
  get timers(): number {
    let n = 0;
    for (const c of this.#cadences.values()) if (c.timer) n++;
    return n;
  }

  add(d: PartialDepth): void {
    let c = this.#cadences.get(d.cadenceMs);
    if (!c) this.#cadences.set(d.cadenceMs, (c = { members: new Set(), timer: undefined }));
    c.members.add(d);
    if (!c.timer) this.#arm(d.cadenceMs, c, 0);
  }

  remove(d: PartialDepth): void {
    const c = this.#cadences.get(d.cadenceMs);
    if (!c?.members.delete(d) || c.members.size > 0) return;
    clearTimeout(c.timer);
    this.#cadences.delete(d.cadenceMs);
  }

  /** Publishes every known book of the cadence for the window ending at `boundaryMs` (the timer calls this). */
  tick(cadenceMs: number, boundaryMs: number): void {
    const c = this.#cadences.get(cadenceMs);
    if (!c) return;
    for (const d of c.members) if (d.ready) this.#publish(d, boundaryMs * 1000);
  }

  stop(): void {
    for (const c of this.#cadences.values()) clearTimeout(c.timer);
    this.#cadences.clear();
  }

  /** `after`: the boundary just served (a timer that fires a hair early must not serve it twice). */
  #arm(ms: number, c: Cadence, after: number): void {
    const now = this.#now();
    // The next multiple of the window; a late timer skips the windows it missed rather than bunching them.
    const boundary = Math.max((Math.floor(now / ms) + 1) * ms, after + ms);
    c.timer = setTimeout(() => {
      if (this.#cadences.get(ms) !== c) return;
      this.tick(ms, boundary);
      this.#arm(ms, c, boundary);
    }, boundary - now);
    c.timer.unref();
  }
}
