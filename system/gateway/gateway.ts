// push-gateway: the client edge. WebSocket (Binance JSON, or protobuf with
// ?format=protobuf) and REST on one port; admission control against
// reconnect storms; per-client rate limits and bounded send queues;
// heartbeats on one timing wheel; all subscriptions multiplexed over a
// fixed pool of gRPC streams to the push-servers (server-pool.ts).
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type RawData } from 'ws';
import type { GatewayConfig } from '../common/config.ts';
import type { RoleContext, RoleHandle } from '../common/run-role.ts';
import { createJsonServer, listen, closeServer, sendJson, readJson, fetchJson } from '../common/http.ts';
import { Heartbeat } from '../common/heartbeat.ts';
import { ProcessStats } from '../common/process-stats.ts';
import { TimingWheel } from '../common/timing-wheel.ts';
import { TokenBucket } from '../common/token-bucket.ts';
import { selfRecord, type NodeRecord } from '../common/registry.ts';
import type { ParsedTopic } from '../common/topics.ts';
import { ClientConn } from './client-conn.ts';
import { WsTransport } from './transport.ts';
import { TopicHub } from './topic-hub.ts';
import { SessionTap } from './session-tap.ts';
import { ServerPool } from './server-pool.ts';
import { KlineProxy } from '../history/gateway-proxy.ts';
import { controlFrame, type ClientFormat } from './codec.ts';
import { parseJsonRequest, parseProtobufRequest, type Command, type RequestError, type RequestId } from './protocol.ts';

