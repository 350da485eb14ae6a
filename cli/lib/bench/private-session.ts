// An agent's private order-stream sessions (a scenario's `private:`): each a
// WebSocket JSON connection with its user's JWT (found through the router),
// subscribed to `orders`, acking every `ackEvery` events with an id so the
// gateway's reply times the ack round trip. Order latency = receive time −
// the engine's event time the event carries (`T`, ms); events the bus stored
// (`pt`) before the connection subscribed are catch-up, not samples. Per connection the
// seqs must rise; a seq at or below the last one is a duplicate. Loss is
// found at the end against the union of what the agent's connections of the
// same user received (every connection of a user gets the same stream).
import WebSocket from 'ws';
import type { Histogram } from 'hdr-histogram-js';
import type { LivenessSubject } from './liveness.ts';
import { newHistogram } from './meter.ts';
import { backoffMs, type SessionEnv } from './session-client.ts';
import { privateShare, type PrivatePlan } from './private-spec.ts';

/** A private session runs in the same agent environment as a replayed one. */
export type PrivateEnv = SessionEnv;

/** What an agent's private sessions measured, in its final result (times on the controller's clock). */
export interface PrivateAgentResult {
  connections: number;
  opened: number;
  /** Connections whose SUBSCRIBE was answered (at least once), and SUBSCRIBEs refused (each retried). */
  subscribed: number;
  subscribeRefusals: number;
  /** First connect attempt and last first-time open, µs. */
  firstAttemptUs: number;
  lastOpenUs: number;
  orders: number;
  /** Events from before the connection subscribed (resumed from `after`): counted, not latency samples. */
  catchup: number;
  duplicates: number;
  /** Events missing from a connection's window that another connection of its user received. */
  gaps: number;
  acksSent: number;
  ackReplies: number;
  /** Encoded HDR histograms, µs: ack round trips; receive − the bus's store time (pt) of the sampled events. */
  ack: string;
  bus: string;
  /** Per user: events (union), and that user's duplicates and gaps. */
  perUser: Record<string, { events: number; duplicates: number; gaps: number }>;
}

const SEQ = Buffer.from('"seq":');
const T = Buffer.from('"T":');
const PT = Buffer.from('"pt":');
const ORDER_EVENT = [Buffer.from('{"e":"executionReport"'), Buffer.from('{"e":"balanceUpdate"')];
const RESULT = Buffer.from('{"result"');
const ID = Buffer.from('"id":');
const ERROR = Buffer.from('{"error"');
const MAX_ATTEMPTS = 8;

function numberAt(buf: Buffer, at: number): number {
  if (at < 0) return -1;
  let v = 0;
  let digits = 0;
  for (let i = at; i < buf.length; i++) {
    const c = buf[i]!;
    if (c < 48 || c > 57) break;
    v = v * 10 + (c - 48);
    digits++;
  }
  return digits ? v : -1;
}

/** The number after the last occurrence of key (-1: none). */
const numberAfter = (buf: Buffer, key: Buffer): number => {
  const at = buf.lastIndexOf(key);
  return at < 0 ? -1 : numberAt(buf, at + key.length);
};

const startsWith = (buf: Buffer, p: Buffer) => buf.length >= p.length && buf.compare(p, 0, p.length, 0, p.length) === 0;

/** One user's events as this agent saw them: the union of seqs, and the windows of its connections. */
class UserBook {
  readonly seqs = new Set<number>();
  /** Newest seq any connection of this user received: a new connection resumes after it. */
  newest = 0;
  duplicates = 0;
}

class PrivateSession implements LivenessSubject {
  rx = false;
  first = -1;
  last = -1;
  received = 0;
  #ws: WebSocket | undefined;
  #subscribedMs = 0;
  #ackId = 100;
  /** `received` at the last ACK, and when it went (µs). */
  #ackedAt = 0;
  #ackSentUs = 0;
  #pending = new Map<number, number>();
  #retry: NodeJS.Timeout | undefined;
  #everOpen = false;
  #everSubscribed = false;
  #subAttempts = 0;
  readonly key: string;
  readonly user: string;
  readonly run: PrivateRun;
  constructor(key: string, user: string, run: PrivateRun) {
    this.key = key;
    this.user = user;
    this.run = run;
  }

