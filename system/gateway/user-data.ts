// Binance's user-data-stream conventions on the gateway's client port:
// POST/PUT/DELETE /api/v3/userDataStream with X-MBX-APIKEY (mapped to a user
// by the API-key file), and /ws/<listenKey> or /stream?streams=<listenKey>
// carrying executionReport, outboundAccountPosition and balanceUpdate.
// Events come from the user's own subject (orders.<user>) only, from the
// moment the stream opens: like Binance's, this stream has no resume or ack
// (the JWT `orders` topic has both: orders.ts). A listenKey past its expiry
// gets listenKeyExpired and its streams close; a deleted one closes at once.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { NatsConnection } from '@nats-io/transport-node';
import { userOfApiKey } from '../common/api-keys.ts';
import { ApiKeyFile } from './api-key-file.ts';
import { RequestWeights } from './rest-weight.ts';
import { sendJson, type Routes } from '../common/http.ts';
import type { Logger } from '../common/logger.ts';
import type { ProcessStats } from '../common/process-stats.ts';
import { UserOrderFeed } from './user-orders.ts';
import { LISTEN_KEY_RE, ListenKeys } from './user-data-keys.ts';
import { wsPathListenKey } from './protocol.ts';
import { listenKeyExpired } from './user-data-events.ts';

export const USER_DATA_PATH = '/api/v3/userDataStream';
const PING_MS = 20_000;

// Binance's error bodies for the cases a client can hit here.
const BAD_KEY_FORMAT = { code: -2014, msg: 'API-key format invalid.' };
const REJECTED_KEY = { code: -2015, msg: 'Invalid API-key, IP, or permissions for action.' };
const NO_LISTEN_KEY = { code: -1125, msg: 'This listenKey does not exist.' };

export interface UserDataOptions {
  nc: NatsConnection;
  log: Logger;
  stats: ProcessStats;
  /** The API-key file; unset: every request is refused with -2015 and says why in the log. */
  apiKeysFile?: string;
  listenKeyTtlMs: number;
  /** Copies of the listenKey bucket in a NATS cluster. */
  natsReplicas?: number;
  maxPayloadBytes: number;
  /** REST request weight one IP may use per minute on these endpoints (Binance's accounting, rest-weight.ts). */
  weightPerMinute: number;
  /** A stream whose socket holds more unsent bytes than this is closed (1013): a slow client costs only itself. */
  maxBufferedBytes: number;
}

interface Stream {
  ws: WebSocket;
  key: string;
  user: string;
  combined: boolean;
  feed: UserOrderFeed | undefined;
  alive: boolean;
  closed: boolean;
}

export class UserDataStreams {
  #o: UserDataOptions;
  #keys: ListenKeys;
  #wss: WebSocketServer;
  #streams = new Set<Stream>();
  #sweep: NodeJS.Timeout;
  #ping: NodeJS.Timeout;

