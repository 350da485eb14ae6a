// push-gateway: the client edge. WebSocket (Binance JSON, or protobuf with
// ?format=protobuf) and REST on one port; admission control against
// reconnect storms; per-client rate limits and bounded send queues;
// heartbeats on one timing wheel; all subscriptions multiplexed over a
// fixed pool of gRPC streams to the push-servers (server-pool.ts).
// Stats, drain and live config are on a separate admin listener (admin-api.ts).
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type RawData } from 'ws';
import type { GatewayConfig } from '../common/config.ts';
import type { RoleContext, RoleHandle } from '../common/run-role.ts';
import { createJsonServer, listen, closeServer, sendJson, fetchJson } from '../common/http.ts';
import { clusterAuth } from '../common/admin-http.ts';
import { createGatewayAdmin } from './admin-api.ts';
import { Heartbeat } from '../common/heartbeat.ts';
import { ProcessStats } from '../common/process-stats.ts';
import { RoleMetrics } from '../common/metrics.ts';
import { gatewayMetrics } from '../common/metrics-roles.ts';
import { selfRecord, type NodeRecord } from '../common/registry.ts';
import type { ClientConn } from './client-conn.ts';
import { Sessions } from './sessions.ts';
import { Authenticator, describeAuth, resolveAuthConfig, type Identity } from './auth.ts';
import { binanceStreamName, type ParsedTopic } from '../common/topics.ts';
import { OrderStreams } from './orders.ts';
import { UserDataStreams, unavailableUserDataRoutes } from './user-data.ts';
import { WsApi, WS_API_PATH } from './ws-api.ts';
import { NatsBus } from '../common/nats-bus.ts';
import { createTcpApi } from './tcp-api.ts';
import { startGrpcApi } from './grpc-api.ts';
import { createGrpcWebApi, PUSH_SERVICE_PATH } from './grpc-web-api.ts';
import { createDemo } from './demo.ts';
import { WsTransport } from './transport.ts';
import { destroyOnError, SessionSocket, wsBinder } from './ws-session.ts';
import { applyHttpTimeouts } from './socket-timeouts.ts';
import { MemoryReclaim } from './memory-reclaim.ts';
import { TopicHub } from './topic-hub.ts';
import { SessionTap } from './session-tap.ts';
import { ServerPool } from './server-pool.ts';
import { KlineProxy } from '../history/gateway-proxy.ts';
import { handleKlinesGrpcWeb, KLINE_HISTORY_PATH, klineHistoryService } from '../history/grpc-klines.ts';
import { controlFrame, type ClientFormat } from './codec.ts';
import { combinedStreams, timeUnitMicros, parseJsonRequest, parseProtobufRequest, wsPathStreams, type Command, type RequestError } from './protocol.ts';
import { marketRoutes } from './rest-market.ts';
import { httpScheme, loadTlsFiles, wsScheme } from '../common/tls.ts';
import { setPair, watchTlsFiles, type SecureContextHolder } from '../common/tls-reload.ts';

