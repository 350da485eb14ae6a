// push-server: takes every market event off the bus, remembers the latest
// state and a bounded history per topic, and fans each event out once per
// subscribed gateway stream. Events travel as the bytes they were published
// in; only their header is read here.
import * as grpc from '@grpc/grpc-js';
import type { ServerConfig } from '../common/config.ts';
import type { RoleContext, RoleHandle } from '../common/run-role.ts';
import { readEventHeader } from '../common/event-header.ts';
import { TopicHistory } from '../common/topic-history.ts';
import { ShardedSetMap } from '../common/sharded-map.ts';
import { ChunkedFanout } from '../common/chunked-fanout.ts';
import { linkAuthInterceptor, linkService, LINK_CHANNEL_OPTIONS, type AttachCall } from '../common/link-service.ts';
import { parseTopic } from '../common/topics.ts';
import { HttpError, listen, closeServer, sendJson, readJson } from '../common/http.ts';
import { clusterAuth, createAdminServer } from '../common/admin-http.ts';
import { Heartbeat } from '../common/heartbeat.ts';
import { ProcessStats } from '../common/process-stats.ts';
import { RoleMetrics } from '../common/metrics.ts';
import { serverMetrics } from '../common/metrics-roles.ts';
import { FixedBuckets, LATENCY_BOUNDS_S } from '../common/metrics-buckets.ts';
import { selfRecord, type NodeRecord } from '../common/registry.ts';
import { LinkStream } from './link-stream.ts';
import { DepthBooks } from './depth-book.ts';
import { marketRestRoutes } from './market-rest.ts';
import { DerivedTopics } from './derived-topics.ts';
import { RollingTickers } from './rolling-tickers.ts';
import { rollingTickerRoutes } from './rolling-rest.ts';
import { HistoryService } from '../history/service.ts';
import type { LinkRequest, TopicPosition } from '../../proto/gen/internal_pb.js';

/** Events kept per kline topic for resume by position: 32 s of 1s candles, about 2 minutes of the others. */
const KLINE_HISTORY = 64;

/** A topic as bind() keys it (`1M` keeps its case). */
const normalTopic = (t: string): string => {
  const p = parseTopic(t);
  return typeof p === 'string' ? t.toLowerCase() : p.topic;
};

