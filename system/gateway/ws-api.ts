// Binance's WebSocket API (`/ws-api/v3`, binance-spot-api-docs
// web-socket-api.md), the part a client needs for its user data — what
// ccxt's binance watchOrders / watchBalance use for spot:
//   ping, time, session.logon / status / logout / subscriptions,
//   userDataStream.subscribe (after session.logon),
//   userDataStream.subscribe.signature, userDataStream.unsubscribe.
// Requests `{id, method, params}`; answers `{id, status, result, rateLimits}`
// or `{id, status, error:{code,msg}, rateLimits}`; events
// `{"subscriptionId":N,"event":{…}}` with the listenKey streams' payloads
// (user-data-events.ts). Any other method is answered -1020, never ignored.
// Deviation: Binance's session.logon takes only Ed25519 keys; keys here are
// HMAC (api-keys.ts), so session.logon takes an HMAC signature.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { NatsConnection } from '@nats-io/transport-node';
import type { ApiKeyEntry } from '../common/api-keys.ts';
import type { Logger } from '../common/logger.ts';
import type { ProcessStats } from '../common/process-stats.ts';
import { ApiKeyFile } from './api-key-file.ts';
import { RequestWeights } from './rest-weight.ts';
import { UserOrderFeed } from './user-orders.ts';
import { err, invalidParam, mandatory, REJECTED_KEY, verifySigned, type WsApiError } from './ws-api-sign.ts';

export const WS_API_PATH = '/ws-api/v3';
const PING_MS = 20_000;
/** How soon a key removed from the file loses its subscriptions (one stat of the file per pass). */
const REVOKE_CHECK_MS = 2_000;
/** Binance drops a connection that has not answered a ping for a minute. */
const PONG_TIMEOUT_MS = 60_000;
const MAX_ACTIVE_SUBSCRIPTIONS = 1_000;
const MAX_SUBSCRIPTION_IDS = 65_535;

export interface WsApiOptions {
  nc: NatsConnection;
  log: Logger;
  stats: ProcessStats;
  /** The API-key file; unset: every signed request is refused with -2015 and the log says why. */
  apiKeysFile?: string;
  maxPayloadBytes: number;
  /** Request weight one IP may use per minute (Binance: 6000). */
  weightPerMinute: number;
  /** A connection holding more unsent bytes than this is closed (1013): a slow client costs only itself. */
  maxBufferedBytes: number;
}

interface Subscription {
  id: number;
  entry: ApiKeyEntry;
  /** Made by userDataStream.subscribe on the logged-on key (session.logout ends it). */
  viaLogon: boolean;
  feed: UserOrderFeed;
}

interface Session {
  ws: WebSocket;
  ip: string;
  connectedSince: number;
  returnRateLimits: boolean;
  logon: { entry: ApiKeyEntry; since: number } | undefined;
  subs: Map<number, Subscription>;
  nextSubId: number;
  lastPong: number;
  closed: boolean;
}

type Id = string | number | null;
type Params = Record<string, unknown>;
type Result = object | WsApiError;

const isError = (r: Result): r is WsApiError => typeof (r as WsApiError).code === 'number' && typeof (r as WsApiError).status === 'number' && 'msg' in r;

export class WsApi {
  #o: WsApiOptions;
  #wss: WebSocketServer;
  #weights: RequestWeights;
  #keyFile: ApiKeyFile | undefined;
  #sessions = new Set<Session>();
  #ping: NodeJS.Timeout;
  #revoke: NodeJS.Timeout;

  constructor(o: WsApiOptions) {
    this.#o = o;
    this.#wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: o.maxPayloadBytes, clientTracking: false });
    this.#weights = new RequestWeights(o.weightPerMinute);
    if (o.apiKeysFile) this.#keyFile = new ApiKeyFile(o.apiKeysFile, o.log);
    this.#ping = setInterval(() => this.#heartbeat(), PING_MS);
    this.#ping.unref();
    this.#revoke = setInterval(() => this.#revokeRemovedKeys(), REVOKE_CHECK_MS);
    this.#revoke.unref();
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, url: URL): void {
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#open(ws, req.socket.remoteAddress ?? '', url.searchParams.get('returnRateLimits') !== 'false'));
  }