export async function startGateway(config: GatewayConfig, ctx: RoleContext): Promise<RoleHandle> {
  const { log } = ctx;
  if (config.routers.length === 0) throw new Error('push-gateway needs at least one router URL (config.routers) to find servers');
  // One certificate for every client port (HTTP/WebSocket, gRPC, raw TCP); read first so a bad file fails the start at once.
  const tls = config.tls ? loadTlsFiles(config.tls) : undefined;
  const stats = new ProcessStats();
  const startedAt = Date.now();
  let draining = false;
  let symbols = new Set<string>();
  const drainTimers = new Set<NodeJS.Timeout>();
  const tap = new SessionTap(config.id);
  // Every call to a router or a server proves this is a role of the cluster.
  const auth = clusterAuth(ctx.secrets);

  const resyncFrame = (c: ClientConn, topic: string, reason: string, lastSeq = 0) => {
    stats.count('resync_notices');
    c.send(controlFrame(c.format, { e: 'resync', E: Date.now(), stream: binanceStreamName(topic), reason, lastSeq }, { case: 'resync', value: { topic, reason, lastSeq: BigInt(lastSeq) } }));
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
    auth,
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
        const body = await fetchJson<{ symbols: string[] }>(`${r}/v1/symbols`, { timeoutMs: 2_000, headers: auth });
        symbols = new Set(body.symbols);
        return;
      } catch {
        // next router
      }
    }
  };
  await refreshSymbols();
  // Every 5 s, or every 250 ms while the list is still empty (the feed's first heartbeat is due).
  let lastRefresh = Date.now();
  const symbolTimer = setInterval(() => {
    if (symbols.size > 0 && Date.now() - lastRefresh < 5_000) return;
    lastRefresh = Date.now();
    void refreshSymbols();
  }, 250);
  symbolTimer.unref();
  await pool.start();

  const clientAuth = new Authenticator(resolveAuthConfig(config.auth, ctx.secrets), { onWarning: (msg) => log.warn(msg) });
  log.info('client tokens', { keys: describeAuth(config.auth) });
  // Private order streams need JetStream: available when this gateway has a NATS connection.
  const orders = ctx.bus instanceof NatsBus ? await OrderStreams.open(ctx.bus.nc, log, stats, config.natsReplicas ?? 1) : undefined;
  // Binance's listenKey user-data streams (user-data.ts), on the same JetStream.
  const userData = ctx.bus instanceof NatsBus
    ? await UserDataStreams.open({ nc: ctx.bus.nc, log, stats, ...(config.apiKeysFile ? { apiKeysFile: config.apiKeysFile } : {}), listenKeyTtlMs: config.listenKeyTtlMs ?? 3_600_000, natsReplicas: config.natsReplicas ?? 1, maxPayloadBytes: config.maxPayloadBytes, weightPerMinute: config.restWeightPerMinute, maxBufferedBytes: config.sendQueueBytes })
    : undefined;
  // Binance's WebSocket API for user data (ws-api.ts: what ccxt's watchOrders/watchBalance use).
  const wsApi = ctx.bus instanceof NatsBus ? new WsApi({ nc: ctx.bus.nc, log, stats, ...(config.apiKeysFile ? { apiKeysFile: config.apiKeysFile } : {}), maxPayloadBytes: config.maxPayloadBytes, weightPerMinute: config.restWeightPerMinute, maxBufferedBytes: config.sendQueueBytes }) : undefined;
  // Prometheus figures (GET /metrics on the admin listener), read from what the gateway already counts.
  const metrics = new RoleMetrics({ role: 'gateway', id: config.id, stats, log, ...(ctx.bus ? { bus: ctx.bus } : {}) });
  const metered = gatewayMetrics(metrics, {
    stats,
    conns: () => conns,
    topics: () => hub.topicCount,
    fanoutPending: () => hub.fanoutPending,
    fanoutSlices: hub.fanoutSliceTimes,
    arrival: hub.arrival.buckets,
    egress: hub.egress.buckets,
    restInFlight: () => klines.inFlight,
    draining: () => draining,
  });
  const sessions = new Sessions({ config, hub, stats, log, tap, symbols: () => symbols, auth: clientAuth, onClose: metered.closed, ...(orders ? { orders } : {}) });
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

  // --- HTTP: REST and the WebSocket upgrade (the client port); stats and actions on the admin listener
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
      rest: { inFlight: klines.inFlight, refused: klines.refused },
      memoryMb: { ...Object.fromEntries(Object.entries(process.memoryUsage()).map(([k, v]) => [k, Math.round(v / 1048576)])), reclaims: reclaim.collections },
      logDropped: log.dropped,
      counters: stats.counters(),
    };
  };
  const klines = new KlineProxy({ routers: config.routers, auth, maxInFlight: config.restMaxInFlight, retryAfterSec: config.restRetryAfterSec });
  const marketApi = marketRoutes({ symbols: () => symbols, servers: klines, inboundRatePerSec: config.inboundRatePerSec, weightPerMinute: config.restWeightPerMinute });
  const reclaim = new MemoryReclaim({ load: () => conns.size + klines.inFlight });
  reclaim.start();
  const http = createJsonServer({
    // Up or not, and draining, and not before it knows the symbols (until then it could only refuse every stream);
    // no topology on the client port (the id lets the router's probe tell a new process on this port).
    'GET /healthz': (_q, res) =>
      sendJson(res, draining || symbols.size === 0 ? 503 : 200, { ok: !draining && symbols.size > 0, id: config.id, draining, symbols: symbols.size, degraded: klines.degraded() }),
    ...marketApi,
    ...(userData?.routes ?? unavailableUserDataRoutes()),
    [`POST ${KLINE_HISTORY_PATH}*`]: (req, res) => handleKlinesGrpcWeb(klines, req, res),
    [`OPTIONS ${KLINE_HISTORY_PATH}*`]: (req, res) => handleKlinesGrpcWeb(klines, req, res),
    [`POST ${PUSH_SERVICE_PATH}*`]: (req, res) => grpcWeb.handle(req, res),
    [`OPTIONS ${PUSH_SERVICE_PATH}*`]: (req, res) => grpcWeb.handle(req, res),
    'GET /demo': (_q, res) => void res.writeHead(302, { location: '/demo/' }).end(),
    'GET /demo/*': createDemo({ routers: config.clientRouters ?? [] }),
  }, tls);
  const admin = createGatewayAdmin({
    config,
    secrets: ctx.secrets,
    hub,
    tap,
    stats: statsBody,
    isDraining: () => draining,
    setDraining: (on) => setDraining(on),
    connections: () => conns.size,
    setAcceptRate: (perSec) => sessions.setAcceptRate(perSec),
    metrics,
  });

  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: config.maxPayloadBytes, clientTracking: false, WebSocket: SessionSocket });

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
    // A shared listener: a closure here would keep this handler's scope (req, url, head) for the socket's life.
    socket.on('error', destroyOnError);
    const url = new URL(req.url ?? '/', 'http://gateway');
    let streams: string[];
    let format: ClientFormat;
    if (url.pathname === '/stream') {
      streams = combinedStreams(url);
      format = 'combined';
    } else if (url.pathname === '/ws' || url.pathname.startsWith('/ws/')) {
      streams = wsPathStreams(url.pathname);
      format = 'raw';
    } else if (url.pathname === WS_API_PATH) {
      [streams, format] = [[], 'raw'];
    } else {
      return rejectUpgrade(socket, 404, `no WebSocket endpoint at ${url.pathname}: use /ws/<stream>, /stream?streams=<a>/<b> or ${WS_API_PATH}`);
    }
    const fmt = url.searchParams.get('format');
    if (fmt === 'protobuf') format = 'protobuf';
    else if (fmt !== null && fmt !== 'json') return rejectUpgrade(socket, 400, `unknown format "${fmt}": use json or protobuf`);
    const micros = timeUnitMicros(url);
    if (typeof micros === 'string') return rejectUpgrade(socket, 400, micros);
    if (micros && format === 'protobuf') return rejectUpgrade(socket, 400, 'timeUnit applies to JSON streams: protobuf events carry µs (publish_time_us) already');
    if (draining) return rejectUpgrade(socket, 503, 'gateway draining: ask the router for another gateway', 1);
    const refused = sessions.admit();
    if (refused) return rejectUpgrade(socket, 503, refused, 1 + Math.floor(Math.random() * 3));
    if (userData?.handleUpgrade(req, socket, head, url)) return;
    if (url.pathname === WS_API_PATH) return wsApi ? wsApi.handleUpgrade(req, socket, head, url) : rejectUpgrade(socket, 503, 'the WebSocket API (user data) needs NATS JetStream; this gateway runs without it (embedded bus)');
    const checked = sessions.checkTopics(streams);
    if (typeof checked === 'string') return rejectUpgrade(socket, 400, checked);
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    void sessions.verifyAtConnect(bearer ?? url.searchParams.get('token') ?? undefined).then((identity) => {
      if (typeof identity === 'string') return rejectUpgrade(socket, 401, identity);
      if (socket.destroyed) return;
      upgrade(req, socket, head, format, checked, identity, micros);
    });
  });

  const binder = wsBinder({
    sessions,
    request: wsRequest,
    onSocketError: (c, err) => {
      stats.count('socket_errors');
      log.debug('client socket error', { conn: c.id, err: err.message });
    },
  });
  // Nothing of the upgrade (request, headers, URL) stays reachable from the connection: ws-session.ts.
  const upgrade = (req: IncomingMessage, socket: Socket, head: Buffer, format: ClientFormat, checked: ParsedTopic[], identity: Identity | undefined, micros: boolean) =>
    wss.handleUpgrade(req, socket, head, (ws) => binder.bind(ws as SessionSocket, socket, sessions.open(new WsTransport(ws, socket), format, checked, identity, micros)));

  applyHttpTimeouts(http, config, stats);
  const port = await listen(http, config.port, config.host);
  const adminHost = config.adminHost ?? config.host;
  const adminPort = await listen(admin, config.adminPort, adminHost);
  const isDraining = () => draining;
  const tcp = config.tcpPort >= 0
    ? createTcpApi({ sessions, maxFrameBytes: config.maxPayloadBytes, isDraining, onError: () => stats.count('socket_errors'), tls, helloTimeoutMs: config.tcpHelloTimeoutMs, onHelloTimeout: () => stats.count('hello_timeouts') })
    : undefined;
  const tcpPort = tcp ? await listen(tcp.server, config.tcpPort, config.host) : undefined;
  const grpcApi = config.grpcPort >= 0 ? await startGrpcApi({ sessions, host: config.host, port: config.grpcPort, maxFrameBytes: config.maxPayloadBytes, isDraining, symbols: () => symbols, extraServices: [klineHistoryService(klines)], tls, idleTimeoutMs: config.grpcIdleTimeoutMs, keepaliveMs: config.grpcKeepaliveMs, keepaliveTimeoutMs: config.grpcKeepaliveTimeoutMs }) : undefined;
  // A renewed certificate (SIGHUP or the files changing) reaches every client port without a restart.
  const tlsReload = config.tls && tls
    ? watchTlsFiles(config.tls, tls, [setPair(http as SecureContextHolder), ...(tcp ? [setPair(tcp.server as unknown as SecureContextHolder)] : []), ...(grpcApi ? [grpcApi.setTls] : [])], log)
    : undefined;

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
  const base = `${config.host}:${port}`;
  const urls: Record<string, string> = { ws: `${wsScheme(tls)}://${base}`, http: `${httpScheme(tls)}://${base}`, 'grpc-web': `${httpScheme(tls)}://${base}` };
  urls.admin = `http://${adminHost}:${adminPort}`;
  // Over TLS these carry a scheme (tls://, grpcs://) so a client knows to handshake; plain ones stay host:port.
  if (tcpPort !== undefined) urls.tcp = `${tls ? 'tls://' : ''}${config.host}:${tcpPort}`;
  if (grpcApi) urls.grpc = `${tls ? 'grpcs://' : ''}${config.host}:${grpcApi.port}`;
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
  const heartbeat = new Heartbeat({ routers: config.routers, intervalMs: config.heartbeatMs, record, log, auth });
  await heartbeat.start();

  return {
    urls,
    stop: async () => {
      clearInterval(sampler);
      clearInterval(symbolTimer);
      tlsReload?.stop();
      reclaim.stop();
      for (const t of drainTimers) clearTimeout(t);
      tap.stop();
      await heartbeat.stop();
      sessions.closeAll(1001, 'gateway shutting down');
      await orders?.stop();
      await userData?.stop();
      await wsApi?.stop();
      await tcp?.close();
      await grpcApi?.stop();
      pool.stop();
      hub.stop();
      wss.close();
      await closeServer(http);
      await closeServer(admin);
      metrics.stop();
      stats.stop();
    },
  };
}