export async function startServer(config: ServerConfig, ctx: RoleContext): Promise<RoleHandle> {
  const { log } = ctx;
  const bus = ctx.bus;
  if (!bus) throw new Error('push-server needs a bus: give it a NATS URL (config.nats)');
  const stats = new ProcessStats();
  const startedAt = Date.now();
  let draining = false;

  const topics = new Map<string, TopicHistory>();
  const subs = new ShardedSetMap<string, LinkStream>(config.shards);
  const streams = new Set<LinkStream>();
  const dirty = new Set<LinkStream>();
  let flushScheduled = false;

  const flushAll = () => {
    flushScheduled = false;
    for (const s of dirty) s.flush();
    dirty.clear();
  };
  const markDirty = (s: LinkStream) => {
    dirty.add(s);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushAll);
    }
  };
  const fanout = new ChunkedFanout<LinkStream>({ sliceMs: config.fanoutSliceMs, onSliceEnd: flushAll });

  const historyOf = (topic: string) => {
    let th = topics.get(topic);
    if (!th) {
      // Candles are whole states (the next one replaces any missed) and there are 22 a symbol: a short history each.
      th = new TopicHistory(topic, topic.includes('@kline_') ? Math.min(config.historySize, KLINE_HISTORY) : config.historySize);
      topics.set(topic, th);
    }
    return th;
  };

  const depthBooks = new DepthBooks(topics);
  // pt → this server read the event off the bus: the first stage of the latency histograms (once per event).
  const busLatency = new FixedBuckets(LATENCY_BOUNDS_S);
  // Every trade feeds the rolling windows (GET /api/v3/ticker answers at once); their streams are derived.
  const rolling = new RollingTickers();
  const derived = new DerivedTopics({
    historyOf,
    topics,
    rolling,
    deliver: (topic, bytes) => {
      const bound = subs.get(topic);
      if (bound) fanout.push(bound, (s) => s.enqueue(bytes));
    },
    gap: (topic, detail) => {
      const bound = subs.get(topic);
      if (bound) fanout.push(bound, (s) => s.notice(topic, 'gap', detail));
    },
  });

  const busSub = bus.subscribe('md.>', (subject, data) => {
    let h;
    try {
      h = readEventHeader(data);
    } catch (err) {
      stats.count('bad_events');
      log.warn('dropped a malformed bus message', { subject, err: String(err) });
      return;
    }
    stats.count('msgs_in');
    if (h.publishTimeUs > 0) busLatency.observe(Math.max(0, (performance.timeOrigin + performance.now()) * 1000 - h.publishTimeUs) / 1e6);
    // Own the bytes: a view would pin the whole network read buffer in history.
    const bytes = data.slice();
    const th = historyOf(h.topic);
    const bound = subs.get(h.topic);
    let gap: string | undefined;
    if (subject.startsWith('md.depthsnap.')) th.setDepthSnapshot(h, bytes);
    else {
      const after = th.lastSeq;
      const added = th.add(h, bytes);
      if (!added) return;
      if (added === 'after_gap') {
        // This server missed bus messages (e.g. while NATS restarted): nobody downstream can fill
        // them from here, so every gateway is told, in order, before the first event after the hole.
        stats.count('input_gaps');
        const detail = (gap = `push-server ${config.id} missed seq ${after + 1}..${h.seq - 1} on the bus`);
        log.warn('sequence gap on the bus', { topic: h.topic, after, got: h.seq });
        if (bound) fanout.push(bound, (s) => s.notice(h.topic, 'gap', detail));
      }
    }
    if (bound) fanout.push(bound, (s) => s.enqueue(bytes));
    rolling.onBus(subject, h, bytes);
    // After the source event went out: a topic derived from it follows it.
    derived.onSource(h, bytes, subject.startsWith('md.depthsnap.'), gap);
  });

  // Kline history: memory tier from the bus, warmed from Redis before this server reports healthy.
  if (config.redisAuth && !ctx.secrets) throw new Error('redisAuth is set but no secretsFile names the cluster\'s Redis credentials');
  const redisAuth = config.redisAuth ? { redisAuth: ctx.secrets!.redis } : {};
  const history = new HistoryService({ ...config.history, redis: config.history?.redis ?? config.redis, ...redisAuth, ...(config.natsReplicas ? { natsReplicas: config.natsReplicas } : {}) }, bus, log);
  await history.start();

  const bind = (s: LinkStream, pos: TopicPosition) => {
    const parsed = parseTopic(pos.topic);
    if (typeof parsed === 'string') return s.notice(pos.topic, 'unknown_topic', parsed);
    const topic = parsed.topic;
    subs.add(topic, s);
    s.topics.add(topic);
    derived.ensure(parsed);
    const th = topics.get(topic);
    if (!th) return; // nothing published yet: the live stream starts it
    const afterSeq = Number(pos.afterSeq);
    if (afterSeq > 0) {
      const missed = th.since(Number(pos.epoch), afterSeq);
      if (missed) {
        for (const b of missed) s.enqueue(b);
        return;
      }
      s.notice(topic, 'gap', 'history no longer covers the requested position');
    }
    for (const b of th.snapshot(parsed.kind).events) s.enqueue(b);
  };

  const unbind = (s: LinkStream, topic: string) => {
    subs.delete(topic, s);
    s.topics.delete(topic);
    if (!subs.get(topic)?.size) derived.release(topic);
  };

  const detach = (s: LinkStream) => {
    if (s.closed) return;
    s.closed = true;
    for (const t of s.topics) {
      subs.delete(t, s);
      if (!subs.get(t)?.size) derived.release(t);
    }
    s.topics.clear();
    streams.delete(s);
    dirty.delete(s);
  };

  // Links only from the cluster's roles: every call carries the cluster token (UNAUTHENTICATED otherwise).
  const grpcServer = new grpc.Server({
    ...LINK_CHANNEL_OPTIONS,
    interceptors: [linkAuthInterceptor(ctx.secrets, (why, peer) => {
      stats.count('link_refused');
      log.warn('link call refused', { why, peer });
    })],
  });
  grpcServer.addService(linkService, {
    attach: (call: AttachCall) => {
      const s = new LinkStream(call, config.streamQueueBytes, markDirty);
      streams.add(s);
      call.on('data', (req: LinkRequest) => {
        const k = req.kind;
        if (k.case === 'hello') s.gatewayId = k.value.gatewayId;
        else if (k.case === 'subscribe') for (const p of k.value.topics) bind(s, p);
        else if (k.case === 'unsubscribe') for (const t of k.value.topics) unbind(s, normalTopic(t));
        markDirty(s);
      });
      // Unbind on the first sign of the end, before the socket is gone, so nothing writes to a closed stream.
      call.on('cancelled', () => detach(s));
      call.on('error', () => detach(s));
      call.on('end', () => {
        detach(s);
        call.end();
      });
      call.on('close', () => detach(s));
    },
  });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync(`${config.host}:${config.grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(new Error(`push-server could not listen on ${config.host}:${config.grpcPort}: ${err.message}`)) : resolve(port),
    ),
  );

  const subscriptionCount = () => {
    let n = 0;
    for (const s of streams) n += s.topics.size;
    return n;
  };
  const statsBody = () => ({
    id: config.id,
    role: 'server',
    draining,
    topicsKnown: topics.size,
    topicsBound: subs.size,
    topicsDerived: derived.size,
    streams: streams.size,
    gateways: [...new Set([...streams].map((s) => s.gatewayId))],
    subscriptions: subscriptionCount(),
    msgsInPerSec: stats.rate('msgs_in'),
    eventsOutPerSec: stats.rate('events_out'),
    overflows: [...streams].reduce((n, s) => n + s.overflows, 0),
    fanoutYields: fanout.yields,
    cpu: stats.cpu,
    eventLoopP99Ms: stats.eventLoopP99Ms,
    gcMaxPauseMs: stats.gcMaxPauseMs,
    gcPauseTotalMs: Math.round(stats.gcPauseTotalMs),
    rssMb: stats.rssMb(),
    counters: stats.counters(),
  });

  // Prometheus figures (GET /metrics), read from what the server already counts.
  const metrics = new RoleMetrics({ role: 'server', id: config.id, stats, log, bus });
  serverMetrics(metrics, {
    stats,
    streams: () => streams,
    topicsKnown: () => topics.size,
    topicsBound: () => subs.size,
    fanoutPending: () => fanout.pending,
    fanoutSlices: fanout.sliceTimes,
    busLatency,
    history: () => history.stats(),
    readFailures: () => history.reader.failures,
  });
  // Admin listener: health for anyone, market REST (klines, depth, tickers, trades) for gateways (cluster token), the rest for the operator.
  const admin = createAdminServer({
    public: {
      'GET /healthz': (_q, res) => sendJson(res, 200, { ok: true, id: config.id, role: 'server', draining, bus: bus.kind, ...history.health() }),
    },
    cluster: {
      'GET /api/v3/klines': (q, res, url) => history.handle(q, res, url),
      'GET /api/v3/depth': depthBooks.handle,
      ...marketRestRoutes(topics, depthBooks),
      ...rollingTickerRoutes(rolling, topics),
    },
    admin: {
    'GET /stats': (_q, res) => sendJson(res, 200, { ...statsBody(), history: history.stats() }),
    'POST /admin/drain': async (req, res) => {
      const body = await readJson<{ draining?: unknown }>(req);
      if (body.draining !== undefined && typeof body.draining !== 'boolean') throw new HttpError(400, 'draining must be a boolean');
      draining = body.draining ?? true;
      log.info(draining ? 'draining: gateways will move their topics away' : 'undrained');
      await heartbeat.beat();
      sendJson(res, 200, { ok: true, id: config.id, draining });
    },
    'POST /admin/config': async (req, res) => {
      const body = await readJson(req);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'config must be a JSON object');
      const keys = Object.keys(body);
      if (keys.length > 0) throw new HttpError(400, `push-server has no live-changeable settings; got ${keys.join(', ')}`);
      sendJson(res, 200, { ok: true, id: config.id, applied: {} });
    },
    },
    metrics: metrics.routes(),
  }, ctx.secrets);
  const adminHost = config.adminHost ?? config.host;
  const adminPort = await listen(admin, config.adminPort, adminHost);

  const urls = { grpc: `${config.host}:${grpcPort}`, admin: `http://${adminHost}:${adminPort}` };
  let lastEventsOut = 0;
  const record = (): NodeRecord =>
    selfRecord({
      id: config.id,
      role: 'server',
      urls,
      protocols: ['grpc-link'],
      draining,
      startedAt,
      stats,
      load: { connections: streams.size, subscriptions: subscriptionCount(), msgsInPerSec: stats.rate('msgs_in'), msgsOutPerSec: stats.rate('events_out') },
    });
  const sampler = setInterval(() => {
    const out = [...streams].reduce((n, s) => n + s.eventsOut, 0);
    stats.count('events_out', Math.max(0, out - lastEventsOut));
    lastEventsOut = out;
    stats.sample();
  }, 1000);
  sampler.unref();
  const heartbeat = new Heartbeat({ routers: config.routers, intervalMs: config.heartbeatMs, record, log, auth: clusterAuth(ctx.secrets) });
  await heartbeat.start();

  return {
    urls,
    stop: async () => {
      clearInterval(sampler);
      await heartbeat.stop();
      busSub.unsubscribe();
      derived.stop();
      for (const s of streams) s.call.end();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          grpcServer.forceShutdown();
          resolve();
        }, 2_000);
        grpcServer.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      await closeServer(admin);
      await history.stop();
      metrics.stop();
      stats.stop();
    },
  };
}