  async open(attempt = 0, reconnect = false): Promise<void> {
    const { env, plan } = this.run;
    if (env.stopped()) return;
    const since = env.clockUs();
    this.run.attempted(env.meter.nowUs());
    let url: string | undefined;
    try {
      const urls = await env.gateways('ws');
      url = urls[attempt % Math.max(1, urls.length)];
    } catch (err) {
      return this.#again(attempt, `gateway lookup: ${(err as Error).message}`, reconnect);
    }
    if (!url) return this.#again(attempt, 'router listed no gateway', reconnect);
    if (env.stopped()) return;
    const ws = new WebSocket(`${url}/ws?token=${plan.tokens[this.user]}`, { perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: 10_000 });
    this.#ws = ws;
    let opened = false;
    await new Promise<void>((settle) => {
      ws.on('unexpected-response', (_req, res) => {
        res.resume();
        ws.removeAllListeners();
        ws.on('error', () => {});
        ws.terminate();
        this.#ws = undefined;
        settle();
        if (res.statusCode === 503) {
          env.meter.counters.rejected++;
          return this.#again(attempt, 'HTTP 503', reconnect);
        }
        env.meter.counters.connectFailures++;
        env.meter.error(`${this.key}: upgrade refused with HTTP ${res.statusCode}`);
      });
      ws.on('error', (err) => {
        if (opened) return;
        ws.removeAllListeners();
        ws.on('error', () => {});
        ws.terminate();
        this.#ws = undefined;
        settle();
        this.#again(attempt, err.message, reconnect);
      });
      ws.on('open', () => {
        opened = true;
        settle();
        this.#connected(ws, since, reconnect);
      });
    });
  }

  #again(attempt: number, why: string, reconnect: boolean): void {
    const { env } = this.run;
    if (env.stopped()) return;
    if (attempt + 1 >= MAX_ATTEMPTS) {
      env.meter.counters.connectFailures++;
      env.meter.error(`${this.key}: gave up connecting after ${attempt + 1} attempts: ${why}`);
      return;
    }
    this.#retry = setTimeout(() => void this.open(attempt + 1, reconnect), backoffMs(attempt));
  }

  #connected(ws: WebSocket, since: number, reconnect: boolean): void {
    const { env } = this.run;
    const m = env.meter;
    m.counters.connects++;
    if (reconnect) m.counters.reconnects++;
    m.connect.recordValue(Math.max(0, env.clockUs() - since));
    env.openDelta(1);
    env.liveness?.add(this);
    if (!this.#everOpen) this.run.opened(m.nowUs());
    this.#everOpen = true;
    const book = this.run.book(this.user);
    this.#subAttempts = 0;
    this.#subscribe(ws, book);
    ws.on('message', (d: Buffer) => this.#frame(ws, d, book));
    ws.on('ping', () => (this.rx = true));
    ws.on('close', () => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      env.openDelta(-1);
      env.liveness?.delete(this);
      this.#pending.clear();
      if (env.stopped()) return;
      m.counters.unplannedCloses++;
      this.#again(0, 'closed', true);
    });
  }

  /** Resumes right after what this connection has, else after the newest its user's connections have seen. */
  #subscribe(ws: WebSocket, book: UserBook): void {
    if (ws.readyState !== WebSocket.OPEN || this.#ws !== ws) return;
    const m = this.run.env.meter;
    const after = this.last >= 0 ? this.last : Math.max(this.run.plan.after, book.newest);
    this.#subscribedMs = m.nowUs() / 1000;
    this.#subAttempts++;
    ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['orders'], id: 1, after }));
    m.counters.subscribes++;
  }

  #frame(ws: WebSocket, d: Buffer, book: UserBook): void {
    this.rx = true;
    const m = this.run.env.meter;
    if (ORDER_EVENT.some((p) => startsWith(d, p))) {
      const seq = numberAfter(d, SEQ);
      const at = d.indexOf(T);
      const eventMs = at < 0 ? -1 : numberAt(d, at + T.length);
      // Stored on the bus (pt, µs) before this connection subscribed: resumed history, not a latency sample.
      const storedUs = numberAfter(d, PT);
      const c = m.counters;
      c.msgs++;
      c.bytes += d.length;
      if (seq <= this.last) {
        c.outOfOrder++;
        book.duplicates++;
        return;
      }
      if (this.first < 0) this.first = seq;
      this.last = seq;
      this.received++;
      book.seqs.add(seq);
      if (seq > book.newest) book.newest = seq;
      if (eventMs > 0) {
        const nowMs = m.nowUs() / 1000;
        if (storedUs > 0 && storedUs < this.#subscribedMs * 1000) {
          c.catchup++;
          this.run.catchup++;
        } else {
          let lat = Math.round((nowMs - eventMs) * 1000);
          if (lat < 0) {
            c.negative++;
            lat = 0;
          }
          m.latency.recordValue(lat);
          // The push system's own part: from the bus storing the event (pt, µs) to this client.
          if (storedUs > 0) this.run.bus.recordValue(Math.max(0, m.nowUs() - storedUs));
        }
      }
      const { ackEvery, ackIntervalMs } = this.run.plan;
      const now = m.nowUs();
      if (this.received - this.#ackedAt >= ackEvery && now - this.#ackSentUs >= ackIntervalMs * 1000 && ws.readyState === WebSocket.OPEN) {
        const id = ++this.#ackId;
        this.#ackedAt = this.received;
        this.#ackSentUs = now;
        this.#pending.set(id, now);
        this.run.acksSent++;
        ws.send(`{"method":"ACK","params":[${seq}],"id":${id}}`);
      }
      return;
    }
    if (startsWith(d, RESULT)) {
      const id = numberAfter(d, ID);
      if (id === 1 && !this.#everSubscribed) {
        this.#everSubscribed = true;
        this.run.subscribedCount++;
      }
      const sent = this.#pending.get(id);
      if (sent !== undefined) {
        this.#pending.delete(id);
        this.run.ackReplies++;
        this.run.ack.recordValue(Math.max(0, m.nowUs() - sent));
      }
      return;
    }
    if (startsWith(d, ERROR)) {
      m.error(`${this.key}: server error: ${d.toString('utf8', 0, 200)}`);
      // The SUBSCRIBE refused (e.g. the gateway's JetStream consumer did not start in time): retried, as a client would.
      if (numberAfter(d, ID) === 1) {
        this.run.subscribeRefusals++;
        if (this.#subAttempts < MAX_ATTEMPTS) this.#retry = setTimeout(() => this.#subscribe(ws, book), backoffMs(this.#subAttempts));
      }
    }
  }

  livenessExpired(): void {
    this.run.env.meter.counters.livenessTimeouts++;
    this.#ws?.terminate();
  }

  stop(): void {
    clearTimeout(this.#retry);
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws) {
      this.run.env.openDelta(-1);
      this.run.env.liveness?.delete(this);
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
    }
  }
}

