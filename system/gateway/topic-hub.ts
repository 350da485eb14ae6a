// The gateway's subscription core, shared by every client protocol: topic →
// connections, the upstream subscription per topic (once per gateway, not
// per client), snapshots for new subscribers, gap handling, and the chunked
// fan-out of each event to its subscribers.
// Gaps: a jump in a topic's seq is first filled from the owning server's
// history (resume by position, events after the jump held meanwhile); what
// cannot be filled is announced to every subscriber — a resync notice in
// order, right before the first event after the hole — and depth
// subscribers wait for a fresh snapshot. Nothing is skipped silently.
import { ChunkedFanout } from '../common/chunked-fanout.ts';
import { TopicHistory } from '../common/topic-history.ts';
import { readEventHeader, PAYLOAD_DEPTH_SNAPSHOT, type EventHeader } from '../common/event-header.ts';
import { isConflatable, parseTopic, type ParsedTopic } from '../common/topics.ts';
import { EncodedEvent } from './codec.ts';
import { StageLatency } from './stage-latency.ts';
import { GapFill, type HeldEvent } from './gap-fill.ts';
import type { ClientConn } from './client-conn.ts';
import type { Logger } from '../common/logger.ts';
import type { ProcessStats } from '../common/process-stats.ts';

interface TopicSub {
  parsed: ParsedTopic;
  conns: Set<ClientConn>;
  history: TopicHistory;
  /** Depth subscribers waiting for their first snapshot; they get no diffs until then. */
  waiting: Set<ClientConn>;
  lingerTimer: NodeJS.Timeout | undefined;
  /** Filling a gap from the server's history: events after the hole wait here. */
  fill: GapFill | undefined;
  /** The server already said events are gone: the next jump is the announced one, not a new gap. */
  jumpAnnounced: boolean;
}


export interface Upstream {
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  resubscribe(topic: string): void;
}

export interface ResyncNotifier {
  /** lastSeq: the last seq of the topic this client was sent before the gap (0: unknown). */
  (c: ClientConn, topic: string, reason: string, lastSeq?: number): void;
}

export class TopicHub {
  #subs = new Map<string, TopicSub>();
  #fanout: ChunkedFanout<ClientConn>;
  #dirty = new Set<ClientConn>();
  #flushScheduled = false;
  #flushTimer: NodeJS.Timeout | undefined;
  #flushIntervalMs: number;
  #lastFlushAt = -Infinity;
  #upstream: Upstream;
  #log: Logger;
  #stats: ProcessStats;
  #lingerMs: number;
  #notifyResync: ResyncNotifier;
  /** pt → written to every subscriber, per event (the gateway's share of latency). */
  readonly egress = new StageLatency();
  /** pt → the event reached this gateway (feed, NATS, push-server and the link before it). */
  readonly arrival = new StageLatency();
  // Encodings are cached per event so snapshot storms do not re-encode.
  #encoded = new WeakMap<Uint8Array, EncodedEvent>();

  constructor(o: {
    upstream: Upstream;
    log: Logger;
    stats: ProcessStats;
    fanoutSliceMs: number;
    /** Least ms between flush rounds (0: every event-loop turn). */
    flushIntervalMs: number;
    lingerMs: number;
    notifyResync: ResyncNotifier;
  }) {
    this.#upstream = o.upstream;
    this.#log = o.log;
    this.#stats = o.stats;
    this.#lingerMs = o.lingerMs;
    this.#flushIntervalMs = o.flushIntervalMs;
    this.#notifyResync = o.notifyResync;
    this.#fanout = new ChunkedFanout({ sliceMs: o.fanoutSliceMs, onSliceEnd: () => this.flush() });
  }

  setUpstream(u: Upstream): void {
    this.#upstream = u;
  }

  get topicCount(): number {
    return this.#subs.size;
  }

  get fanoutYields(): number {
    return this.#fanout.yields;
  }

  /** How long fan-out slices held the event loop (GET /metrics). */
  get fanoutSliceTimes(): ChunkedFanout<ClientConn>['sliceTimes'] {
    return this.#fanout.sliceTimes;
  }

