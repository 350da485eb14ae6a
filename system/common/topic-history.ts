// Per-topic memory used for snapshots and recovery by position:
// - the latest event (for ticker and kline it IS the snapshot),
// - the latest depth snapshot (its seq = seq of the last diff it contains),
// - a bounded ring of recent events, so a subscriber that comes back with
//   (epoch, seq) gets exactly what it missed, or learns it must resync.
// Events are kept as the encoded bytes they arrived in, never re-encoded.
import type { EventHeader } from './event-header.ts';

export interface StoredEvent {
  seq: number;
  bytes: Uint8Array;
}

export class TopicHistory {
  readonly topic: string;
  epoch = 0;
  lastSeq = 0;
  latest: StoredEvent | undefined;
  depthSnapshot: StoredEvent | undefined;
  #ring: (StoredEvent | undefined)[];
  #start = 0; // index of oldest
  #count = 0;

  constructor(topic: string, capacity: number) {
    this.topic = topic;
    this.#ring = new Array(Math.max(1, capacity));
  }

  /**
   * Records a live event: false (nothing stored) for a duplicate, an older
   * event, or one from an older epoch; 'after_gap' when events are missing
   * before it. Past a hole, positions before it can no longer be served and a
   * depth snapshot from before it no longer leads to the present: both are
   * forgotten, so `since` and `snapshot` never hand out a book or a stream
   * with a hole in it.
   */
  add(h: EventHeader, bytes: Uint8Array): false | 'added' | 'after_gap' {
    // Epochs are the feed's start time: a newer one restarts the topic, an older one is a late straggler.
    if (h.epoch < this.epoch) return false;
    let result: 'added' | 'after_gap' = 'added';
    if (h.epoch > this.epoch) this.#reset(h.epoch);
    else if (h.seq <= this.lastSeq) return false;
    else if (this.lastSeq > 0 && h.seq > this.lastSeq + 1) {
      this.#forgetHistory();
      this.depthSnapshot = undefined;
      result = 'after_gap';
    }
    const ev = { seq: h.seq, bytes };
    this.lastSeq = h.seq;
    this.latest = ev;
    const cap = this.#ring.length;
    if (this.#count < cap) {
      this.#ring[(this.#start + this.#count) % cap] = ev;
      this.#count++;
    } else {
      this.#ring[this.#start] = ev;
      this.#start = (this.#start + 1) % cap;
    }
    return result;
  }

  setDepthSnapshot(h: EventHeader, bytes: Uint8Array): void {
    if (h.epoch < this.epoch) return;
    if (h.epoch > this.epoch) this.#reset(h.epoch);
    if (this.depthSnapshot && h.seq < this.depthSnapshot.seq) return;
    this.depthSnapshot = { seq: h.seq, bytes };
  }

  #reset(epoch: number): void {
    this.epoch = epoch;
    this.lastSeq = 0;
    this.latest = undefined;
    this.depthSnapshot = undefined;
    this.#forgetHistory();
  }

  #forgetHistory(): void {
    this.#ring.fill(undefined);
    this.#start = 0;
    this.#count = 0;
  }

  get oldestSeq(): number {
    return this.#count ? this.#ring[this.#start]!.seq : 0;
  }

  /** Events with seq > afterSeq of this epoch, or undefined when history no longer covers them. */
  since(epoch: number, afterSeq: number): Uint8Array[] | undefined {
    if (epoch !== this.epoch) return undefined;
    if (afterSeq >= this.lastSeq) return [];
    if (this.#count === 0 || afterSeq + 1 < this.oldestSeq) return undefined;
    const out: Uint8Array[] = [];
    const cap = this.#ring.length;
    for (let i = 0; i < this.#count; i++) {
      const ev = this.#ring[(this.#start + i) % cap]!;
      if (ev.seq > afterSeq) out.push(ev.bytes);
    }
    return out;
  }

  /**
   * What a new subscriber needs to start: the latest event for state-like
   * topics, the depth snapshot plus the diffs after it for depth, nothing for
   * trades. `ready` is false when a depth topic has no usable snapshot yet
   * (the subscriber waits for the next one).
   */
  snapshot(kind: 'ticker' | 'kline' | 'depth' | 'trade'): { events: Uint8Array[]; seq: number; ready: boolean } {
    if (kind === 'trade') return { events: [], seq: this.lastSeq, ready: true };
    if (kind === 'depth') {
      const snap = this.depthSnapshot;
      if (!snap) return { events: [], seq: 0, ready: false };
      const diffs = this.since(this.epoch, snap.seq);
      if (!diffs) return { events: [], seq: 0, ready: false };
      return { events: [snap.bytes, ...diffs], seq: Math.max(snap.seq, this.lastSeq), ready: true };
    }
    return this.latest ? { events: [this.latest.bytes], seq: this.latest.seq, ready: true } : { events: [], seq: 0, ready: true };
  }
}
