// Paces replayed files against a clock: each file starts at the player's
// start and its events fall due at start + (original time − the file's first
// time) ÷ speed, in file order (an event stamped earlier than the one before
// goes out right after it). Several files play side by side, each on its own
// time base; with loop, a file starts over 1 ms after its last event. Events
// are the Event protos the simulator publishes (per-topic seq, one epoch,
// publish_time_us = the intended time). No timers: the caller advances it.
import { create } from '@bufbuild/protobuf';
import { EventSchema, type Event } from '../../proto/gen/market_pb.js';
import { parseTopic, topicSubject } from '../common/topics.ts';
import { readReplayFile, type ReplayRow } from './replay-source.ts';

export interface ReplayPlayerOptions {
  files: string[];
  speed: number;
  loop: boolean;
  symbol?: string;
  epoch: number;
  startTimeMs: number;
  /** A pass over a file ended (pass counts from 1). */
  onPassEnd?: (path: string, pass: number, events: number) => void;
}

interface Cursor {
  path: string;
  rows: AsyncGenerator<ReplayRow>;
  pending: { row: ReplayRow; dueMs: number } | undefined;
  ended: boolean;
  pass: number;
  passEvents: number;
  /** Wall time of the pass's first event, and its original time. */
  base: number;
  t0: number | undefined;
  lastDue: number;
  skips: number;
}

const LOOP_GAP_MS = 1;

export class ReplayPlayer {
  readonly epoch: number;
  #o: ReplayPlayerOptions;
  #cursors: Cursor[];
  #topics = new Map<string, { topic: string; subject: string; seq: number }>();
  #emitted = 0;

  constructor(o: ReplayPlayerOptions) {
    if (o.files.length === 0) throw new Error('a replay needs at least one file');
    if (!(o.speed > 0) || !Number.isFinite(o.speed)) throw new Error(`replay speed must be a positive number, not ${o.speed}`);
    this.#o = o;
    this.epoch = o.epoch;
    this.#cursors = o.files.map((path) => {
      const c: Cursor = { path, rows: undefined as unknown as AsyncGenerator<ReplayRow>, pending: undefined, ended: false, pass: 1, passEvents: 0, base: o.startTimeMs, t0: undefined, lastDue: o.startTimeMs, skips: 0 };
      c.rows = this.#open(c);
      return c;
    });
  }

  get eventsEmitted(): number {
    return this.#emitted;
  }

  /** True once every file has ended (never with loop). */
  get done(): boolean {
    return this.#cursors.every((c) => c.ended);
  }

  /** Passes completed, per file. */
  passes(): Record<string, number> {
    return Object.fromEntries(this.#cursors.map((c) => [c.path, c.pass - (c.ended ? 0 : 1)]));
  }

  /** Lines skipped while playing, every pass counted (by reason they are in the scan's summary). */
  get skipped(): number {
    return this.#cursors.reduce((n, c) => n + c.skips, 0);
  }

  #open(c: Cursor): AsyncGenerator<ReplayRow> {
    return readReplayFile(c.path, this.#o.symbol ? { symbol: this.#o.symbol } : {}, { onSkip: () => c.skips++ });
  }

  /** Loads each file's next event; with loop, starts a file over at its end. */
  async #fill(c: Cursor): Promise<void> {
    while (!c.pending && !c.ended) {
      const next = await c.rows.next();
      if (!next.done) {
        const t = next.value.event.timeMs;
        let due = c.lastDue;
        if (t !== undefined) {
          if (c.t0 === undefined) c.t0 = t;
          due = Math.max(c.lastDue, c.base + (t - c.t0) / this.#o.speed);
        }
        c.lastDue = due;
        c.pending = { row: next.value, dueMs: due };
        return;
      }
      this.#o.onPassEnd?.(c.path, c.pass, c.passEvents);
      if (!this.#o.loop || c.passEvents === 0) {
        c.ended = true;
        return;
      }
      c.pass++;
      c.passEvents = 0;
      c.base = c.lastDue + LOOP_GAP_MS;
      c.lastDue = c.base;
      c.t0 = undefined;
      c.rows = this.#open(c);
    }
  }

  /** Intended time of the next event (Infinity when every file has ended); loads what it needs. */
  async nextDueMs(): Promise<number> {
    let min = Infinity;
    for (const c of this.#cursors) {
      await this.#fill(c);
      if (c.pending && c.pending.dueMs < min) min = c.pending.dueMs;
    }
    return min;
  }

  /** Emits, in intended-time order, every event due at or before nowMs, at most maxEvents; returns how many. */
  async advanceTo(nowMs: number, emit: (subject: string, event: Event) => void, maxEvents = Infinity): Promise<number> {
    let n = 0;
    while (n < maxEvents) {
      let best: Cursor | undefined;
      for (const c of this.#cursors) {
        await this.#fill(c);
        if (c.pending && c.pending.dueMs <= nowMs && (!best || c.pending.dueMs < best.pending!.dueMs)) best = c;
      }
      if (!best) break;
      const { row, dueMs } = best.pending!;
      best.pending = undefined;
      best.passEvents++;
      emit(...this.#event(row, dueMs));
      n++;
    }
    this.#emitted += n;
    return n;
  }

  /** Stops reading every file. */
  async close(): Promise<void> {
    for (const c of this.#cursors) {
      c.ended = true;
      await c.rows.return(undefined);
    }
  }

  #event(row: ReplayRow, dueMs: number): [string, Event] {
    const { symbol, stream, payload } = row.event;
    const key = `${symbol}@${stream}`;
    let t = this.#topics.get(key);
    if (!t) {
      const parsed = parseTopic(key);
      if (typeof parsed === 'string') throw new Error(`replay: ${parsed}`);
      t = { topic: parsed.topic, subject: topicSubject(parsed), seq: 0 };
      this.#topics.set(key, t);
    }
    const event = create(EventSchema, {
      topic: t.topic,
      seq: BigInt(++t.seq),
      epoch: BigInt(this.epoch),
      publishTimeUs: BigInt(Math.round(dueMs * 1000)),
      payload,
    });
    return [t.subject, event];
  }
}
