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
import { selfRecord, type NodeRecord } from '../common/registry.ts';
import type { ClientConn } from './client-conn.ts';
import { Sessions } from './sessions.ts';
import { Authenticator, type Identity } from './auth.ts';
import type { ParsedTopic } from '../common/topics.ts';
import { OrderStreams } from './orders.ts';
import { NatsBus } from '../common/nats-bus.ts';
import { createTcpApi } from './tcp-api.ts';
import { startGrpcApi } from './grpc-api.ts';
import { createGrpcWebApi, PUSH_SERVICE_PATH } from './grpc-web-api.ts';
import { createDemo } from './demo.ts';
import { WsTransport } from './transport.ts';
import { TopicHub } from './topic-hub.ts';
import { SessionTap } from './session-tap.ts';
import { ServerPool } from './server-pool.ts';
import { KlineProxy } from '../history/gateway-proxy.ts';
import { handleKlinesGrpcWeb, KLINE_HISTORY_PATH, klineHistoryService } from '../history/grpc-klines.ts';
import { controlFrame, type ClientFormat } from './codec.ts';
import { parseJsonRequest, parseProtobufRequest, type Command, type RequestError } from './protocol.ts';

export async function startGateway(config: GatewayConfig, ctx: RoleContext): Promise<RoleHandle> {
  const { log } = ctx;
  if (config.routers.length === 0) throw new Error('push-gateway needs at least one router URL (config.routers) to find servers');
  const stats = new ProcessStats();
  const startedAt = Date.now();
  let draining = false;
  let symbols = new Set<string>();
  const drainTimers = new Set<NodeJS.Timeout>();
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
    flushIntervalMs: config.flushIntervalMs,
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

  const auth = new Authenticator(config.auth);
  // Private order streams need JetStream: available when this gateway has a NATS connection.
  const orders = ctx.bus instanceof NatsBus ? await OrderStreams.open(ctx.bus.nc, log, stats) : undefined;
  const sessions = new Sessions({ config, hub, stats, log, tap, symbols: () => symbols, auth, ...(orders ? { orders } : {}) });
  const conns = sessions.conns;
  const grpcWeb = createGrpcWebApi({ sessions, maxFrameBytes: config.maxPayloadBytes, isDraining: () => draining, symbols: () => symbols });

  /** A WebSocket message: JSON text, or protobuf ClientFrames with ?format=protobuf. */
  const wsRequest = (c: ClientConn, data: RawData, isBinary: boolean) => (): Command | RequestError => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (c.format === 'protobuf') {
      if (!isBinary) return { kind: 'error', id: null, code: 6, msg: 'Text frame on a protobuf connection: send binary ClientFrame messages' };
      return parseProtobufRequest(buf);
    }
    if (isBinary) return { kind: 'error', id: null, code: 6, msg: 'Binary frame on a JSON connection: send text JSON requests (or connect with ?format=protobuf)' };
    return parseJsonRequest(buf.toString('utf8'));
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
      egressP99Ms: hub.egress.intervalP99Ms,
      gcMaxPauseMs: stats.gcMaxPauseMs,
      gcPauseTotalMs: Math.round(stats.gcPauseTotalMs),
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
    [`POST ${KLINE_HISTORY_PATH}*`]: (req, res) => handleKlinesGrpcWeb(klines, req, res),
    [`OPTIONS ${KLINE_HISTORY_PATH}*`]: (req, res) => handleKlinesGrpcWeb(klines, req, res),
    'GET /stats': (_q, res) => sendJson(res, 200, statsBody()),
    'GET /admin/tap': tap.handle,
    // ?reset=1 starts a new window: a benchmark reads its measured phase exactly.
    'GET /admin/egress-latency': (_q, res, url) => {
      const reset = url.searchParams.get('reset') === '1';
      sendJson(res, 200, { ...hub.egress.snapshot(reset), arrival: hub.arrival.snapshot(reset) });
    },
    'GET /api/v3/ping': (_q, res) => sendJson(res, 200, {}),
    'GET /api/v3/time': (_q, res) => sendJson(res, 200, { serverTime: Date.now() }),
    'GET /api/v3/exchangeInfo': (_q, res) => sendJson(res, 200, exchangeInfo(), { 'access-control-allow-origin': '*' }),
    [`POST ${PUSH_SERVICE_PATH}*`]: (req, res) => grpcWeb.handle(req, res),
    [`OPTIONS ${PUSH_SERVICE_PATH}*`]: (req, res) => grpcWeb.handle(req, res),
    'GET /demo': (_q, res) => res.writeHead(302, { location: '/demo/' }).end(),
    'GET /demo/*': createDemo({ routers: config.routers }),
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
      `HTTP/1.1 ${status} ${({ 401: 'Unauthorized', 404: 'Not Found', 503: 'Service Unavailable' } as Record<number, string>)[status] ?? 'Bad Request'}\r\n` +
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
    const refused = sessions.admit();
    if (refused) return rejectUpgrade(socket, 503, refused, 1 + Math.floor(Math.random() * 3));
    const checked = sessions.checkTopics(streams);
    if (typeof checked === 'string') return rejectUpgrade(socket, 400, checked);
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    void sessions.verifyAtConnect(bearer ?? url.searchParams.get('token') ?? undefined).then((identity) => {
      if (typeof identity === 'string') return rejectUpgrade(socket, 401, identity);
      if (socket.destroyed) return;
      upgrade(req, socket, head, format, checked, identity);
    });
  });

  const upgrade = (req: IncomingMessage, socket: Socket, head: Buffer, format: ClientFormat, checked: ParsedTopic[], identity: Identity | undefined) =>
    wss.handleUpgrade(req, socket, head, (ws) => {
      const c = sessions.open(new WsTransport(ws, socket), format, checked, identity);
      ws.on('message', (data, isBinary) => sessions.receive(c, wsRequest(c, data, isBinary)));
      ws.on('pong', () => sessions.heartbeatAnswered(c));
      ws.on('ping', () => sessions.touch(c));
      ws.on('error', (err) => {
        stats.count('socket_errors');
        log.debug('client socket error', { conn: c.id, err: err.message });
      });
      // Unbind on the first sign of the end, before anything else tries to write.
      socket.once('end', () => c.markClosed());
      socket.once('close', () => c.markClosed());
      ws.on('close', () => c.markClosed());
    });

  const port = await listen(http, config.port, config.host);
  const isDraining = () => draining;
  const tcp = config.tcpPort >= 0 ? createTcpApi({ sessions, maxFrameBytes: config.maxPayloadBytes, isDraining, onError: () => stats.count('socket_errors') }) : undefined;
  const tcpPort = tcp ? await listen(tcp.server, config.tcpPort, config.host) : undefined;
  const grpcApi = config.grpcPort >= 0 ? await startGrpcApi({ sessions, host: config.host, port: config.grpcPort, maxFrameBytes: config.maxPayloadBytes, isDraining, extraServices: [klineHistoryService(klines)] }) : undefined;

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
    hub.egress.sample();
    hub.arrival.sample();
  }, 1000);
  sampler.unref();
  const urls: Record<string, string> = { ws: `ws://${config.host}:${port}`, http: `http://${config.host}:${port}`, 'grpc-web': `http://${config.host}:${port}` };
  if (tcpPort !== undefined) urls.tcp = `${config.host}:${tcpPort}`;
  if (grpcApi) urls.grpc = `${config.host}:${grpcApi.port}`;
  const record = (): NodeRecord => {
    let subscriptions = 0;
    for (const c of conns) subscriptions += c.topics.size;
    return selfRecord({
      id: config.id,
      role: 'gateway',
      urls,
      protocols: ['ws', 'ws-protobuf', 'grpc-web', ...(tcp ? ['tcp'] : []), ...(grpcApi ? ['grpc'] : [])],
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
      tap.stop();
      await heartbeat.stop();
      sessions.closeAll(1001, 'gateway shutting down');
      await orders?.stop();
      await tcp?.close();
      await grpcApi?.stop();
      pool.stop();
      hub.stop();
      wss.close();
      await closeServer(http);
      stats.stop();
    },
  };
}