  private constructor(o: UserDataOptions, keys: ListenKeys) {
    this.#o = o;
    this.#keys = keys;
    this.#wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: o.maxPayloadBytes, clientTracking: false });
    keys.onGone((key) => {
      for (const s of this.#streams) if (s.key === key) this.#end(s, 1000, 'listenKey closed');
    });
    // Expiry is checked often enough for a short test TTL; a production TTL (60 min) costs one pass a second.
    this.#sweep = setInterval(() => void this.#checkExpiry(), Math.min(1_000, Math.max(100, o.listenKeyTtlMs / 4)));
    this.#sweep.unref();
    this.#ping = setInterval(() => this.#heartbeat(), PING_MS);
    this.#ping.unref();
  }

  static async open(o: UserDataOptions): Promise<UserDataStreams> {
    if (!(o.listenKeyTtlMs >= 1_000)) throw new Error(`listenKeyTtlMs ${o.listenKeyTtlMs}: at least 1000 ms`);
    return new UserDataStreams(o, await ListenKeys.open(o.nc, o.listenKeyTtlMs, o.log, o.natsReplicas ?? 1));
  }

  get streams(): number {
    return this.#streams.size;
  }

  #keyFile: ApiKeyFile | undefined;

  /** The user of a request's X-MBX-APIKEY, or the Binance error to answer with. */
  #userOf(req: IncomingMessage): string | { code: number; msg: string } {
    const apiKey = req.headers['x-mbx-apikey'];
    if (typeof apiKey !== 'string' || !/^[A-Za-z0-9_-]{8,128}$/.test(apiKey)) return BAD_KEY_FORMAT;
    if (!this.#o.apiKeysFile) {
      this.#o.log.warn('user-data stream request refused: this gateway has no API-key file (apiKeysFile)');
      return REJECTED_KEY;
    }
    this.#keyFile ??= new ApiKeyFile(this.#o.apiKeysFile, this.#o.log);
    const keys = this.#keyFile.keys();
    return (keys && userOfApiKey(keys, apiKey)) ?? REJECTED_KEY;
  }