  #open(ws: WebSocket, ip: string, returnRateLimits: boolean): void {
    const now = Date.now();
    const s: Session = { ws, ip, connectedSince: now, returnRateLimits, logon: undefined, subs: new Map(), nextSubId: 0, lastPong: now, closed: false };
    this.#sessions.add(s);
    this.#o.stats.count('ws_api_sessions');
    ws.on('pong', () => (s.lastPong = Date.now()));
    ws.on('close', () => this.#end(s));
    ws.on('error', () => this.#end(s));
    ws.on('message', (data, isBinary) => void this.#request(s, data, isBinary));
  }

  #keys(): ApiKeyEntry[] | undefined {
    if (!this.#keyFile) {
      this.#o.log.warn('WebSocket API request refused: this gateway has no API-key file (apiKeysFile)');
      return undefined;
    }
    return this.#keyFile.keys();
  }

  async #request(s: Session, data: RawData, isBinary: boolean): Promise<void> {
    let id: Id = null;
    let method = '';
    let params: Params = {};
    let bad: WsApiError | undefined;
    try {
      const msg = isBinary ? undefined : (JSON.parse(data.toString()) as unknown);
      if (!msg || typeof msg !== 'object' || Array.isArray(msg)) throw new Error('not an object');
      const m = msg as { id?: unknown; method?: unknown; params?: unknown };
      if (typeof m.id === 'string' || (typeof m.id === 'number' && Number.isSafeInteger(m.id)) || m.id === null) id = m.id;
      else bad = m.id === undefined ? mandatory('id') : invalidParam('id');
      if (typeof m.method === 'string' && m.method !== '') method = m.method.replace(/^v3\//, '');
      else bad ??= mandatory('method');
      if (m.params !== undefined && (m.params === null || typeof m.params !== 'object' || Array.isArray(m.params))) bad ??= invalidParam('params');
      else params = (m.params as Params | undefined) ?? {};
    } catch {
      bad = err(400, -1135, 'Invalid JSON Request: send one JSON object {"id","method","params"} per text frame.');
    }
    // Own keys only: 'constructor' or '__proto__' are unknown methods, not Object's.
    const handler = bad || !Object.hasOwn(this.#methods, method) ? undefined : this.#methods[method];
    const weight = method === 'ping' || method === 'time' || !handler ? 1 : 2;
    const used = this.#weights.charge(s.ip, weight);
    if (used > this.#weights.budget) {
      return this.#reply(s, id, err(429, -1003, `Too much request weight used; current limit is ${this.#weights.budget} request weight per 1 MINUTE.`), used);
    }
    if (bad) return this.#reply(s, id, bad, used);
    if (!handler) {
      return this.#reply(s, id, err(400, -1020, `This operation is not supported: unknown method '${method.slice(0, 64)}' (served here: ${Object.keys(this.#methods).join(', ')}).`), used);
    }
    let result: Result;
    try {
      result = await handler(s, params);
    } catch (e) {
      this.#o.log.warn('WebSocket API request failed', { method, err: String(e) });
      result = err(503, -1001, 'Internal error; unable to process your request. Please try again.');
    }
    this.#reply(s, id, result, used);
  }

  #reply(s: Session, id: Id, r: Result, used: number): void {
    const rateLimits = s.returnRateLimits ? { rateLimits: [{ rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: this.#weights.budget, count: used }] } : {};
    const body = isError(r) ? { id, status: r.status, error: { code: r.code, msg: r.msg }, ...rateLimits } : { id, status: 200, result: r, ...rateLimits };
    this.#send(s, body);
  }

  #send(s: Session, body: object): void {
    if (s.closed) return;
    if (s.ws.bufferedAmount > this.#o.maxBufferedBytes) {
      this.#o.stats.count('user_data_slow_closed');
      return this.#end(s, 1013, 'client too slow: reconnect and re-read your orders');
    }
    s.ws.send(JSON.stringify(body));
  }

  #status(s: Session): object {
    return {
      apiKey: s.logon?.entry.apiKey ?? null,
      authorizedSince: s.logon?.since ?? null,
      connectedSince: s.connectedSince,
      returnRateLimits: s.returnRateLimits,
      serverTime: Date.now(),
      userDataStream: s.subs.size > 0,
    };
  }

  readonly #methods: Record<string, (s: Session, p: Params) => Promise<Result> | Result> = {
    ping: (_s, p) => noParams(p) ?? {},
    time: (_s, p) => noParams(p) ?? { serverTime: Date.now() },
    'session.logon': (s, p) => {
      const entry = verifySigned(p, this.#keys(), Date.now());
      if (isError(entry)) return entry;
      // Another key: the old key's logon subscription ends (Binance: one logged-on key per connection).
      if (s.logon && s.logon.entry.apiKey !== entry.apiKey) this.#endLogonSubscription(s);
      s.logon = { entry, since: Date.now() };
      return this.#status(s);
    },
    'session.status': (s, p) => noParams(p) ?? this.#status(s),
    'session.logout': (s, p) => {
      const bad = noParams(p);
      if (bad) return bad;
      this.#endLogonSubscription(s);
      s.logon = undefined;
      return this.#status(s);
    },
    'session.subscriptions': (s, p) => noParams(p) ?? [...s.subs.keys()].map((subscriptionId) => ({ subscriptionId })),
    'userDataStream.subscribe': (s, p) => {
      const bad = noParams(p);
      if (bad) return bad;
      if (!s.logon) return err(401, -1002, 'You are not authorized to execute this request: log in first (session.logon), or use userDataStream.subscribe.signature.');
      return this.#subscribe(s, s.logon.entry, true);
    },
    'userDataStream.subscribe.signature': (s, p) => {
      const entry = verifySigned(p, this.#keys(), Date.now());
      return isError(entry) ? entry : this.#subscribe(s, entry, false);
    },
    'userDataStream.unsubscribe': (s, p) => {
      const extra = Object.keys(p).find((k) => k !== 'subscriptionId');
      if (extra) return err(400, -1103, `An unknown parameter was sent: '${extra}'.`);
      if (p.subscriptionId === undefined) {
        for (const sub of [...s.subs.values()]) this.#terminate(s, sub);
        return {};
      }
      const subId = typeof p.subscriptionId === 'string' && /^\d{1,5}$/.test(p.subscriptionId) ? Number(p.subscriptionId) : p.subscriptionId;
      if (typeof subId !== 'number' || !Number.isSafeInteger(subId)) return invalidParam('subscriptionId');
      const sub = s.subs.get(subId);
      if (!sub) return err(400, -2036, 'User Data Stream subscription not active.');
      this.#terminate(s, sub);
      return {};
    },
  };

  /** A new subscription, answered once its events flow: everything after the answer is delivered. */
  async #subscribe(s: Session, entry: ApiKeyEntry, viaLogon: boolean): Promise<Result> {
    if (s.closed) return err(503, -1001, 'Internal error; unable to process your request. Please try again.');
    for (const sub of s.subs.values()) if (sub.entry.user === entry.user) return err(400, -2035, 'User Data Stream subscription already active.');
    if (s.subs.size >= MAX_ACTIVE_SUBSCRIPTIONS) return err(400, -1191, `Too many subscriptions. Connection may create up to '${MAX_ACTIVE_SUBSCRIPTIONS}' subscriptions at a time.`);
    if (s.nextSubId >= MAX_SUBSCRIPTION_IDS) return err(400, -2042, 'Maximum subscription ID reached for this connection.');
    const id = s.nextSubId++;
    // Added before the await: a second request for the same account meanwhile gets -2035.
    const sub: Subscription = { id, entry, viaLogon, feed: new UserOrderFeed(this.#o.nc, entry.user, this.#o.stats, (event) => this.#send(s, { subscriptionId: id, event })) };
    s.subs.set(id, sub);
    this.#o.stats.count('ws_api_subscriptions');
    void sub.feed.done.then((e) => {
      if (!e) return;
      this.#o.log.warn('WebSocket API user data stream ended', { user: entry.user, err: String(e) });
      // No silent stall: the client reconnects and subscribes again.
      this.#end(s, 1011, 'user data stream interrupted: reconnect');
    });
    if (await sub.feed.ready) return { subscriptionId: id };
    s.subs.delete(id);
    return err(503, -1001, 'Internal error; unable to process your request. Please try again.');
  }

  /** Ends a subscription with Binance's eventStreamTerminated. */
  #terminate(s: Session, sub: Subscription): void {
    sub.feed.stop();
    s.subs.delete(sub.id);
    this.#send(s, { subscriptionId: sub.id, event: { e: 'eventStreamTerminated', E: Date.now() } });
  }

  #endLogonSubscription(s: Session): void {
    for (const sub of [...s.subs.values()]) if (sub.viaLogon) this.#terminate(s, sub);
  }

  /** Pings; drops connections silent for a minute (Binance's rule). */
  #heartbeat(): void {
    const now = Date.now();
    for (const s of this.#sessions) {
      if (now - s.lastPong > PONG_TIMEOUT_MS) this.#end(s);
      else s.ws.ping();
    }
  }

  /** Ends the subscriptions and logons of keys removed from the file (or whose secret changed): revoking a key works at once. */
  #revokeRemovedKeys(): void {
    if (this.#sessions.size === 0) return;
    const keys = this.#keyFile?.keys();
    // An unreadable file (an edit in progress) revokes nothing; a key gone from a readable one is revoked.
    if (!keys) return;
    const valid = (e: ApiKeyEntry) => keys.some((k) => k.apiKey === e.apiKey && k.secret === e.secret && k.user === e.user);
    for (const s of this.#sessions) {
      for (const sub of [...s.subs.values()]) if (!valid(sub.entry)) this.#terminate(s, sub);
      if (s.logon && !valid(s.logon.entry)) {
        s.logon = undefined;
        // Binance's notice of a revoked session key.
        this.#send(s, { id: null, status: 401, error: { code: REJECTED_KEY.code, msg: REJECTED_KEY.msg } });
      }
    }
  }

  #end(s: Session, code?: number, reason?: string): void {
    if (s.closed) return;
    s.closed = true;
    this.#sessions.delete(s);
    for (const sub of s.subs.values()) sub.feed.stop();
    s.subs.clear();
    if (code !== undefined) s.ws.close(code, reason);
    else s.ws.terminate();
  }

  async stop(): Promise<void> {
    clearInterval(this.#ping);
    clearInterval(this.#revoke);
    for (const s of [...this.#sessions]) {
      // Binance's notice before a server goes away: reconnect elsewhere.
      this.#send(s, { event: { e: 'serverShutdown', E: Date.now() } });
      this.#end(s, 1001, 'gateway shutting down');
    }
    this.#wss.close();
  }
}

function noParams(p: Params): WsApiError | undefined {
  const k = Object.keys(p)[0];
  return k === undefined ? undefined : err(400, -1103, `An unknown parameter was sent: '${k}'.`);
}
