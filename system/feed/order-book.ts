// One symbol's order book as the feed keeps it: price levels in integer
// ticks and steps, an update id that counts every level change (Binance's
// `lastUpdateId`), and the changes still to publish for each diff cadence.
// Binance's diff-depth streams carry the last quantity of every level changed
// in a window (`U` = first update id in it, `u` = last), so consecutive diffs
// of one cadence satisfy `U = previous u + 1` and a snapshot taken at any
// update id L is continued by the diff whose `U ≤ L+1 ≤ u`.

export interface Level {
  price: number; // ticks
  qty: number; // steps
}

/** A diff of one window: update ids first..last, each changed level's latest quantity (0 removes it), best price first. */
export interface BookDiff {
  first: number;
  last: number;
  bids: Array<[number, number]>;
  asks: Array<[number, number]>;
}

/** One side of a book, best level first, recording every level it changes until taken. */
export class BookSide {
  readonly isBid: boolean;
  levels: Level[] = [];
  /** Changed levels since the last fast diff: price → latest quantity. */
  changes = new Map<number, number>();
  /** Level changes ever made (each one consumes an update id). */
  sets = 0;

  constructor(isBid: boolean) {
    this.isBid = isBid;
  }

  /** a is a better price than b on this side. */
  better(a: number, b: number): boolean {
    return this.isBid ? a > b : a < b;
  }

  #indexOf(price: number): number {
    let lo = 0;
    let hi = this.levels.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.better(this.levels[mid]!.price, price)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Sets a level's quantity; 0 removes it. */
  set(price: number, qty: number): void {
    const i = this.#indexOf(price);
    const at = this.levels[i];
    if (at && at.price === price) {
      if (qty === 0) this.levels.splice(i, 1);
      else at.qty = qty;
    } else if (qty > 0) {
      this.levels.splice(i, 0, { price, qty });
    }
    this.changes.set(price, qty);
    this.sets++;
  }

  trimTo(n: number): void {
    while (this.levels.length > n) this.set(this.levels[this.levels.length - 1]!.price, 0);
  }

  /** The changes since the last call, best price first; they are also folded into `into` (a slower window). */
  takeChanges(into: Map<number, number>): Array<[number, number]> {
    const out = [...this.changes];
    for (const [p, q] of out) into.set(p, q);
    this.changes.clear();
    return sortSide(out, this.isBid);
  }
}

function sortSide(levels: Array<[number, number]>, isBid: boolean): Array<[number, number]> {
  return levels.sort((a, b) => (isBid ? b[0] - a[0] : a[0] - b[0]));
}

/** Both sides, the update id, and the pending windows of the fast (100 ms) and slow (1000 ms) diff streams. */
export class OrderBook {
  readonly bids = new BookSide(true);
  readonly asks = new BookSide(false);
  #base = 0;
  #fastFrom = 1;
  #slowFrom = 1;
  #slowBids = new Map<number, number>();
  #slowAsks = new Map<number, number>();

  /** The id of the last change applied (0 before any). */
  get updateId(): number {
    return this.bids.sets + this.asks.sets - this.#base;
  }

  /** Declares the current book the state before update id 1: nothing of it is a diff. */
  markInitial(): void {
    this.#base = this.bids.sets + this.asks.sets;
    this.bids.changes.clear();
    this.asks.changes.clear();
    this.#slowBids.clear();
    this.#slowAsks.clear();
    this.#fastFrom = this.#slowFrom = 1;
  }

  /** The fast window's diff (undefined when nothing changed); its changes also join the slow window. */
  takeFastDiff(): BookDiff | undefined {
    const last = this.updateId;
    if (last < this.#fastFrom) return undefined;
    const diff = { first: this.#fastFrom, last, bids: this.bids.takeChanges(this.#slowBids), asks: this.asks.takeChanges(this.#slowAsks) };
    this.#fastFrom = last + 1;
    return diff;
  }

  /** The slow window's diff; call right after takeFastDiff so no change is pending in the fast window. */
  takeSlowDiff(): BookDiff | undefined {
    const last = this.updateId;
    if (last < this.#slowFrom) return undefined;
    const diff = { first: this.#slowFrom, last, bids: sortSide([...this.#slowBids], true), asks: sortSide([...this.#slowAsks], false) };
    this.#slowBids.clear();
    this.#slowAsks.clear();
    this.#slowFrom = last + 1;
    return diff;
  }
}
