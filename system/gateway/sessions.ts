// Client sessions, whatever the protocol: admission, request handling
// (subscribe / unsubscribe / list / ping with their replies and errors),
// inbound rate limits, and heartbeats and slow-client deadlines on one timing
// wheel. Front ends (WebSocket in gateway.ts, tcp-api.ts, grpc-api.ts) only
// parse their wire format and hand over a ClientTransport.
import type { GatewayConfig } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import type { ProcessStats } from '../common/process-stats.ts';
import { TimingWheel } from '../common/timing-wheel.ts';
import { TokenBucket } from '../common/token-bucket.ts';
import { binanceStreamName, type ParsedTopic } from '../common/topics.ts';
import { ClientConn, type ConnHooks } from './client-conn.ts';
import { controlFrame, isProtobufFormat, type ClientFormat } from './codec.ts';
import type { Command, RequestError, RequestId } from './protocol.ts';
import type { SessionTap } from './session-tap.ts';
import type { TopicHub } from './topic-hub.ts';
import type { ClientTransport } from './transport.ts';
import type { Authenticator, Identity } from './auth.ts';
import { ORDERS_TOPIC, type OrderStreams } from './orders.ts';

export class Sessions {
  readonly conns = new Set<ClientConn>();
  #config: GatewayConfig;
  #hub: TopicHub;
  #stats: ProcessStats;
  #log: Logger;
  #tap: SessionTap;
  #symbols: () => ReadonlySet<string>;
  #accept: TokenBucket;
  #wheel: TimingWheel<ClientConn>;
  #auth: Authenticator;
  #orders: OrderStreams | undefined;
  #onClose: ((c: ClientConn) => void) | undefined;
  /** One hooks object for every connection (not three closures each). */
  #hooks: ConnHooks = {
    markDirty: (x) => this.#hub.markDirty(x),
    overflowed: (x) => {
      this.#stats.count('overflows');
      this.#scheduleCheck(x); // the grace deadline, checked by the wheel
    },
    resync: (x, reason) => {
      this.#stats.count('resyncs');
      this.#scheduleCheck(x); // keeps the grace deadline: a drain into kernel buffers is not a client that reads
      this.#hub.resyncConn(x, reason);
    },
    closed: (c) => {
      this.conns.delete(c);
      this.#wheel.cancel(c);
      this.#hub.removeConn(c);
      this.#tap.emit({ ev: 'close', s: String(c.id) });
      this.#onClose?.(c);
    },
  };
  /** Requests that arrive while a token is being checked wait behind it, in order. */
  #serial = new WeakMap<ClientConn, Promise<void>>();

  constructor(o: {
    config: GatewayConfig;
    hub: TopicHub;
    stats: ProcessStats;
    log: Logger;
    tap: SessionTap;
    symbols: () => ReadonlySet<string>;
    auth: Authenticator;
    orders?: OrderStreams;
    /** A connection ended (its final counts are read here, e.g. by the gateway's metrics). */
    onClose?: (c: ClientConn) => void;
  }) {
    this.#config = o.config;
    this.#hub = o.hub;
    this.#stats = o.stats;
    this.#log = o.log;
    this.#tap = o.tap;
    this.#symbols = o.symbols;
    this.#auth = o.auth;
    this.#orders = o.orders;
    this.#onClose = o.onClose;
    this.#accept = new TokenBucket(o.config.acceptRate, o.config.acceptRate);
    this.#wheel = new TimingWheel<ClientConn>({
      tickMs: Math.max(10, Math.min(1_000, Math.floor(o.config.pingIntervalMs / 4))),
      slots: 256,
      onExpire: (c) => this.#check(c),
    });
    this.#wheel.start();
  }

  /** Live config: the admission rate (and its burst, one second's worth) from now on. */
  setAcceptRate(perSec: number): void {
    this.#config.acceptRate = perSec;
    this.#accept.setRate(perSec, perSec);
  }

  /** Why a new client must be turned away right now (full, or past the admission rate), or undefined. */
  admit(): string | undefined {
    if (this.conns.size >= this.#config.maxConnections) return 'gateway full: ask the router for another gateway';
    // Reconnect storms: admit at a bounded rate; callers send a jittered retry hint.
    if (!this.#accept.take()) return 'too many new connections right now: retry shortly';
    return undefined;
  }

  /** Parses and checks topics; the whole request fails if any is bad (nothing half-applied). */
  checkTopics(raw: readonly string[]): ParsedTopic[] | string {
    const out: ParsedTopic[] = [];
    const seen = new Set<string>();
    const symbols = this.#symbols();
    for (const r of raw) {
      const p = this.#hub.validate(r);
      if (typeof p === 'string') return `Invalid request: ${p}`;
      // Before the first symbol list nothing is known: refuse rather than accept any name.
      if (symbols.size === 0) return 'Invalid request: the symbol list is not known yet, retry shortly';
      if (!p.allMarket && !symbols.has(p.symbol)) return `Invalid request: unknown symbol "${p.symbol}" in stream "${r}"`;
      // A name given twice (or in another case) is one stream, as Binance counts them.
      if (seen.has(p.topic)) continue;
      seen.add(p.topic);
      out.push(p);
    }
    if (out.length > this.#config.maxStreamsPerConnection) return `Too many streams: at most ${this.#config.maxStreamsPerConnection} per connection`;
    return out;
  }

  /** A client admitted by its front end: binds it, subscribes its initial topics, starts its heartbeat. */
  open(transport: ClientTransport, format: ClientFormat, initial: ParsedTopic[] = [], identity?: Identity, micros = false): ClientConn {
    const config = this.#config;
    const c = new ClientConn({
      transport,
      format,
      capBytes: config.sendQueueBytes,
      ratePerSec: config.inboundRatePerSec,
      burst: config.inboundBurst,
      hooks: this.#hooks,
    });
    c.identity = identity;
    c.micros = micros;
    this.conns.add(c);
    this.#stats.count('connections_opened');
    this.#tap.emit({ ev: 'connect', s: String(c.id), format: format === 'raw' || format === 'combined' ? 'json' : format, streams: initial.map((t) => t.topic) });
    this.#scheduleCheck(c);
    if (initial.length) this.#subscribe(c, null, initial, true);
    return c;
  }

  /**
   * The answer to our heartbeat (a WebSocket pong, or a Ping frame on TCP and
   * gRPC). Its round trip is how far behind the client is reading: the
   * heartbeat waited behind every byte still queued for it.
   */
  heartbeatAnswered(c: ClientConn): void {
    const rtt = c.heartbeatAnswered();
    if (rtt > this.#config.maxClientLagMs && c.state !== 'closed') {
      this.#stats.count('lag_disconnects');
      this.#log.info('disconnecting a client that reads too far behind', { conn: c.id, remote: c.remote, lagMs: c.lastRttMs });
      c.close(4001, `slow consumer: ${c.lastRttMs} ms behind`);
    }
  }

  /**
   * A WebSocket ping (or unsolicited pong) frame from the client: Binance
   * counts these against the same inbound message limit as requests. Over it,
   * nothing is answered in words (there is no request to answer) but it is a violation.
   */
  controlFrame(c: ClientConn): void {
    c.lastRx = Date.now();
    if (!c.limiter.take()) this.#violation(c);
  }

  /** Past the inbound limit: true when the client was closed for flooding. */
  #violation(c: ClientConn): boolean {
    c.violations++;
    this.#stats.count('rate_limited');
    if (c.violations <= this.#config.inboundViolationsToClose) return false;
    this.#log.info('closing a client that keeps flooding', { conn: c.id, remote: c.remote });
    c.close(1008, 'too many requests');
    return true;
  }

  /** One inbound request. `parse` runs only once the rate limit let it through, so a flood costs no parsing. */
  receive(c: ClientConn, parse: () => Command | RequestError): void {
    c.lastRx = Date.now();
    c.requests++;
    this.#stats.count('requests');
    if (!c.limiter.take()) {
      if (this.#violation(c)) return;
      return this.#error(c, { id: null, code: 5, msg: `Too many requests: at most ${this.#config.inboundRatePerSec} messages per second` });
    }
    const cmd = parse();
    const before = this.#serial.get(c);
    if (before) {
      const next = before.then(() => this.#handle(c, cmd));
      this.#serial.set(c, next);
      void next.finally(() => this.#serial.get(c) === next && this.#serial.delete(c));
      return;
    }
    const running = this.#handle(c, cmd);
    if (running instanceof Promise) {
      this.#serial.set(c, running);
      void running.finally(() => this.#serial.get(c) === running && this.#serial.delete(c));
    }
  }

  /** Checks a token presented when connecting: the identity, or why the connection must be refused. */
  async verifyAtConnect(token: string | undefined): Promise<Identity | string | undefined> {
    if (!token) return this.#config.requireAuth ? 'Unauthorized: this gateway requires a token' : undefined;
    const id = await this.#auth.verify(token);
    if (typeof id === 'string') this.#stats.count('auth_failures');
    return id;
  }

  /** Checks a token for c (an AUTH request): sets its identity, or says why not. */
  async authenticate(c: ClientConn, token: string | undefined): Promise<string | undefined> {
    const id = await this.#auth.verify(token);
    if (typeof id === 'string') {
      this.#stats.count('auth_failures');
      return id;
    }
    if (c.identity && c.identity.user !== id.user) return 'Unauthorized: a connection cannot change user';
    c.identity = id;
    this.#scheduleCheck(c);
    return undefined;
  }

  /** The next visit: the next heartbeat, or sooner the token's expiry or the end of a stuck client's grace. */
  #scheduleCheck(c: ClientConn): void {
    const now = Date.now();
    const untilExpiry = c.identity ? c.identity.expiresAt - now : Infinity;
    const untilGraceEnds = c.stuckSince ? c.stuckSince + this.#config.slowClientGraceMs - now : Infinity;
    const life = this.#config.maxConnectionLifeMs ?? 0;
    const untilLifeEnds = life > 0 ? c.openedAt + life - now : Infinity;
    this.#wheel.schedule(c, Math.max(1, Math.min(this.#config.pingIntervalMs, untilExpiry, untilGraceEnds, untilLifeEnds)));
  }

  #authorized(c: ClientConn): string | undefined {
    if (!c.identity) return 'Unauthorized: the orders channel needs a valid token (AUTH request, Authorization header or ?token=)';
    if (c.identity.expiresAt <= Date.now()) return 'Unauthorized: the token has expired';
    return undefined;
  }

  /** Returns a promise only for requests that finish later (token checks, order stream binds). */
  #handle(c: ClientConn, cmd: Command | RequestError): Promise<void> | void {
    if (c.state === 'closed') return;
    switch (cmd.kind) {
      case 'error':
        return this.#error(c, cmd);
      case 'auth':
        return this.authenticate(c, cmd.token).then((err) => (err ? this.#error(c, { id: cmd.id, code: 7, msg: err }) : this.#reply(c, cmd.id, null)));
      case 'ack': {
        const denied = this.#authorized(c);
        if (denied) return this.#error(c, { id: cmd.id, code: 7, msg: denied });
        if (!this.#orders) return this.#reply(c, cmd.id, null);
        return this.#orders.ack(c, c.identity!.user, cmd.upTo).then((refused) => (refused ? this.#error(c, { id: cmd.id, code: 2, msg: refused }) : this.#reply(c, cmd.id, null)));
      }
      case 'subscribe': {
        const wantsOrders = cmd.topics.some((t) => t.toLowerCase() === ORDERS_TOPIC);
        const market = cmd.topics.filter((t) => t.toLowerCase() !== ORDERS_TOPIC);
        if (wantsOrders || this.#config.requireAuth) {
          const denied = this.#authorized(c);
          if (denied) return this.#error(c, { id: cmd.id, code: 7, msg: denied });
          if (wantsOrders && !this.#orders) return this.#error(c, { id: cmd.id, code: 2, msg: 'Invalid request: private order streams need NATS JetStream, which this gateway has not got' });
        }
        const topics = this.checkTopics(market);
        if (typeof topics === 'string') return this.#error(c, { id: cmd.id, code: topics.startsWith('Too many') ? 4 : 2, msg: topics });
        if (wantsOrders) {
          return this.#orders!.bind(c, c.identity!.user, cmd.ordersAfter).then(
            () => {
              c.topics.add(ORDERS_TOPIC);
              this.#subscribeChecked(c, cmd.id, topics);
            },
            (err: unknown) => this.#error(c, { id: cmd.id, code: 2, msg: `Invalid request: the order stream could not start (${(err as Error).message})` }),
          );
        }
        return this.#subscribeChecked(c, cmd.id, topics);
      }

      case 'unsubscribe': {
        if (cmd.topics.some((t) => t.toLowerCase() === ORDERS_TOPIC)) {
          this.#orders?.unbind(c);
          c.topics.delete(ORDERS_TOPIC);
        }
        const topics = this.checkTopics(cmd.topics.filter((t) => t.toLowerCase() !== ORDERS_TOPIC));
        if (typeof topics === 'string') return this.#error(c, { id: cmd.id, code: 2, msg: topics });
        for (const t of topics) this.#hub.unsubscribe(c, t.topic);
        this.#tap.emit({ ev: 'unsubscribe', s: String(c.id), streams: cmd.topics });
        return this.#reply(c, cmd.id, null);
      }
      case 'list':
        // JSON clients get Binance's spelling (btcusdt@aggTrade); protobuf ones the topics their events carry.
        return this.#reply(c, cmd.id, isProtobufFormat(c.format) ? [...c.topics] : [...c.topics].map(binanceStreamName));
      case 'getProperty':
        if (isProtobufFormat(c.format)) return this.#error(c, { id: cmd.id, code: 2, msg: 'Invalid request: "combined" is a property of JSON connections' });
        return this.#reply(c, cmd.id, c.format === 'combined');
      case 'setProperty':
        // Events already queued keep the shape they were framed in; the next ones take the new one.
        if (isProtobufFormat(c.format)) return this.#error(c, { id: cmd.id, code: 2, msg: 'Invalid request: "combined" is a property of JSON connections' });
        c.format = cmd.value ? 'combined' : 'raw';
        return this.#reply(c, cmd.id, null);
      case 'ping':
        this.heartbeatAnswered(c);
        return c.send(controlFrame(c.format, { pong: Date.now() }, { case: 'pong', value: { clientTimeUs: BigInt(cmd.clientTimeUs), serverTimeUs: BigInt(Date.now() * 1000) } }));
    }
  }

  #subscribeChecked(c: ClientConn, id: RequestId, topics: ParsedTopic[]): void {
    const err = this.#subscribe(c, id, topics);
    if (err) return this.#error(c, { id, code: 4, msg: err });
    this.#tap.emit({ ev: 'subscribe', s: String(c.id), streams: [...topics.map((t) => t.topic), ...(c.topics.has(ORDERS_TOPIC) ? [ORDERS_TOPIC] : [])] });
  }

  #subscribe(c: ClientConn, id: RequestId, topics: ParsedTopic[], silent = false): string | undefined {
    const fresh = new Set(topics.filter((t) => !c.topics.has(t.topic)).map((t) => t.topic));
    if (c.topics.size + fresh.size > this.#config.maxStreamsPerConnection) {
      return `Too many streams: at most ${this.#config.maxStreamsPerConnection} per connection`;
    }
    if (!silent) this.#reply(c, id, null);
    for (const t of topics) this.#hub.subscribe(c, t);
    return undefined;
  }

  #reply(c: ClientConn, id: RequestId, result: string[] | boolean | null): void {
    c.send(controlFrame(c.format, { result, id }, { case: 'result', value: { id: typeof id === 'number' ? BigInt(id) : 0n, topics: Array.isArray(result) ? result : [] } }));
  }

  #error(c: ClientConn, e: Omit<RequestError, 'kind'>): void {
    this.#stats.count('request_errors');
    c.send(controlFrame(c.format, { error: { code: e.code, msg: e.msg }, id: e.id }, { case: 'error', value: { id: typeof e.id === 'number' ? BigInt(e.id) : 0n, code: e.code, msg: e.msg } }));
  }

  /** The wheel's visit to one connection: slow-client deadline, idle timeout, or the next ping. */
  #check(c: ClientConn): void {
    if (c.state === 'closed') return;
    const now = Date.now();
    if (c.stuckSince && now - c.stuckSince >= this.#config.slowClientGraceMs) {
      this.#stats.count('slow_disconnects');
      this.#log.info('disconnecting a client that could not keep up', { conn: c.id, remote: c.remote });
      c.close(4001, 'slow consumer: could not keep up');
      return;
    }
    if (c.identity && now >= c.identity.expiresAt) {
      this.#stats.count('auth_expired');
      this.#error(c, { id: null, code: 7, msg: 'Unauthorized: the token has expired' });
      c.close(4003, 'token expired');
      return;
    }
    // Binance's 24 h connection life, when configured: the client reconnects, as it must there.
    const life = this.#config.maxConnectionLifeMs ?? 0;
    if (life > 0 && now - c.openedAt >= life) {
      this.#stats.count('life_closes');
      c.close(1001, 'connection life limit reached: reconnect');
      return;
    }
    if (now - c.lastRx >= this.#config.pongTimeoutMs) {
      this.#stats.count('idle_timeouts');
      c.markClosed();
      c.transport.terminate();
      return;
    }
    c.heartbeat(now); // a round trip is measured from the oldest unanswered heartbeat
    this.#scheduleCheck(c);
  }

  /** Closes every client (gateway stopping). */
  closeAll(code: number, reason: string): void {
    this.#wheel.stop();
    for (const c of [...this.conns]) c.close(code, reason);
  }
}
