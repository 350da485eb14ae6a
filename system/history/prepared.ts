// Prepared answers for the hot shape, "the last N candles" (no startTime, no
// endTime, N ≤ 1000): per (series, N) the closed part is kept as bytes and
// rebuilt only when the series' closed part changes (a candle closes or opens,
// the horizon trims); the newest candle, which moves with every trade, is
// appended to it (its ETag finished from the head's hash state) only when
// that candle changed since the last answer. An answer is two Buffers (head,
// newest row) written to the socket as they are, never copied into one
// (copying 85 KB cost 0.3 ms per trade here, more than all the rest).
// Bounded: the least recently used entries go.
import type { MemoryKlineStore } from './memory-store.ts';
import type { Hash } from 'node:crypto';
import { etagState, etagWith, rowBytes, rowsBody } from './rows.ts';

export interface PreparedAnswer {
  /** The body as chunks: the closed part and the newest row. */
  body: Buffer[];
  etag: string;
  lastCloseTime: number;
  rows: number;
}

interface Entry extends PreparedAnswer {
  closedVersion: number;
  lastVersion: number;
  /** `[` + every row but the newest, each followed by `,`, and the ETag's hash state after it. */
  head: Buffer;
  headHash: Hash;
}

const CLOSE = Buffer.from(']');

export class PreparedKlines {
  readonly maxEntries: number;
  #memory: MemoryKlineStore;
  #entries = new Map<string, Entry>();
  /** Answers served from an entry that was current, and rebuilds (of the newest row, or of everything). */
  hits = 0;
  tailBuilds = 0;
  fullBuilds = 0;

  constructor(memory: MemoryKlineStore, maxEntries = 256) {
    this.#memory = memory;
    this.maxEntries = maxEntries;
  }

  /**
   * The last `limit` candles of a series when memory holds all of them from `memoryFrom` on (the
   * tiered reader would read only memory); undefined otherwise (the caller reads the tiers).
   * `olderTiers` false (no Redis, no cold tier): memory is all there is, a shorter series is the answer.
   */
  get(symbol: string, interval: string, limit: number, memoryFrom: number, olderTiers = true): PreparedAnswer | undefined {
    const s = this.#memory.series(symbol, interval);
    const all = s?.candles;
    if (!s || !all || all.length === 0 || limit < 1) return undefined;
    if (olderTiers && (all.length < limit || all[all.length - limit]!.openTime < memoryFrom)) return undefined;
    const a = all;
    const n = Math.min(limit, a.length);
    const key = `${symbol}:${interval}:${limit}`;
    let e = this.#entries.get(key);
    if (e) {
      this.#entries.delete(key); // re-inserted below: most recently used last
      if (e.lastVersion === s.lastVersion && e.closedVersion === s.closedVersion) {
        this.#entries.set(key, e);
        this.hits++;
        return e;
      }
    }
    const last = a[a.length - 1]!;
    let head: Buffer;
    let headHash: Hash;
    if (e && e.closedVersion === s.closedVersion) {
      ({ head, headHash } = e);
      this.tailBuilds++;
    } else {
      const closed = a.slice(a.length - n, a.length - 1).map(rowBytes);
      head = rowsBody(closed, '[', closed.length === 0 ? '' : ',');
      headHash = etagState(head);
      this.fullBuilds++;
    }
    // Only the newest row is new: copy it after the head, and finish the head's hash with it.
    const tail = Buffer.concat([rowBytes(last), CLOSE]);
    const body = [head, tail];
    e = { head, headHash, body, etag: etagWith(headHash, tail), lastCloseTime: last.closeTime, rows: n, closedVersion: s.closedVersion, lastVersion: s.lastVersion };
    this.#entries.set(key, e);
    if (this.#entries.size > this.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    return e;
  }

  get size(): number {
    return this.#entries.size;
  }

  clear(): void {
    this.#entries.clear();
  }
}