  get routes(): Routes {
    const weights = new RequestWeights(this.#o.weightPerMinute);
    return Object.fromEntries(Object.entries(this.#routes).map(([k, h]) => [k, weights.wrap(h)]));
  }

  readonly #routes: Routes = {
    [`POST ${USER_DATA_PATH}`]: async (req, res) => {
      const user = this.#userOf(req);
      if (typeof user !== 'string') return sendJson(res, 401, user);
      this.#o.stats.count('listen_keys_created');
      sendJson(res, 200, { listenKey: await this.#keys.create(user) });
    },
    [`PUT ${USER_DATA_PATH}`]: (req, res, url) => this.#withKey(req, res, url, (key, user) => this.#keys.keepAlive(key, user)),
    [`DELETE ${USER_DATA_PATH}`]: (req, res, url) => this.#withKey(req, res, url, (key, user) => this.#keys.close(key, user)),
  };

  async #withKey(req: IncomingMessage, res: ServerResponse, url: URL, act: (key: string, user: string) => Promise<boolean>): Promise<void> {
    const user = this.#userOf(req);
    if (typeof user !== 'string') return sendJson(res, 401, user);
    const key = url.searchParams.get('listenKey') ?? (await formParam(req, 'listenKey'));
    if (!key) return sendJson(res, 400, { code: -1102, msg: "Mandatory parameter 'listenKey' was not sent, was empty/null, or malformed." });
    // Another user's key is answered exactly like a missing one: nothing tells a key exists.
    if (!(await act(key, user))) return sendJson(res, 400, NO_LISTEN_KEY);
    sendJson(res, 200, {});
  }

  /** The listenKey a WebSocket URL asks for (/ws/<key>, /stream?streams=<key>), or undefined: not a user-data stream. */
  static keyOf(url: URL): { key: string; combined: boolean } | undefined {
    if (url.pathname.startsWith('/ws/')) {
      const key = wsPathListenKey(url.pathname);
      return key ? { key, combined: false } : undefined;
    }
    if (url.pathname === '/stream') {
      const key = url.searchParams.get('streams') ?? '';
      return LISTEN_KEY_RE.test(key) ? { key, combined: true } : undefined;
    }
    return undefined;
  }

  /** Takes the upgrade when the URL names a listenKey; false: not ours. */
  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, url: URL): boolean {
    const want = UserDataStreams.keyOf(url);
    if (!want) return false;
    void this.#keys.get(want.key).then(
      (rec) => {
        if (socket.destroyed) return;
        if (!rec) return refuse(socket, 400, NO_LISTEN_KEY);
        this.#wss.handleUpgrade(req, socket, head, (ws) => void this.#open(ws, want.key, rec.user, want.combined));
      },
      (err) => {
        this.#o.log.warn('listenKey check failed', { err: String(err) });
        refuse(socket, 503, { code: -1001, msg: 'Internal error; unable to process your request. Please try again.' });
      },
    );
    return true;
  }

  async #open(ws: WebSocket, key: string, user: string, combined: boolean): Promise<void> {
    const s: Stream = { ws, key, user, combined, feed: undefined, alive: true, closed: false };
    this.#streams.add(s);
    this.#o.stats.count('user_data_streams');
    ws.on('pong', () => (s.alive = true));
    ws.on('close', () => this.#end(s));
    ws.on('error', () => this.#end(s));
    // Requests on this stream are not part of Binance's user-data convention: ignored, as Binance does.
    ws.on('message', () => {});
    s.feed = new UserOrderFeed(this.#o.nc, user, this.#o.stats, (ev) => this.#send(s, ev));
    const err = await s.feed.done;
    if (err) this.#o.log.warn('user-data stream ended', { user, err: String(err) });
    // The consumer ended without the client leaving (bus gone): closed, so the client reconnects (no silent stall).
    if (!s.closed) this.#end(s, 1011, 'user data stream interrupted: reconnect');
  }

  #send(s: Stream, ev: Record<string, unknown>): void {
    if (s.closed) return;
    if (s.ws.bufferedAmount > this.#o.maxBufferedBytes) {
      this.#o.stats.count('user_data_slow_closed');
      return this.#end(s, 1013, 'client too slow: reconnect and re-read your orders');
    }
    s.ws.send(JSON.stringify(s.combined ? { stream: s.key, data: ev } : ev));
    this.#o.stats.count('user_data_events');
  }

  async #checkExpiry(): Promise<void> {
    const now = Date.now();
    for (const s of this.#streams) {
      const rec = this.#keys.cached(s.key);
      if (rec && rec.expiresAt > now) continue;
      try {
        // The cache may lag a keepalive made elsewhere: the bucket decides.
        if (await this.#keys.get(s.key)) continue;
      } catch {
        continue; // the bus is away: decide on the next pass
      }
      this.#send(s, listenKeyExpired(s.key));
      this.#end(s, 1000, 'listenKey expired');
      void this.#keys.expire(s.key).catch(() => {});
    }
  }

  #heartbeat(): void {
    for (const s of this.#streams) {
      if (!s.alive) {
        this.#end(s);
        continue;
      }
      s.alive = false;
      s.ws.ping();
    }
  }

  #end(s: Stream, code?: number, reason?: string): void {
    if (s.closed) return;
    s.closed = true;
    this.#streams.delete(s);
    s.feed?.stop();
    if (code !== undefined) s.ws.close(code, reason);
    else s.ws.terminate();
  }

  async stop(): Promise<void> {
    clearInterval(this.#sweep);
    clearInterval(this.#ping);
    for (const s of [...this.#streams]) this.#end(s, 1001, 'gateway shutting down');
    this.#keys.stop();
    this.#wss.close();
  }
}

/** Routes answering that user-data streams are unavailable on this gateway (no NATS JetStream). */
export function unavailableUserDataRoutes(): Routes {
  const no = (_q: IncomingMessage, res: ServerResponse) =>
    sendJson(res, 503, { code: -1001, msg: 'User data streams need NATS JetStream; this gateway runs without it (embedded bus).' });
  return { [`POST ${USER_DATA_PATH}`]: no, [`PUT ${USER_DATA_PATH}`]: no, [`DELETE ${USER_DATA_PATH}`]: no };
}

function refuse(socket: Socket, status: number, body: object): void {
  const text = JSON.stringify(body);
  socket.end(`HTTP/1.1 ${status} ${status === 400 ? 'Bad Request' : 'Service Unavailable'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
}

/** A parameter from an application/x-www-form-urlencoded body (Binance clients send PUT/DELETE params there). */
async function formParam(req: IncomingMessage, name: string): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 4096) return null;
    chunks.push(c as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get(name);
}
