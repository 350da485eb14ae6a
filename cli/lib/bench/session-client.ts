// One replayed client session: a real client connection — WebSocket (JSON or
// protobuf), raw TCP, gRPC or gRPC-web — that connects (through the router,
// like a real client), subscribes, unsubscribes, reconnects and closes on the
// captured schedule. An unplanned close or a refused connect is retried with
// jittered exponential back-off, again through the router. A connection that
// goes silent — no data, heartbeat or ping for the liveness timeout — is
// treated as closed: terminated, counted, and reconnected the same way.
import type { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { create, toBinary } from '@bufbuild/protobuf';
import { ClientFrameSchema } from '../../../proto/gen/client_pb.js';
import type { LivenessSubject, LivenessWatch } from './liveness.ts';
import { TopicTrack, type Meter } from './meter.ts';
import { protocolOf, type ClientProtocol, type SessionOp, type WireFormat } from './scenario.ts';
import { TcpConn } from './tcp-conn.ts';
import { GrpcConn } from './grpc-conn.ts';
import { GrpcWebConn } from './grpc-web-conn.ts';

/**
 * A non-WebSocket connection (TCP, gRPC, gRPC-web), shaped like the part of a
 * `ws` socket a session uses. Events: 'open'; 'message' (one ServerFrame);
 * 'heartbeat' (the gateway's heartbeat came, and was answered); 'refused'
 * (admission control said no before anything arrived: retried); 'close'
 * (code, once open); 'error' (before open); 'warning' (text: a failed
 * request on a live connection, counted as an error).
 */
export interface BenchConn extends EventEmitter {
  readonly readyState: number;
  request(kind: 'subscribe' | 'unsubscribe', id: number, topics: string[]): void;
  close(code?: number): void;
  terminate(): void;
}

const CONNS: Record<Exclude<ClientProtocol, 'ws'>, new (address: string, initialTopics: string[]) => BenchConn> = {
  tcp: TcpConn,
  grpc: GrpcConn,
  'grpc-web': GrpcWebConn,
};

export interface SessionEnv {
  meter: Meter;
  clockUs(): number;
  /**
   * Gateway addresses for the protocol, best first: router lookup, or the fixed
   * target. ws://… (ws), host:port (tcp, grpc), http://… (grpc-web).
   */
  gateways(protocol: ClientProtocol): Promise<string[]>;
  openDelta(d: number): void;
  stopped(): boolean;
  /** The agent's watchdog over open connections; absent: liveness is off. */
  liveness?: LivenessWatch;
}

const MAX_ATTEMPTS = 8;

export function backoffMs(attempt: number, rand = Math.random): number {
  // Full jitter: spreads a herd of reconnecting clients instead of syncing them.
  return Math.max(25, Math.floor(rand() * Math.min(5_000, 100 * 2 ** attempt)));
}

export class ReplaySession implements LivenessSubject {
  readonly key: string;
  /** An inbound frame of any kind since the watchdog last looked. */
  rx = false;
  readonly format: WireFormat;
  readonly streams = new Set<string>();
  #env: SessionEnv;
  #ws: WebSocket | BenchConn | undefined;
  #track = new TopicTrack();
  #reqId = 1;
  #closed = true;
  #wantOpen = false;
  #retry: NodeJS.Timeout | undefined;
  #generation = 0;

  constructor(key: string, format: WireFormat, env: SessionEnv) {
    this.key = key;
    this.format = format;
    this.#env = env;
  }

  apply(op: SessionOp): void {
    switch (op.ev) {
      case 'connect':
        for (const s of op.streams) this.streams.add(s);
        this.#wantOpen = true;
        if (this.#closed && !this.#retry) void this.#open(0, this.#env.clockUs());
        return;
      case 'subscribe':
        for (const s of op.streams) this.streams.add(s);
        this.#env.meter.counters.subscribes++;
        this.#track.subscribed(op.streams, this.#env.meter.nowUs());
        this.#request('subscribe', op.streams);
        return;
      case 'unsubscribe':
        for (const s of op.streams) {
          this.streams.delete(s);
          this.#track.forget(s);
        }
        this.#env.meter.counters.unsubscribes++;
        this.#request('unsubscribe', op.streams);
        return;
      case 'reconnect':
        this.#hangUp(1000);
        this.#wantOpen = true;
        void this.#open(0, this.#env.clockUs());
        return;
      case 'close':
        this.#wantOpen = false;
        this.#hangUp(op.code && op.code >= 1000 && op.code < 5000 && op.code !== 1005 && op.code !== 1006 ? op.code : 1000);
    }
  }

  /** End of run: hang up without counting anything. */
  stop(): void {
    this.#wantOpen = false;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#hangUp(1000, true);
  }

  /** Silent for the liveness timeout: the link is dead though no close came. A real client hangs up and reconnects. */
  livenessExpired(): void {
    const env = this.#env;
    if (this.#closed || !this.#ws) return;
    env.meter.counters.livenessTimeouts++;
    // Terminated: a goodbye would only wait on the dead link.
    this.#hangUp(1006, true);
    if (env.stopped() || !this.#wantOpen) return;
    env.meter.counters.unplannedCloses++;
    this.#scheduleRetry(0, env.clockUs(), 'liveness timeout', true);
  }

  #request(kind: 'subscribe' | 'unsubscribe', topics: string[]): void {
    const ws = this.#ws;
    // Not open yet (router lookup, handshake, the first reply): #connected sends what changed meanwhile.
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const id = this.#reqId++;
    if (!(ws instanceof WebSocket)) ws.request(kind, id, topics);
    else if (this.format === 'protobuf') {
      ws.send(toBinary(ClientFrameSchema, create(ClientFrameSchema, { id: BigInt(id), kind: { case: kind, value: { topics } } })));
    } else ws.send(JSON.stringify({ method: kind === 'subscribe' ? 'SUBSCRIBE' : 'UNSUBSCRIBE', params: topics, id }));
  }

  #hangUp(code: number, terminate = false): void {
    clearTimeout(this.#retry);
    this.#retry = undefined;
    const ws = this.#ws;
    this.#ws = undefined;
    this.#generation++;
    if (!ws) return;
    if (!this.#closed) {
      this.#closed = true;
      this.#env.openDelta(-1);
      this.#env.liveness?.delete(this);
    }
    ws.removeAllListeners();
    ws.on('error', () => {});
    if (terminate || ws.readyState !== WebSocket.OPEN) ws.terminate();
    else ws.close(code);
  }

  #path(streams: readonly string[]): string {
    return `/stream?streams=${streams.join('/')}${this.format === 'protobuf' ? '&format=protobuf' : ''}`;
  }

  #scheduleRetry(attempt: number, since: number, why: string, reconnect: boolean): void {
    if (this.#env.stopped() || !this.#wantOpen) return;
    if (attempt + 1 >= MAX_ATTEMPTS) {
      this.#env.meter.counters.connectFailures++;
      this.#env.meter.error(`${this.key}: gave up connecting after ${attempt + 1} attempts: ${why}`);
      return;
    }
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      void this.#open(attempt + 1, since, reconnect);
    }, backoffMs(attempt));
  }

  async #open(attempt: number, since: number, reconnect = false): Promise<void> {
    const gen = ++this.#generation;
    const env = this.#env;
    let urls: string[];
    try {
      urls = await env.gateways(protocolOf(this.format));
    } catch (err) {
      return this.#scheduleRetry(attempt, since, `gateway lookup: ${(err as Error).message}`, reconnect);
    }
    if (gen !== this.#generation || env.stopped() || !this.#wantOpen) return;
    if (!urls.length) return this.#scheduleRetry(attempt, since, 'router listed no gateway', reconnect);
    // Retries walk down the router's list: a gateway that just died can stay listed (until the
    // router's probe or the registry drops it), and a refusing one is full; the next is a live choice.
    const url = urls[attempt % urls.length]!;
    // The streams this connection asks for when it connects; requests made before it opens are reconciled then.
    const initial = [...this.streams];
    if (this.format !== 'json' && this.format !== 'protobuf') return this.#openConn(new CONNS[this.format](url, initial), initial, attempt, since, reconnect, gen);
    const ws = new WebSocket(`${url}${this.#path(initial)}`, { perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: 10_000 });
    this.#ws = ws;
    const track = new TopicTrack();
    track.subscribed(initial, env.meter.nowUs());
    this.#track = track;
    let opened = false;
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
      if (gen !== this.#generation) return;
      this.#ws = undefined;
      if (res.statusCode === 503) {
        env.meter.counters.rejected++;
        return this.#scheduleRetry(attempt, since, 'HTTP 503', reconnect);
      }
      env.meter.counters.connectFailures++;
      env.meter.error(`${this.key}: upgrade refused with HTTP ${res.statusCode}`);
    });
    ws.on('error', (err) => {
      if (opened || gen !== this.#generation) return;
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
      this.#ws = undefined;
      this.#scheduleRetry(attempt, since, err.message, reconnect);
    });
    ws.on('open', () => {
      if (gen !== this.#generation) return;
      opened = true;
      this.#connected(since, reconnect, initial);
    });
    const meter = env.meter;
    if (this.format === 'protobuf')
      ws.on('message', (d: Buffer) => {
        this.rx = true;
        meter.onProtobuf(d, track);
      });
    else
      ws.on('message', (d: Buffer) => {
        this.rx = true;
        meter.onJson(d, track);
      });
    // The gateway's heartbeat (ws answers it with a pong by itself).
    ws.on('ping', () => (this.rx = true));
    ws.on('close', (code) => {
      if (gen === this.#generation && opened) this.#disconnected(code);
    });
  }

  /**
   * The connection is up (any protocol): counted once, with its connect time.
   * Subscribes and unsubscribes applied while it was opening could not be sent
   * (and were not in `initial`, the streams it connected with): the difference
   * goes now, else a slow connect (a loaded agent, a gRPC channel's first
   * connect) silently loses them until the next reconnect.
   */
  #connected(since: number, reconnect: boolean, initial: readonly string[]): void {
    const env = this.#env;
    this.#closed = false;
    env.openDelta(1);
    env.meter.counters.connects++;
    if (reconnect) env.meter.counters.reconnects++;
    env.meter.connect.recordValue(Math.max(0, env.clockUs() - since));
    env.liveness?.add(this);
    const asked = new Set(initial);
    const dropped = initial.filter((s) => !this.streams.has(s));
    const added = [...this.streams].filter((s) => !asked.has(s));
    if (dropped.length) this.#request('unsubscribe', dropped);
    if (added.length) this.#request('subscribe', added);
  }

  /** An open connection ended (any protocol). */
  #disconnected(code: number): void {
    const env = this.#env;
    this.#ws = undefined;
    this.#closed = true;
    env.openDelta(-1);
    env.liveness?.delete(this);
    if (env.stopped() || !this.#wantOpen) return;
    env.meter.counters.unplannedCloses++;
    // 4002 draining / 1001 going away: a real client reconnects through the router with back-off.
    this.#scheduleRetry(0, env.clockUs(), `closed ${code}`, true);
  }

  /** TCP, gRPC and gRPC-web: one path, the protocol's differences stay in its BenchConn. */
  #openConn(conn: BenchConn, initial: readonly string[], attempt: number, since: number, reconnect: boolean, gen: number): void {
    const env = this.#env;
    this.#ws = conn;
    const track = new TopicTrack();
    track.subscribed(initial, env.meter.nowUs());
    this.#track = track;
    let opened = false;
    const drop = () => {
      conn.removeAllListeners();
      conn.on('error', () => {});
      conn.terminate();
      this.#ws = undefined;
    };
    conn.on('refused', () => {
      if (gen !== this.#generation) return;
      drop();
      env.meter.counters.rejected++;
      this.#scheduleRetry(attempt, since, 'refused (503)', reconnect);
    });
    conn.on('warning', (msg: string) => {
      if (gen === this.#generation) env.meter.error(`${this.key}: ${msg}`);
    });
    conn.on('error', (err: Error) => {
      if (opened || gen !== this.#generation) return;
      drop();
      this.#scheduleRetry(attempt, since, err.message, reconnect);
    });
    conn.on('open', () => {
      if (gen !== this.#generation) return;
      opened = true;
      this.#connected(since, reconnect, initial);
    });
    conn.on('message', (d: Buffer) => {
      this.rx = true;
      env.meter.onProtobuf(d, track);
    });
    conn.on('heartbeat', () => (this.rx = true));
    conn.on('close', (code: number) => {
      if (gen === this.#generation && opened) this.#disconnected(code);
    });
  }
}