  /** Messages waiting for their fan-out to start or finish. */
  get fanoutPending(): number {
    return this.#fanout.pending;
  }

  markDirty(c: ClientConn): void {
    this.#dirty.add(c);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Within the flush interval of the last round, wait for the rest of it:
    // what arrives meanwhile joins the same write per client.
    const wait = this.#flushIntervalMs - (performance.now() - this.#lastFlushAt);
    if (wait >= 1) {
      this.#flushTimer = setTimeout(this.#flushNow, wait);
      this.#flushTimer.unref();
    } else setImmediate(this.#flushNow);
  }

  #flushNow = (): void => this.flush();

  flush(): void {
    this.#flushScheduled = false;
    if (this.#flushTimer) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    this.#lastFlushAt = performance.now();
    for (const c of this.#dirty) c.flush();
    this.#dirty.clear();
    this.egress.flushed();
  }

  position(topic: string): { epoch: number; afterSeq: number } {
    const s = this.#subs.get(topic);
    return s ? { epoch: s.history.epoch, afterSeq: s.history.lastSeq } : { epoch: 0, afterSeq: 0 };
  }

  #encodedFor(topic: string, seq: number, bytes: Uint8Array): EncodedEvent {
    let e = this.#encoded.get(bytes);
    if (!e) {
      e = new EncodedEvent(topic, seq, bytes);
      this.#encoded.set(bytes, e);
    }
    return e;
  }

  /** Binds a connection to a topic (already validated) and sends it the topic's snapshot. */
  subscribe(c: ClientConn, parsed: ParsedTopic): void {
    const topic = parsed.topic;
    if (c.topics.has(topic)) return;
    let s = this.#subs.get(topic);
    if (!s) {
      s = {
        parsed,
        conns: new Set(),
        // depth keeps the diffs since its last snapshot; others only need their latest event
        history: new TopicHistory(topic, parsed.kind === 'depth' ? 4096 : 1),
        waiting: new Set(),
        lingerTimer: undefined,
        fill: undefined,
        jumpAnnounced: false,
      };
      this.#subs.set(topic, s);
      this.#upstream.subscribe(topic);
    }
    clearTimeout(s.lingerTimer);
    s.lingerTimer = undefined;
    s.conns.add(c);
    // The topic's one string, not this request's copy: 10 topics × 10,000 idle clients are 100,000 strings otherwise.
    c.topics.add(s.parsed.topic);
    this.#sendSnapshot(c, s);
  }

  #sendSnapshot(c: ClientConn, s: TopicSub): void {
    const snap = s.history.snapshot(s.parsed.kind);
    if (!snap.ready) {
      s.waiting.add(c);
      return;
    }
    for (const b of snap.events) {
      const h = readEventHeader(b);
      c.send(this.#encodedFor(s.parsed.topic, h.seq, b).frame(c.format, c.micros));
    }
  }

  unsubscribe(c: ClientConn, topic: string): boolean {
    const s = this.#subs.get(topic);
    if (!c.topics.delete(topic) || !s) return false;
    s.conns.delete(c);
    s.waiting.delete(c);
    if (s.conns.size === 0 && !s.lingerTimer) {
      // Keep the upstream subscription briefly: churning clients often come right back.
      s.lingerTimer = setTimeout(() => {
        if (s.conns.size > 0) return;
        this.#endFill(s);
        this.#subs.delete(topic);
        this.#upstream.unsubscribe(topic);
      }, this.#lingerMs);
      s.lingerTimer.unref();
    }
    return true;
  }

  /** Unbinds a connection from every topic: O(its topics). */
  removeConn(c: ClientConn): void {
    for (const t of [...c.topics]) this.unsubscribe(c, t);
  }

  /** After a slow client's queue was dropped: tell it per topic, then give it fresh snapshots. */
  resyncConn(c: ClientConn, reason: string): void {
    for (const t of c.topics) {
      const s = this.#subs.get(t);
      this.#notifyResync(c, t, reason);
      if (s) this.#sendSnapshot(c, s);
    }
  }

  /** An event from a push-server. */
  onEvent(bytes: Uint8Array): void {
    let h;
    try {
      h = readEventHeader(bytes);
    } catch (err) {
      this.#stats.count('bad_events');
      this.#log.warn('malformed event from server', { err: String(err) });
      return;
    }
    this.#stats.count('msgs_in');
    const s = this.#subs.get(h.topic);
    if (!s) return; // unsubscribed meanwhile
    const hist = s.history;
    // A diff stream's snapshot (partial depth is a whole state carried in the same message: an event like a ticker).
    if (h.payloadField === PAYLOAD_DEPTH_SNAPSHOT && s.parsed.kind === 'depth') {
      hist.setDepthSnapshot(h, bytes);
      // While a hole is being filled the diffs after the snapshot may not be here yet: it goes out once the fill ends.
      if (s.waiting.size > 0 && !s.fill) this.#sendWaitingSnapshots(s);
      return;
    }
    if (s.fill) {
      // Holes stay held until the server's history fills them (or the wait ends).
      if (h.epoch === hist.epoch && h.seq === hist.lastSeq + 1) {
        this.#accept(s, h, bytes);
        this.#releaseFilled(s);
      } else if (h.epoch > hist.epoch || h.seq > hist.lastSeq + 1) {
        if (!s.fill.hold({ h, bytes })) this.#giveUpFill(s, 'upstream_gap');
      } else this.#stats.count('duplicates');
      return;
    }
    if (hist.epoch !== 0 && h.epoch > hist.epoch) {
      this.#stats.count('epoch_changes');
      this.#announce(s, 'epoch_change');
    } else if (hist.lastSeq > 0 && h.epoch === hist.epoch && h.seq > hist.lastSeq + 1) {
      if (s.jumpAnnounced) s.jumpAnnounced = false;
      else return this.#startFill(s, { h, bytes });
    }
    this.#accept(s, h, bytes);
  }

  /** Records an event in order and fans it out (depth subscribers waiting for a snapshot skip it). */
  #accept(s: TopicSub, h: EventHeader, bytes: Uint8Array): void {
    if (!s.history.add(h, bytes)) {
      this.#stats.count('duplicates');
      return;
    }
    s.jumpAnnounced = false;
    if (s.conns.size === 0) return;
    this.arrival.recordNow(h.publishTimeUs);
    const ev = this.#encodedFor(h.topic, h.seq, bytes);
    const conflatable = isConflatable(h.topic);
    const waiting = s.waiting;
    const pt = h.publishTimeUs;
    const done = () => this.egress.handedOver(pt);
    if (waiting.size === 0) this.#fanout.push(s.conns, (c) => c.deliver(ev, conflatable), done);
    else this.#fanout.push(s.conns, (c) => waiting.has(c) || c.deliver(ev, conflatable), done);
  }

  /** A jump in seq: ask the server for what is missing (from its history), hold what came after. */
  #startFill(s: TopicSub, first?: HeldEvent): void {
    this.#stats.count('gap_fills');
    s.fill = new GapFill(() => this.#giveUpFill(s, 'upstream_gap'));
    if (first) s.fill.hold(first);
    this.#upstream.resubscribe(s.parsed.topic);
  }

  /** Hands over held events that now follow on; the fill ends once nothing is held. */
  #releaseFilled(s: TopicSub): void {
    const fill = s.fill!;
    for (let next = fill.peek(); next; next = fill.peek()) {
      if (next.h.epoch === s.history.epoch && next.h.seq > s.history.lastSeq + 1) return;
      fill.take();
      if (next.h.epoch > s.history.epoch) {
        // A new epoch: nothing of the old one can follow; announce and go on from the new one.
        s.fill = undefined;
        this.#stats.count('epoch_changes');
        this.#announce(s, 'epoch_change');
        this.#continueAfter(s, [next, ...fill.end()]);
        return;
      }
      this.#accept(s, next.h, next.bytes);
    }
    this.#stats.count('gaps_filled');
    this.#endFill(s);
  }

  /**
   * The hole cannot be filled: announce it, then go on from the held events
   * (the rest pass through onEvent again, so a second hole among them is
   * handled, never accepted silently). `lost`: the server said events are
   * gone, so it is announced even when nothing was held yet.
   */
  #giveUpFill(s: TopicSub, reason: string, lost = false): void {
    const fill = s.fill;
    if (!fill) return;
    s.fill = undefined;
    const held = fill.end();
    if (held.length === 0 && !lost) return; // nothing was missing after all
    this.#stats.count('gaps');
    this.#log.warn('sequence gap from upstream, not in the server\'s history: clients told', { topic: s.parsed.topic, after: s.history.lastSeq, got: held[0]?.h.seq ?? 0 });
    this.#announce(s, reason);
    this.#continueAfter(s, held);
    if (s.waiting.size > 0 && !s.fill) this.#sendWaitingSnapshots(s);
  }

