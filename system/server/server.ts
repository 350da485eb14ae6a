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
import { linkService, LINK_CHANNEL_OPTIONS, type AttachCall } from '../common/link-service.ts';
import { parseTopic } from '../common/topics.ts';
import { createJsonServer, listen, closeServer, sendJson, readJson } from '../common/http.ts';
import { Heartbeat } from '../common/heartbeat.ts';
import { ProcessStats } from '../common/process-stats.ts';
import { selfRecord, type NodeRecord } from '../common/registry.ts';
import { LinkStream } from './link-stream.ts';
import { HistoryService } from '../history/service.ts';
import type { LinkRequest, TopicPosition } from '../../proto/gen/internal_pb.js';

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
      th = new TopicHistory(topic, config.historySize);
      topics.set(topic, th);
    }
    return th;
  };

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
    // Own the bytes: a view would pin the whole network read buffer in history.
    const bytes = data.slice();
    const th = historyOf(h.topic);
    if (subject.startsWith('md.depthsnap.')) th.setDepthSnapshot(h, bytes);
    else if (!th.add(h, bytes)) return;
    const bound = subs.get(h.topic);
    if (bound) fanout.push(bound, (s) => s.enqueue(bytes));
  });

  // Kline history: memory tier from the bus, warmed from Redis before this server reports healthy.
  const history = new HistoryService({ ...config.history, redis: config.history?.redis ?? config.redis }, bus, log);
  await history.start();

  const bind = (s: LinkStream, pos: TopicPosition) => {
    const parsed = parseTopic(pos.topic);
    if (typeof parsed === 'string') return s.notice(pos.topic, 'unknown_topic', parsed);
    const topic = parsed.topic;
    subs.add(topic, s);
    s.topics.add(topic);
    const th = topics.get(topic);
    if (!th) return; // nothing published yet: the live stream starts it
    const afterSeq = Number(pos.afterSeq);
    if (afterSeq > 0) {
      const missed = th.since(Number(pos.epoch), afterSeq);
      if (missed) {
        for (const b of missed) s.enqueue(b);
        return;
      }
      s.notice(topic, 'resync', 'history no longer covers the requested position');
    }
    for (const b of th.snapshot(parsed.kind).events) s.enqueue(b);
  };

  const unbind = (s: LinkStream, topic: string) => {
    subs.delete(topic, s);
    s.topics.delete(topic);
  };

  const detach = (s: LinkStream) => {
    if (s.closed) return;
    s.closed = true;
    for (const t of s.topics) subs.delete(t, s);
    s.topics.clear();
    streams.delete(s);
    dirty.delete(s);
  };

  const grpcServer = new grpc.Server(LINK_CHANNEL_OPTIONS);
  grpcServer.addService(linkService, {
    attach: (call: AttachCall) => {
      const s = new LinkStream(call, config.streamQueueBytes, markDirty);
      streams.add(s);
      call.on('data', (req: LinkRequest) => {
        const k = req.kind;
        if (k.case === 'hello') s.gatewayId = k.value.gatewayId;
        else if (k.case === 'subscribe') for (const p of k.value.topics) bind(s, p);
        else if (k.case === 'unsubscribe') for (const t of k.value.topics) unbind(s, t.toLowerCase());
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

  const admin = createJsonServer({
    'GET /healthz': (_q, res) => sendJson(res, 200, { ok: true, id: config.id, role: 'server', draining, bus: bus.kind, ...history.health() }),
    'GET /stats': (_q, res) => sendJson(res, 200, { ...statsBody(), history: history.stats() }),
    'GET /api/v3/klines': (q, res, url) => history.handle(q, res, url),
    'POST /admin/drain': async (req, res) => {
      const body = await readJson<{ draining?: boolean }>(req);
      draining = body.draining ?? true;
      log.info(draining ? 'draining: gateways will move their topics away' : 'undrained');
      await heartbeat.beat();
      sendJson(res, 200, { ok: true, id: config.id, draining });
    },
    'POST /admin/config': (_q, res) => sendJson(res, 400, { error: 'push-server has no live-configurable settings' }),
  });
  const adminPort = await listen(admin, config.adminPort, config.host);

  const urls = { grpc: `${config.host}:${grpcPort}`, admin: `http://${config.host}:${adminPort}` };
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
  const heartbeat = new Heartbeat({ routers: config.routers, intervalMs: config.heartbeatMs, record, log });
  await heartbeat.start();

  return {
    urls,
    stop: async () => {
      clearInterval(sampler);
      await heartbeat.stop();
      busSub.unsubscribe();
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
      stats.stop();
    },
  };
}
