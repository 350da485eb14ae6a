// The feed role: runs the market simulator against the wall clock and
// publishes every event, encoded once, on its bus subject. Each turn catches
// up to now, but never emits more than a bounded batch, so the event loop
// keeps serving its admin API; a publisher that cannot keep up reports lag
// (events still carry their intended time) instead of skipping events.
import { toBinary } from '@bufbuild/protobuf';
import { EventSchema, type Event } from '../../proto/gen/market_pb.js';
import type { FeedConfig } from '../common/config.ts';
import { Heartbeat } from '../common/heartbeat.ts';
import { closeServer, HttpError, listen, readJson, sendJson } from '../common/http.ts';
import { clusterAuth, createAdminServer } from '../common/admin-http.ts';
import { ProcessStats } from '../common/process-stats.ts';
import { RoleMetrics } from '../common/metrics.ts';
import { feedMetrics } from '../common/metrics-roles.ts';
import { selfRecord, type NodeRecord } from '../common/registry.ts';
import type { RoleContext, RoleHandle } from '../common/run-role.ts';
import { defaultSymbols, KLINE_INTERVALS, KLINE_TZ_SUFFIX } from '../common/topics.ts';
import { MarketSimulator } from './simulator.ts';
import { closedKlinePublisherFor } from '../history/kline-stream.ts';
import { startOrderFlow, type OrderFlowHandle } from './order-flow-role.ts';
import { startReplayFeed } from './replay-feed.ts';

/** FeedConfig plus what a caller may pin: an explicit symbol list, the epoch, the per-turn batch. */
export interface FeedOptions extends Omit<FeedConfig, 'symbols'> {
  /** A count (the default symbol set) or explicit lower-case symbols. */
  symbols: number | string[];
  /** Defaults to the start time in ms, so a restarted feed starts a new epoch. */
  epoch?: number;
  maxEventsPerTurn?: number;
}

// Longest sleep between turns; a turn also wakes early for the next due event.
const TICK_MS = 5;
const DEFAULT_MAX_EVENTS_PER_TURN = 1000;
const MAX_RATE = 1_000_000;
const LAG_WARN_MS = 1000;
const LAG_WARN_EVERY_MS = 10_000;
const ARCHIVED = new Set<string>(KLINE_INTERVALS);

