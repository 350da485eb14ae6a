// The gateway's subscription core, shared by every client protocol: topic →
// connections, the upstream subscription per topic (once per gateway, not
// per client), snapshots for new subscribers, gap detection, and the
// chunked fan-out of each event to its subscribers.
import { ChunkedFanout } from '../common/chunked-fanout.ts';
import { TopicHistory } from '../common/topic-history.ts';
import { readEventHeader, PAYLOAD_DEPTH_SNAPSHOT } from '../common/event-header.ts';
import { isConflatable, parseTopic, type ParsedTopic } from '../common/topics.ts';
import { EncodedEvent } from './codec.ts';
import { StageLatency } from './stage-latency.ts';
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
}

export interface Upstream {
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  resubscribe(topic: string): void;
}

export interface ResyncNotifier {
  (c: ClientConn, topic: string, reason: string): void;
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
      };
      this.#subs.set(topic, s);
      this.#upstream.subscribe(topic);
    }
    clearTimeout(s.lingerTimer);
    s.lingerTimer = undefined;
    s.conns.add(c);
    c.topics.add(topic);
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
      c.send(this.#encodedFor(s.parsed.topic, h.seq, b).frame(c.format));
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
    if (h.payloadField === PAYLOAD_DEPTH_SNAPSHOT) {
      hist.setDepthSnapshot(h, bytes);
      if (s.waiting.size > 0) {
        const waiting = [...s.waiting];
        s.waiting.clear();
        for (const c of waiting) this.#sendSnapshot(c, s);
      }
      return;
    }
    let broken = '';
    if (hist.epoch !== 0 && h.epoch > hist.epoch) {
      this.#stats.count('epoch_changes');
      broken = 'epoch_change';
    } else if (hist.lastSeq > 0 && h.seq > hist.lastSeq + 1) {
      // Upstream lost events this gateway cannot recover: clients are told, never silently skipped.
      this.#stats.count('gaps');
      this.#log.warn('sequence gap from upstream', { topic: h.topic, after: hist.lastSeq, got: h.seq });
      broken = 'upstream_gap';
    }
    if (broken) {
      for (const c of s.conns) this.#notifyResync(c, h.topic, broken);
      if (s.parsed.kind === 'depth') {
        // A book with a hole is wrong: everyone waits for the next snapshot.
        hist.depthSnapshot = undefined;
        for (const c of s.conns) s.waiting.add(c);
      }
    }
    if (!hist.add(h, bytes)) {
      this.#stats.count('duplicates');
      return;
    }
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

  /** A notice from a push-server about one topic. */
  onNotice(topic: string, kind: string, detail: string): void {
    const s = this.#subs.get(topic);
    if (!s) return;
    if (kind === 'resync') {
      this.#stats.count('upstream_resyncs');
      this.#log.warn('server asked for a resync', { topic, detail });
      this.#upstream.resubscribe(topic);
    } else if (kind === 'unknown_topic') {
      this.#log.warn('server rejected a topic', { topic, detail });
    }
  }

  validate(raw: unknown): ParsedTopic | string {
    return parseTopic(raw);
  }

  stop(): void {
    for (const s of this.#subs.values()) clearTimeout(s.lingerTimer);
    this.#subs.clear();
    this.egress.stop();
    this.arrival.stop();
  }
}