export async function startGateway(config: GatewayConfig, ctx: RoleContext): Promise<RoleHandle> {
  const { log } = ctx;
  if (config.routers.length === 0) throw new Error('push-gateway needs at least one router URL (config.routers) to find servers');
  const stats = new ProcessStats();
  const startedAt = Date.now();
  let draining = false;
  let symbols = new Set<string>();
  const conns = new Set<ClientConn>();
  const drainTimers = new Set<NodeJS.Timeout>();
  const accept = new TokenBucket(config.acceptRate, config.acceptRate);
  const tap = new SessionTap(config.id);

  const resyncFrame = (c: ClientConn, topic: string, reason: string) => {
    stats.count('resync_notices');
    c.send(controlFrame(c.format, { e: 'resync', E: Date.now(), stream: topic, reason }, { case: 'resync', value: { topic, reason, lastSeq: 0n } }));
  };
  const hub: TopicHub = new TopicHub({
    upstream: { subscribe() {}, unsubscribe() {}, resubscribe() {} },
    log,
    stats,
    fanoutSliceMs: config.fanoutSliceMs,
    lingerMs: 3_000,
    notifyResync: resyncFrame,
  });
  const pool = new ServerPool({
    gatewayId: config.id,
    routers: config.routers,
    streamsPerServer: config.streamsPerServer,
    pollMs: 1_000,
    log,
    onEvent: (b) => hub.onEvent(b),
    onNotice: (n) => hub.onNotice(n.topic, n.kind, n.detail),
    position: (t) => hub.position(t),
  });
  hub.setUpstream(pool);

  const refreshSymbols = async () => {
    for (const r of config.routers) {
      try {
        const body = await fetchJson<{ symbols: string[] }>(`${r}/v1/symbols`, { timeoutMs: 2_000 });
        symbols = new Set(body.symbols);
        return;
      } catch {
        // next router
      }
    }
  };
  await refreshSymbols();
  const symbolTimer = setInterval(() => void refreshSymbols(), 5_000);
  symbolTimer.unref();
  await pool.start();

  // --- heartbeats and slow-client deadlines: one wheel for every connection
  const wheel = new TimingWheel<ClientConn>({
    tickMs: Math.max(10, Math.min(1_000, Math.floor(config.pingIntervalMs / 4))),
    slots: 256,
    onExpire: (c) => {
      if (c.state === 'closed') return;
      const now = Date.now();
      if (c.state === 'resyncing' && c.overflowAt && now - c.overflowAt >= config.slowClientGraceMs) {
        stats.count('slow_disconnects');
        log.info('disconnecting a client that could not keep up', { conn: c.id, remote: c.remote });
        c.close(4001, 'slow consumer: could not keep up');
        return;
      }
      if (now - c.lastRx >= config.pongTimeoutMs) {
        stats.count('idle_timeouts');
        c.markClosed();
        c.transport.terminate();
        return;
      }
      c.transport.ping();
      wheel.schedule(c, config.pingIntervalMs);
    },
  });
  wheel.start();

  // --- replies
  const reply = (c: ClientConn, id: RequestId, result: string[] | null) =>
    c.send(controlFrame(c.format, { result, id }, { case: 'result', value: { id: typeof id === 'number' ? BigInt(id) : 0n, topics: result ?? [] } }));
  const replyError = (c: ClientConn, e: Omit<RequestError, 'kind'>) => {
    stats.count('request_errors');
    c.send(controlFrame(c.format, { error: { code: e.code, msg: e.msg }, id: e.id }, { case: 'error', value: { id: typeof e.id === 'number' ? BigInt(e.id) : 0n, code: e.code, msg: e.msg } }));
  };

  /** Parses and checks topics; the whole request fails if any is bad (nothing half-applied). */
  const checkTopics = (raw: string[]): ParsedTopic[] | string => {
    const out: ParsedTopic[] = [];
    for (const r of raw) {
      const p = hub.validate(r);
      if (typeof p === 'string') return `Invalid request: ${p}`;
      if (symbols.size > 0 && !symbols.has(p.symbol)) return `Invalid request: unknown symbol "${p.symbol}" in stream "${r}"`;
      out.push(p);
    }
    return out;
  };

  const subscribe = (c: ClientConn, id: RequestId, raw: string[], silent = false): string | undefined => {
    const topics = checkTopics(raw);
    if (typeof topics === 'string') return topics;
    const fresh = new Set(topics.filter((t) => !c.topics.has(t.topic)).map((t) => t.topic));
    if (c.topics.size + fresh.size > config.maxStreamsPerConnection) {
      return `Too many streams: at most ${config.maxStreamsPerConnection} per connection`;
    }
    if (!silent) reply(c, id, null);
    for (const t of topics) hub.subscribe(c, t);
    return undefined;
  };

  const handle = (c: ClientConn, cmd: Command | RequestError) => {
    switch (cmd.kind) {
      case 'error':
        return replyError(c, cmd);
      case 'subscribe': {
        const err = subscribe(c, cmd.id, cmd.topics);
        if (err) replyError(c, { id: cmd.id, code: err.startsWith('Too many') ? 4 : 2, msg: err });
        else tap.emit({ ev: 'subscribe', s: String(c.id), streams: cmd.topics });
        return;
      }
      case 'unsubscribe': {
        const topics = checkTopics(cmd.topics);
        if (typeof topics === 'string') return replyError(c, { id: cmd.id, code: 2, msg: topics });
        for (const t of topics) hub.unsubscribe(c, t.topic);
        tap.emit({ ev: 'unsubscribe', s: String(c.id), streams: cmd.topics });
        return reply(c, cmd.id, null);
      }
      case 'list':
        return reply(c, cmd.id, [...c.topics]);
      case 'ping':
        return c.send(controlFrame(c.format, { pong: Date.now() }, { case: 'pong', value: { clientTimeUs: BigInt(cmd.clientTimeUs), serverTimeUs: BigInt(Date.now() * 1000) } }));
    }
  };

  const onMessage = (c: ClientConn, data: RawData, isBinary: boolean) => {
    c.lastRx = Date.now();
    stats.count('requests');
    if (!c.limiter.take()) {
      c.violations++;
      stats.count('rate_limited');
      if (c.violations > config.inboundViolationsToClose) {
        log.info('closing a client that keeps flooding', { conn: c.id, remote: c.remote });
        c.close(1008, 'too many requests');
        return;
      }
      return replyError(c, { id: null, code: 5, msg: `Too many requests: at most ${config.inboundRatePerSec} messages per second` });
    }
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (c.format === 'protobuf') {
      if (!isBinary) return replyError(c, { id: null, code: 6, msg: 'Text frame on a protobuf connection: send binary ClientFrame messages' });
      return handle(c, parseProtobufRequest(buf));
    }
    if (isBinary) return replyError(c, { id: null, code: 6, msg: 'Binary frame on a JSON connection: send text JSON requests (or connect with ?format=protobuf)' });
    handle(c, parseJsonRequest(buf.toString('utf8')));
  };

  // --- HTTP: REST, admin, and the WebSocket upgrade
  const statsBody = () => {
    let queued = 0;
    let subscriptions = 0;
    for (const c of conns) {
      queued += c.queuedBytes;
      subscriptions += c.topics.size;
    }
    return {
      id: config.id,
      role: 'gateway',
      draining,
      connections: conns.size,
      subscriptions,
      topics: hub.topicCount,
      queuedBytes: queued,
      servers: pool.serverIds(),
      assignments: pool.assignments(),
      topicMoves: pool.moves,
      serverFailovers: pool.failovers,
      msgsInPerSec: stats.rate('msgs_in'),
      framesOutPerSec: stats.rate('frames_out'),
      fanoutYields: hub.fanoutYields,
      cpu: stats.cpu,
      eventLoopP99Ms: stats.eventLoopP99Ms,
      rssMb: stats.rssMb(),
      logDropped: log.dropped,
      counters: stats.counters(),
    };
  };
  const exchangeInfo = () => ({
    timezone: 'UTC',
    serverTime: Date.now(),
    rateLimits: [{ rateLimitType: 'REQUEST_WEIGHT', interval: 'SECOND', intervalNum: 1, limit: config.inboundRatePerSec }],
    exchangeFilters: [],
    symbols: [...symbols].sort().map((s) => {
      const quote = ['usdt', 'usdc', 'btc', 'eth', 'bnb'].find((q) => s.endsWith(q) && s.length > q.length) ?? 'usdt';
      return {
        symbol: s.toUpperCase(),
        status: 'TRADING',
        baseAsset: s.slice(0, s.length - quote.length).toUpperCase(),
        quoteAsset: quote.toUpperCase(),
        isSpotTradingAllowed: true,
        permissions: ['SPOT'],
      };
    }),
  });
  const klines = new KlineProxy({ routers: config.routers });
  const http = createJsonServer({
    'GET /healthz': (_q, res) => sendJson(res, draining ? 503 : 200, { ok: !draining, id: config.id, role: 'gateway', draining, servers: pool.serverIds().length, degraded: klines.degraded() }),
    'GET /api/v3/klines': (q, res, url) => klines.handle(q, res, url),
    'GET /stats': (_q, res) => sendJson(res, 200, statsBody()),
    'GET /admin/tap': tap.handle,
    'GET /api/v3/ping': (_q, res) => sendJson(res, 200, {}),
    'GET /api/v3/time': (_q, res) => sendJson(res, 200, { serverTime: Date.now() }),
    'GET /api/v3/exchangeInfo': (_q, res) => sendJson(res, 200, exchangeInfo(), { 'access-control-allow-origin': '*' }),
    'POST /admin/drain': async (req, res) => {
      const body = await readJson<{ draining?: boolean }>(req);
      setDraining(body.draining ?? true);
      sendJson(res, 200, { ok: true, id: config.id, draining, connections: conns.size });
    },
    'POST /admin/config': async (req, res) => {
      const body = await readJson<Partial<Pick<GatewayConfig, 'inboundRatePerSec' | 'inboundBurst' | 'maxConnections' | 'acceptRate'>>>(req);
      const allowed = ['maxConnections', 'acceptRate'] as const;
      const unknown = Object.keys(body).filter((k) => !(allowed as readonly string[]).includes(k));
      if (unknown.length) return sendJson(res, 400, { error: `not live-configurable: ${unknown.join(', ')} (allowed: ${allowed.join(', ')})` });
      for (const k of allowed) if (typeof body[k] === 'number' && body[k]! > 0) config[k] = body[k]!;
      sendJson(res, 200, { ok: true, maxConnections: config.maxConnections, acceptRate: config.acceptRate });
    },
  });

  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: config.maxPayloadBytes, clientTracking: false });

  const rejectUpgrade = (socket: Socket, status: number, msg: string, retryAfter?: number) => {
    stats.count('rejected_upgrades');
    const body = JSON.stringify({ error: { code: status, msg } });
    socket.end(
      `HTTP/1.1 ${status} ${status === 503 ? 'Service Unavailable' : status === 404 ? 'Not Found' : 'Bad Request'}\r\n` +
        (retryAfter ? `Retry-After: ${retryAfter}\r\n` : '') +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  };

  http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://gateway');
    let streams: string[];
    let format: ClientFormat;
    if (url.pathname === '/stream') {
      streams = (url.searchParams.get('streams') ?? '').split('/').filter(Boolean);
      format = 'combined';
    } else if (url.pathname === '/ws' || url.pathname.startsWith('/ws/')) {
      streams = url.pathname.slice(4).split('/').filter(Boolean);
      format = 'raw';
    } else {
      return rejectUpgrade(socket, 404, `no WebSocket endpoint at ${url.pathname}: use /ws/<stream> or /stream?streams=<a>/<b>`);
    }
    const fmt = url.searchParams.get('format');
    if (fmt === 'protobuf') format = 'protobuf';
    else if (fmt !== null && fmt !== 'json') return rejectUpgrade(socket, 400, `unknown format "${fmt}": use json or protobuf`);
    if (draining) return rejectUpgrade(socket, 503, 'gateway draining: ask the router for another gateway', 1);
    if (conns.size >= config.maxConnections) return rejectUpgrade(socket, 503, 'gateway full: ask the router for another gateway', 1 + Math.floor(Math.random() * 3));
    // Reconnect storms: admit at a bounded rate; the jittered Retry-After spreads the herd.
    if (!accept.take()) return rejectUpgrade(socket, 503, 'too many new connections right now: retry shortly', 1 + Math.floor(Math.random() * 3));
    const checked = checkTopics(streams);
    if (typeof checked === 'string') return rejectUpgrade(socket, 400, checked);
    if (checked.length > config.maxStreamsPerConnection) return rejectUpgrade(socket, 400, `Too many streams: at most ${config.maxStreamsPerConnection} per connection`);
    wss.handleUpgrade(req, socket, head, (ws) => {
      const c = new ClientConn({
        transport: new WsTransport(ws, socket),
        format,
        capBytes: config.sendQueueBytes,
        ratePerSec: config.inboundRatePerSec,
        burst: config.inboundBurst,
        hooks: {
          markDirty: (x) => hub.markDirty(x),
          overflowed: (x) => {
            stats.count('overflows');
            wheel.schedule(x, config.slowClientGraceMs); // the grace deadline, checked by the wheel
          },
          resync: (x, reason) => {
            stats.count('resyncs');
            wheel.schedule(x, config.pingIntervalMs);
            hub.resyncConn(x, reason);
          },
        },
      });
      conns.add(c);
      stats.count('connections_opened');
      c.abort.signal.addEventListener('abort', () => {
        conns.delete(c);
        wheel.cancel(c);
        hub.removeConn(c);
        tap.emit({ ev: 'close', s: String(c.id) });
      });
      tap.emit({ ev: 'connect', s: String(c.id), format: format === 'protobuf' ? 'protobuf' : 'json', streams: checked.map((t) => t.topic) });
      ws.on('message', (data, isBinary) => onMessage(c, data, isBinary));
      ws.on('pong', () => (c.lastRx = Date.now()));
      ws.on('ping', () => (c.lastRx = Date.now()));
      ws.on('error', (err) => {
        stats.count('socket_errors');
        log.debug('client socket error', { conn: c.id, err: err.message });
      });
      // Unbind on the first sign of the end, before anything else tries to write.
      socket.once('end', () => c.markClosed());
      socket.once('close', () => c.markClosed());
      ws.on('close', () => c.markClosed());
      wheel.schedule(c, config.pingIntervalMs);
      if (checked.length) subscribe(c, null, checked.map((t) => t.topic), true);
    });
  });

  const port = await listen(http, config.port, config.host);

  const setDraining = (on: boolean) => {
    if (on === draining) return;
    draining = on;
    void heartbeat.beat();
    if (!on) {
      for (const t of drainTimers) clearTimeout(t);
      drainTimers.clear();
      log.info('undrained');
      return;
    }
    // Hand clients over gradually so they do not all hit the router and the next gateway at once.
    const list = [...conns];
    log.info('draining: closing clients so they reconnect elsewhere', { clients: list.length, overMs: config.drainSpreadMs });
    list.forEach((c, i) => {
      const t = setTimeout(() => {
        drainTimers.delete(t);
        c.close(4002, 'gateway draining: reconnect through the router');
      }, (i / Math.max(1, list.length)) * config.drainSpreadMs);
      t.unref();
      drainTimers.add(t);
    });
  };

  // --- stats and heartbeat
  let lastFrames = 0;
  const sampler = setInterval(() => {
    let frames = 0;
    for (const c of conns) frames += c.framesOut;
    stats.count('frames_out', Math.max(0, frames - lastFrames));
    lastFrames = frames;
    stats.sample();
  }, 1000);
  sampler.unref();
  const urls = { ws: `ws://${config.host}:${port}`, http: `http://${config.host}:${port}` };
  const record = (): NodeRecord => {
    let subscriptions = 0;
    for (const c of conns) subscriptions += c.topics.size;
    return selfRecord({
      id: config.id,
      role: 'gateway',
      urls,
      protocols: ['ws', 'ws-protobuf'],
      draining,
      startedAt,
      stats,
      load: { connections: conns.size, subscriptions, msgsInPerSec: stats.rate('msgs_in'), msgsOutPerSec: stats.rate('frames_out') },
    });
  };
  const heartbeat = new Heartbeat({ routers: config.routers, intervalMs: config.heartbeatMs, record, log });
  await heartbeat.start();

  return {
    urls,
    stop: async () => {
      clearInterval(sampler);
      clearInterval(symbolTimer);
      for (const t of drainTimers) clearTimeout(t);
      wheel.stop();
      tap.stop();
      await heartbeat.stop();
      for (const c of [...conns]) c.close(1001, 'gateway shutting down');
      pool.stop();
      hub.stop();
      wss.close();
      await closeServer(http);
      stats.stop();
    },
  };
}
