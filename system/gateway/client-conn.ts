// One client connection's outbound side. Frames for a connection collect
// during a fan-out slice and go out in one write (one syscall, however many
// messages). A client that stops keeping up costs only itself:
//   live        → frames are written every slice;
//   backlogged  → the socket is backed up; frames wait, and state-like topics
//                 (ticker, kline) keep only their latest value (conflation);
//   resyncing   → the queue passed its byte cap: everything queued is dropped,
//                 and once the socket drains the client is told (resync
//                 notice per topic) and given fresh snapshots. A client that
//                 stays stuck past the grace period is disconnected.
// "Drained" only means the kernel took the bytes: loopback and long fat pipes
// buffer tens of MB, so a client that never reads still drains for a while.
// It counts as caught up only once it answers a heartbeat sent after it fell
// behind (the answer queues behind every byte sent before it).
// The same logic serves every protocol: bytes leave through a ClientTransport.
import type { ClientFormat, EncodedEvent } from './codec.ts';
import type { ClientTransport } from './transport.ts';
import type { Identity } from './auth.ts';
import { TokenBucket } from '../common/token-bucket.ts';

export type ConnState = 'live' | 'backlogged' | 'resyncing' | 'closed';

export interface ConnHooks {
  markDirty(c: ClientConn): void;
  /** The queue passed its cap and was dropped (the client is now resyncing). */
  overflowed(c: ClientConn): void;
  /** Called once the socket drained after an overflow: send notices and snapshots. */
  resync(c: ClientConn, reason: string): void;
  /** The connection ended (called once, from markClosed, before its abort signal fires). */
  closed?(c: ClientConn): void;
}

let nextId = 1;

export class ClientConn {
  readonly id = nextId++;
  readonly transport: ClientTransport;
  /** Mutable only between the JSON formats (Binance's SET_PROPERTY combined). */
  format: ClientFormat;
  /** JSON times in microseconds (Binance's `timeUnit=MICROSECOND` on the connect URL). */
  micros = false;
  readonly topics = new Set<string>();
  /**
   * Made when first asked for: an AbortController with its signal and event
   * table is ~250 bytes most idle connections never use (their owner is told
   * through hooks.closed).
   */
  #abort: AbortController | undefined;
  readonly limiter: TokenBucket;
  state: ConnState = 'live';
  /** Who the client proved to be (a JWT), if anyone; `expiresAt` is enforced while connected. */
  identity: Identity | undefined;
  readonly openedAt = Date.now();
  lastRx = this.openedAt;
  /** When the unanswered heartbeat was sent (0: none outstanding), and the last round trip. */
  pingSentAt = 0;
  lastRttMs = 0;
  violations = 0;
  overflowAt = 0;
  /**
   * When the client first passed its cap (0: it is keeping up). Unlike
   * overflowAt it survives a drain into kernel buffers: it is cleared only when
   * the client answers a heartbeat sent after it fell behind.
   */
  stuckSince = 0;
  /** Heartbeats sent and answered; the answer to heartbeat number `#proofPing` proves the client reads again. */
  #pingsSent = 0;
  #pingsAnswered = 0;
  #proofPing = 0;
  resyncs = 0;
  framesOut = 0;
  bytesOut = 0;
  /** Requests the client sent (subscribe, ping, ...), for per-protocol metrics. */
  requests = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** topic → index in #pending, while backlogged; made on the first backlog (most connections never have one). */
  #conflate: Map<string, number> | undefined;
  #capBytes: number;
  #hooks: ConnHooks;
  #waitingDrain = false;

  constructor(opts: {
    transport: ClientTransport;
    format: ClientFormat;
    capBytes: number;
    ratePerSec: number;
    burst: number;
    hooks: ConnHooks;
  }) {
    this.transport = opts.transport;
    this.format = opts.format;
    this.#capBytes = opts.capBytes;
    this.#hooks = opts.hooks;
    this.limiter = new TokenBucket(opts.ratePerSec, opts.burst);
  }

  /** The peer's address, for log lines (the transport builds it when first asked). */
  get remote(): string {
    return this.transport.remote;
  }

  /** Aborted when the connection ends (at once if it already has); whatever binds to it unbinds on this signal. */
  get abort(): AbortController {
    if (!this.#abort) {
      this.#abort = new AbortController();
      if (this.state === 'closed') this.#abort.abort();
    }
    return this.#abort;
  }

  get queuedBytes(): number {
    return this.#pendingBytes + this.transport.writableLength;
  }

  /** An event's frame in this client's format and time unit (built once per event for all alike). */
  frameOf(ev: EncodedEvent): Buffer {
    return ev.frame(this.format, this.micros);
  }