export async function startFeed(config: FeedOptions, ctx: RoleContext): Promise<RoleHandle> {
  // `--feed replay:FILE`: recorded data instead of the simulator (replay-feed.ts).
  if (config.replay) return startReplayFeed({ ...config, replay: config.replay }, ctx);
  const { log, bus } = ctx;
  if (!bus) throw new Error('the feed needs a bus: set "nats" in its config (or run it embedded on the in-memory bus)');
  const symbols = Array.isArray(config.symbols) ? config.symbols.map((s) => s.toLowerCase()) : defaultSymbols(config.symbols);
  const startedAt = Date.now();
  const epoch = config.epoch ?? startedAt;
  const maxPerTurn = config.maxEventsPerTurn ?? DEFAULT_MAX_EVENTS_PER_TURN;
  const minTurnMs = Math.max(1, config.publishIntervalMs);
  const sim = new MarketSimulator({
    symbols,
    rate: config.rate,
    tickerMs: config.tickerMs,
    klineMs: config.klineMs,
    depthSnapshotMs: config.depthSnapshotMs,
    depthLevels: config.depthLevels,
    seed: config.seed,
    epoch,
    startTimeMs: startedAt,
  });
  const stats = new ProcessStats();
  let lagMs = 0;
  let maxLagMs = 0; // worst over the current stats interval
  let lastLagWarn = 0;
  let adminUrl = '';

  const closedKlines = await closedKlinePublisherFor(bus, config.natsReplicas ?? 1, log);

  // Simulated users trading against the same books (order-flow-role.ts).
  const orderFlow: OrderFlowHandle | undefined = await startOrderFlow(config, { bus, log, symbols: sim.symbols, startTimeMs: startedAt });

  const publish = (subject: string, event: Event): void => {
    orderFlow?.onMarketEvent(event);
    const data = toBinary(EventSchema, event);
    bus.publish(subject, data);
    stats.count('bytes', data.length);
    const p = event.payload;
    // Only the UTC intervals the history keeps are archived (not 1s, not the +08:00 candles).
    if (closedKlines && p.case === 'kline' && p.value.closed && ARCHIVED.has(p.value.interval) && !event.topic.endsWith(KLINE_TZ_SUFFIX)) closedKlines.publish(p.value.symbol, p.value.interval, Number(p.value.openTime), data);
  };

  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const turn = (): void => {
    timer = undefined;
    if (stopped) return;
    const now = Date.now();
    try {
      stats.count('events', sim.advanceTo(now, publish, maxPerTurn));
      orderFlow?.advanceTo(Math.min(now, sim.nextEventTimeMs()));
    } catch (err) {
      log.error('publish failed', { err: err instanceof Error ? err.message : String(err) });
    }
    const next = sim.nextEventTimeMs();
    lagMs = next <= now ? now - next : 0;
    if (lagMs > maxLagMs) maxLagMs = lagMs;
    // Behind: yield to I/O and continue at once. On time: sleep until the next event is due.
    const delay = next <= now ? 0 : Math.min(Math.max(TICK_MS, minTurnMs), Math.max(minTurnMs, Math.ceil(next - now)));
    if (!stopped) timer = setTimeout(turn, delay);
  };

  const sampler = setInterval(() => {
    stats.sample();
    const now = Date.now();
    if (maxLagMs > LAG_WARN_MS && now - lastLagWarn > LAG_WARN_EVERY_MS) {
      lastLagWarn = now;
      log.warn('feed is behind schedule', { maxLagMs, rate: sim.rate, symbols: symbols.length, eventsPerSec: Math.round(stats.rate('events')) });
    }
    maxLagMs = lagMs;
  }, 1000);
  sampler.unref();

  const statsBody = () => ({
    id: config.id,
    role: 'feed',
    epoch,
    bus: bus.kind,
    symbols: symbols.length,
    rate: sim.rate,
    tradesPerSec: sim.rate * symbols.length,
    eventsPublished: stats.counter('events'),
    closedKlinesStored: closedKlines?.published ?? 0,
    closedKlinesFailed: closedKlines?.failed ?? 0,
    eventsPerSec: Math.round(stats.rate('events')),
    bytesPublished: stats.counter('bytes'),
    bytesPerSec: Math.round(stats.rate('bytes')),
    lagMs,
    maxLagMs,
    maxEventsPerTurn: maxPerTurn,
    orderFlow: orderFlow?.stats() ?? { users: 0 },
    cpu: stats.cpu,
    eventLoopP99Ms: stats.eventLoopP99Ms,
    gcMaxPauseMs: stats.gcMaxPauseMs,
    gcPauseTotalMs: Math.round(stats.gcPauseTotalMs),
    rssMb: Math.round(stats.rssMb()),
    startedAt,
  });

  const metrics = new RoleMetrics({ role: 'feed', id: config.id, stats, log, bus });
  feedMetrics(metrics, { stats, symbols: () => symbols.length, rate: () => sim.rate, lagMs: () => lagMs });
  const server = createAdminServer({
    metrics: metrics.routes(),
    public: { 'GET /healthz': (_req, res) => sendJson(res, 200, { ok: true, id: config.id, role: 'feed', lagMs }) },
    cluster: { 'GET /symbols': (_req, res) => sendJson(res, 200, { symbols: sim.symbolsInfo() }) },
    admin: {
    'GET /stats': (_req, res) => sendJson(res, 200, statsBody()),
    'POST /admin/config': async (req, res) => {
      const body = await readJson<Record<string, unknown>>(req);
      if (body === null || typeof body !== 'object' || Array.isArray(body) || !('rate' in body)) {
        throw new HttpError(400, 'nothing to change: the feed supports {"rate": <trades per second per symbol>}');
      }
      const unknown = Object.keys(body).filter((k) => k !== 'rate');
      if (unknown.length > 0) throw new HttpError(400, `not live-configurable: ${unknown.join(', ')} (supported: rate)`);
      const rate = body.rate;
      if (typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0 || rate > MAX_RATE) {
        throw new HttpError(400, `rate must be a number between 0 and ${MAX_RATE}`);
      }
      const from = sim.rate;
      sim.setRate(rate);
      log.info('rate changed', { from, to: rate });
      sendJson(res, 200, { ok: true, rate });
    },
    // A feed has no clients to hand over; accepted so tooling can drain every role alike.
    'POST /admin/drain': (_req, res) => sendJson(res, 200, { ok: true, draining: false }),
    },
  }, ctx.secrets);
  let heartbeat: Heartbeat | undefined;
  try {
    const adminHost = config.adminHost ?? config.host;
    const port = await listen(server, config.adminPort, adminHost);
    adminUrl = `http://${adminHost}:${port}`;
  } catch (err) {
    clearInterval(sampler);
    metrics.stop();
    stats.stop();
    throw new Error(`feed admin port ${config.host}:${config.adminPort}: ${err instanceof Error ? err.message : String(err)}`);
  }

  // Silent: the simulator never runs, so nothing reaches the bus (its admin API and heartbeats still do).
  if (!config.silent) timer = setTimeout(turn, 0);

  const record = (): NodeRecord =>
    selfRecord({ id: config.id, role: 'feed', urls: { admin: adminUrl }, startedAt, stats, load: { msgsOutPerSec: stats.rate('events') }, meta: { symbols, epoch } });
  if (config.routers.length > 0) {
    heartbeat = new Heartbeat({ routers: config.routers, intervalMs: config.heartbeatMs, record, log, auth: clusterAuth(ctx.secrets) });
    if (!(await heartbeat.start())) log.warn('no router accepted the first heartbeat; retrying', { routers: config.routers });
  }
  log.info('feed started', { symbols: symbols.length, rate: sim.rate, silent: config.silent === true, epoch, admin: adminUrl, bus: bus.kind });

  return {
    urls: { admin: adminUrl },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      clearInterval(sampler);
      await heartbeat?.stop();
      await closeServer(server);
      await orderFlow?.stop();
      try {
        await bus.flush();
      } catch {
        // the bus may already be gone; nothing left to deliver then
      }
      metrics.stop();
      stats.stop();
    },
  };
}