  /** After an announcement: the first event is the new start, the rest are checked as usual. */
  #continueAfter(s: TopicSub, held: HeldEvent[]): void {
    const [first, ...rest] = held;
    if (!first) {
      s.jumpAnnounced = true; // the jump is still to come
      return;
    }
    this.#accept(s, first.h, first.bytes);
    for (const e of rest) this.onEvent(e.bytes);
  }

  #endFill(s: TopicSub): void {
    s.fill?.end();
    s.fill = undefined;
    if (s.waiting.size > 0) this.#sendWaitingSnapshots(s);
  }

  /**
   * Tells every subscriber of s, in order with the events (the notice comes
   * after everything sent before the hole and before the first event after
   * it). Depth subscribers then wait for a fresh snapshot: a book with a hole
   * is wrong. Ticker and kline events are whole states: the next one is the
   * fresh snapshot.
   */
  #announce(s: TopicSub, reason: string): void {
    const topic = s.parsed.topic;
    const lastSeq = s.history.lastSeq;
    if (s.parsed.kind === 'depth') {
      s.history.depthSnapshot = undefined;
      for (const c of s.conns) s.waiting.add(c);
    }
    this.#fanout.push(s.conns, (c) => this.#notifyResync(c, topic, reason, lastSeq));
  }

  /** A usable depth snapshot arrived: subscribers waiting for one get it, in order with the diffs. */
  #sendWaitingSnapshots(s: TopicSub): void {
    const snap = s.history.snapshot(s.parsed.kind);
    if (!snap.ready) return;
    // Built now, from the history as it is now: diffs queued before it are skipped (still waiting), later ones follow it.
    const events = snap.events.map((b) => this.#encodedFor(s.parsed.topic, readEventHeader(b).seq, b));
    const waiting = s.waiting;
    this.#fanout.push([...waiting], (c) => {
      if (!waiting.delete(c)) return;
      for (const ev of events) c.send(ev.frame(c.format, c.micros));
    });
  }

  /** A notice from a push-server about one topic. */
  onNotice(topic: string, kind: string, detail: string): void {
    const s = this.#subs.get(topic);
    if (!s) return;
    if (kind === 'resync') {
      // The server dropped what it had queued for this gateway: refill from its history.
      this.#stats.count('upstream_resyncs');
      this.#log.warn('server asked for a resync', { topic, detail });
      if (!s.fill) this.#startFill(s);
    } else if (kind === 'gap') {
      // Events are gone upstream (the server missed them, or its history no longer covers our position).
      this.#stats.count('upstream_gaps');
      this.#log.warn('server reports lost events', { topic, detail });
      if (s.fill) return this.#giveUpFill(s, 'upstream_gap', true);
      this.#stats.count('gaps');
      this.#announce(s, 'upstream_gap');
      s.jumpAnnounced = true;
    } else if (kind === 'unknown_topic') {
      this.#log.warn('server rejected a topic', { topic, detail });
    }
  }

  validate(raw: unknown): ParsedTopic | string {
    return parseTopic(raw);
  }

  stop(): void {
    for (const s of this.#subs.values()) {
      clearTimeout(s.lingerTimer);
      s.fill?.end();
      s.fill = undefined;
    }
    this.#subs.clear();
    this.egress.stop();
    this.arrival.stop();
  }
}