  /** Queues an event's frame for this client. */
  deliver(ev: EncodedEvent, conflatable: boolean): void {
    if (this.state === 'resyncing' || this.state === 'closed') return;
    const frame = this.frameOf(ev);
    if (this.state === 'backlogged' && conflatable) {
      const conflate = (this.#conflate ??= new Map());
      const i = conflate.get(ev.topic);
      if (i !== undefined) {
        this.#pendingBytes += frame.length - this.#pending[i]!.length;
        this.#pending[i] = frame;
        return;
      }
      conflate.set(ev.topic, this.#pending.length);
    }
    this.#push(frame);
  }

  /**
   * Queues a control frame (result, error, notice, snapshot) regardless of
   * backlog. These do not count against the cap: they are bounded by the
   * request rate limit and by topics × snapshot size, and counting them could
   * turn one resync into the next overflow.
   */
  send(frame: Buffer): void {
    if (this.state === 'closed') return;
    this.#push(frame, false);
  }

  #push(frame: Buffer, capped = true): void {
    if (this.#pending.length === 0) this.#hooks.markDirty(this);
    this.#pending.push(frame);
    this.#pendingBytes += frame.length;
    if (capped && this.#pendingBytes + this.transport.writableLength > this.#capBytes) this.#overflow();
  }

  #overflow(): void {
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#conflate?.clear();
    this.state = 'resyncing';
    this.resyncs++;
    this.overflowAt = Date.now();
    if (!this.stuckSince) {
      this.stuckSince = this.overflowAt;
      // Queued behind everything sent so far: its answer means the client read all of it.
      this.heartbeat(this.overflowAt);
      this.#proofPing = this.#pingsSent;
    }
    this.#hooks.overflowed(this);
    // Node emits 'drain' only after a write found the socket over its high-water mark.
    if (!this.transport.writableNeedDrain) queueMicrotask(() => this.#drained());
    else this.#awaitDrain();
  }

  #awaitDrain(): void {
    if (this.#waitingDrain) return;
    this.#waitingDrain = true;
    this.transport.onceDrain(() => {
      this.#waitingDrain = false;
      this.#drained();
    });
  }

  #drained(): void {
    if (this.state === 'closed') return;
    if (this.state === 'resyncing') {
      this.state = 'live';
      this.overflowAt = 0;
      this.#hooks.resync(this, 'slow_client');
    } else if (this.state === 'backlogged') {
      this.state = 'live';
    }
    this.flush();
  }

  /** A heartbeat of ours is still unanswered: the next pong answers it (an unsolicited one would not). */
  get awaitingPong(): boolean {
    return this.#pingsAnswered < this.#pingsSent;
  }

  /** Sends a heartbeat (WebSocket ping, or a heartbeat frame); the oldest unanswered one times the round trip. */
  heartbeat(now = Date.now()): void {
    if (this.state === 'closed') return;
    if (!this.pingSentAt) this.pingSentAt = now;
    this.#pingsSent++;
    this.transport.ping();
  }

  /**
   * The client answered a heartbeat: returns the round trip of the oldest
   * unanswered one (0 if none was outstanding). Answers arrive in order, so
   * once the heartbeat sent at the overflow is answered the client is no
   * longer stuck.
   */
  heartbeatAnswered(now = Date.now()): number {
    this.lastRx = now;
    // Unsolicited pings count for nothing beyond the heartbeats we sent.
    if (this.#pingsAnswered < this.#pingsSent) this.#pingsAnswered++;
    if (this.stuckSince && this.#pingsAnswered >= this.#proofPing) this.stuckSince = 0;
    if (!this.pingSentAt) return 0;
    this.lastRttMs = Math.max(1, now - this.pingSentAt);
    this.pingSentAt = 0;
    return this.lastRttMs;
  }

  /** Writes what is queued in one write, unless the socket is backed up. */
  flush(): void {
    if (this.state !== 'live' || this.#pending.length === 0) return;
    if (!this.transport.writable) return;
    const frames = this.#pending;
    this.#pending = [];
    this.#conflate?.clear();
    // One write per slice: copying ~200-byte frames into one buffer is cheaper
    // than Node's bookkeeping for many small corked writes.
    this.transport.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames, this.#pendingBytes));
    this.framesOut += frames.length;
    this.bytesOut += this.#pendingBytes;
    this.#pendingBytes = 0;
    // Past its high-water mark the client is behind: hold and conflate until 'drain'.
    // (Below it the socket never emits 'drain': waiting for one would hang.)
    if (this.transport.writableNeedDrain) {
      this.state = 'backlogged';
      this.#awaitDrain();
    }
  }

  close(code: number, reason: string): void {
    if (this.state === 'closed') return;
    // What is already queued (often the errors that explain the close) goes out before the close frame.
    this.flush();
    this.markClosed();
    this.transport.close(code, reason);
    // A client that never answers the close handshake is cut after a moment.
    setTimeout(() => this.transport.terminate(), 2_000).unref();
  }

  markClosed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#hooks.closed?.(this);
    this.#abort?.abort();
  }
}
