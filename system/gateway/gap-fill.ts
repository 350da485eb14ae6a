// One topic's hole being filled from the owning server's history: the events
// that came after the hole wait here, in order, until the missing ones arrive
// or the wait ends (then the hole is announced instead).
import type { EventHeader } from '../common/event-header.ts';

export interface HeldEvent {
  h: EventHeader;
  bytes: Uint8Array;
}

/** How long a gap may wait for the server's history before it is announced. */
export const FILL_WAIT_MS = 1_000;
/** Events held while filling; past this the gap is announced instead of waited out. */
const MAX_HELD = 10_000;

const byPosition = (a: HeldEvent, b: HeldEvent) => a.h.epoch - b.h.epoch || a.h.seq - b.h.seq;

export class GapFill {
  #held: HeldEvent[] = [];
  #timer: NodeJS.Timeout;

  constructor(onTimeout: () => void, waitMs = FILL_WAIT_MS) {
    this.#timer = setTimeout(onTimeout, waitMs);
    this.#timer.unref();
  }

  get size(): number {
    return this.#held.length;
  }

  /** Holds an event after the hole; false once too many are held (stop waiting). */
  hold(e: HeldEvent): boolean {
    this.#held.push(e);
    return this.#held.length <= MAX_HELD;
  }

  /** The oldest held event, without taking it. */
  peek(): HeldEvent | undefined {
    if (this.#held.length > 1) this.#held.sort(byPosition);
    return this.#held[0];
  }

  take(): HeldEvent | undefined {
    return this.peek() && this.#held.shift();
  }

  /** Ends the fill: every held event, oldest first. */
  end(): HeldEvent[] {
    clearTimeout(this.#timer);
    const held = this.#held.sort(byPosition);
    this.#held = [];
    return held;
  }
}