/** An agent's share of the private connections, connected `concurrency` at a time. */
export class PrivateRun {
  readonly sessions: PrivateSession[];
  readonly ack: Histogram = newHistogram();
  readonly bus: Histogram = newHistogram();
  acksSent = 0;
  ackReplies = 0;
  catchup = 0;
  subscribedCount = 0;
  subscribeRefusals = 0;
  #books = new Map<string, UserBook>();
  #firstAttemptUs = 0;
  #lastOpenUs = 0;
  #opened = 0;

  readonly plan: PrivatePlan;
  readonly env: PrivateEnv;

  constructor(plan: PrivatePlan, index: number, agents: number, env: PrivateEnv) {
    this.plan = plan;
    this.env = env;
    this.sessions = privateShare(plan, index, agents).map((s) => new PrivateSession(s.key, s.user, this));
  }

  book(user: string): UserBook {
    let b = this.#books.get(user);
    if (!b) this.#books.set(user, (b = new UserBook()));
    return b;
  }

  attempted(us: number): void {
    if (!this.#firstAttemptUs) this.#firstAttemptUs = us;
  }

  opened(us: number): void {
    this.#opened++;
    this.#lastOpenUs = Math.max(this.#lastOpenUs, us);
  }

  /** Connects every session, at most `concurrency` attempts in flight (bounded: each session connects once here). */
  async start(): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < this.sessions.length && !this.env.stopped()) await this.sessions[next++]!.open();
    };
    await Promise.all(Array.from({ length: Math.min(this.plan.concurrency, this.sessions.length) }, worker));
  }

  stop(): void {
    for (const s of this.sessions) s.stop();
  }

  /** Loss per connection: the user's events inside its [first, last] window it did not get. */
  result(encode: (h: Histogram) => string): PrivateAgentResult {
    const perUser: PrivateAgentResult['perUser'] = {};
    let gaps = 0;
    let orders = 0;
    const sorted = new Map<string, number[]>();
    for (const [user, b] of this.#books) {
      sorted.set(user, [...b.seqs].sort((x, y) => x - y));
      perUser[user] = { events: b.seqs.size, duplicates: b.duplicates, gaps: 0 };
    }
    for (const s of this.sessions) {
      orders += s.received;
      if (s.first < 0) continue;
      const all = sorted.get(s.user)!;
      const missing = upperBound(all, s.last) - lowerBound(all, s.first) - s.received;
      if (missing > 0) {
        gaps += missing;
        perUser[s.user]!.gaps += missing;
      }
    }
    return {
      connections: this.sessions.length, opened: this.#opened, subscribed: this.subscribedCount, subscribeRefusals: this.subscribeRefusals, firstAttemptUs: this.#firstAttemptUs, lastOpenUs: this.#lastOpenUs,
      orders, catchup: this.catchup, duplicates: [...this.#books.values()].reduce((n, b) => n + b.duplicates, 0), gaps,
      acksSent: this.acksSent, ackReplies: this.ackReplies, ack: encode(this.ack), bus: encode(this.bus), perUser,
    };
  }
}

function lowerBound(a: number[], v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const upperBound = (a: number[], v: number) => lowerBound(a, v + 1);
