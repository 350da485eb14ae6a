// The feed role replaying recorded data (`pushctl up --feed replay:FILE`):
// the files are read through first (a malformed row fails the start, naming
// file and line; skipped lines are counted and logged), their symbols become
// the feed's symbol list (router /v1/symbols, hence exchangeInfo and the
// gateways' checks), then the player publishes every event on the subject the
// simulator uses, paced by the original timestamps ÷ speed. Derived topics
// (@aggTrade from @trade, partial depth, avgPrice, …) come from the servers
// as they do for the simulator.
import { toBinary } from '@bufbuild/protobuf';
import { EventSchema, type Event } from '../../proto/gen/market_pb.js';
import type { ReplayConfig } from '../common/config.ts';
import { Heartbeat } from '../common/heartbeat.ts';
import { closeServer, HttpError, listen, sendJson } from '../common/http.ts';
import { clusterAuth, createAdminServer } from '../common/admin-http.ts';
import { ProcessStats } from '../common/process-stats.ts';
import { RoleMetrics } from '../common/metrics.ts';
import { feedMetrics } from '../common/metrics-roles.ts';
import { selfRecord, type NodeRecord } from '../common/registry.ts';
import type { RoleContext, RoleHandle } from '../common/run-role.ts';
import { symbolInfo } from '../common/symbols.ts';
import { KLINE_INTERVALS } from '../common/topics.ts';
import { closedKlinePublisherFor } from '../history/kline-stream.ts';
import type { FeedOptions } from './feed.ts';
import { ReplayPlayer } from './replay-player.ts';
import { scanReplayFile, summaryLine, type ReplayFileSummary } from './replay-source.ts';

const TICK_MS = 5;
const DEFAULT_MAX_EVENTS_PER_TURN = 1000;
const ARCHIVED = new Set<string>(KLINE_INTERVALS);

export async function startReplayFeed(config: FeedOptions & { replay: ReplayConfig }, ctx: RoleContext): Promise<RoleHandle> {
  const { log, bus } = ctx;
  if (!bus) throw new Error('the feed needs a bus: set "nats" in its config (or run it embedded on the in-memory bus)');
  const replay = config.replay;
  const scans: ReplayFileSummary[] = [];
  for (const file of replay.files) scans.push(await scanReplayFile(file, replay.symbol ? { symbol: replay.symbol } : {}));
  for (const s of scans) {
    const skipped = Object.values(s.skipped).reduce((a, b) => a + b, 0);
    (skipped > 0 ? log.warn : log.info).call(log, `replay file: ${summaryLine(s, replay.speed)}`, { file: s.path, events: s.events, skipped: s.skipped });
  }
  const symbols = [...new Set(scans.flatMap((s) => s.symbols))].sort();
  if (config.users > 0) log.info('a replaying feed has no order books for simulated users: order flow is off', { users: config.users });

  const startedAt = Date.now();
  const epoch = config.epoch ?? startedAt;
  const maxPerTurn = config.maxEventsPerTurn ?? DEFAULT_MAX_EVENTS_PER_TURN;
  const minTurnMs = Math.max(1, config.publishIntervalMs);
  const player = new ReplayPlayer({
    files: replay.files, speed: replay.speed, loop: replay.loop, ...(replay.symbol ? { symbol: replay.symbol } : {}), epoch, startTimeMs: startedAt,
    // A looped short file ends a pass every few seconds: the first end is news, the rest go to debug (and /stats).
    onPassEnd: (file, pass, events) => (pass === 1 ? log.info : log.debug).call(log, 'replay pass ended', { file, pass, events, loop: replay.loop }),
  });
  const stats = new ProcessStats();
  let lagMs = 0;
  let adminUrl = '';

  const closedKlines = await closedKlinePublisherFor(bus, config.natsReplicas ?? 1, log);

  const publish = (subject: string, event: Event): void => {
    const data = toBinary(EventSchema, event);
    bus.publish(subject, data);
    stats.count('bytes', data.length);
    const p = event.payload;
    // Replayed closed candles of the intervals the history keeps are archived, as the simulator's are.
    if (closedKlines && p.case === 'kline' && p.value.closed && ARCHIVED.has(p.value.interval)) closedKlines.publish(p.value.symbol, p.value.interval, Number(p.value.openTime), data);
  };

  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let finished = false;
  let running: Promise<void> = Promise.resolve();
  const turn = async (): Promise<void> => {
    timer = undefined;
    if (stopped) return;
    const now = Date.now();
    let next = Infinity;
    try {
      stats.count('events', await player.advanceTo(now, publish, maxPerTurn));
      next = await player.nextDueMs();
    } catch (err) {
      // Only a file changed under a running replay gets here (the scan read it whole): stop, loudly.
      log.error('replay stopped', { err: err instanceof Error ? err.message : String(err) });
      await player.close();
      return;
    }
    if (stopped) return;
    if (next === Infinity) {
      if (!finished) log.info('replay finished: every file played', { events: player.eventsEmitted, skipped: player.skipped });
      finished = true;
      lagMs = 0;
      return;
    }
    lagMs = next <= now ? now - next : 0;
    const delay = next <= now ? 0 : Math.min(Math.max(TICK_MS, minTurnMs), Math.max(minTurnMs, Math.ceil(next - now)));
    timer = setTimeout(() => void (running = turn()), delay);
  };

  const sampler = setInterval(() => stats.sample(), 1000);
  sampler.unref();
  const statsBody = () => ({
    id: config.id,
    role: 'feed',
    mode: 'replay',
    epoch,
    bus: bus.kind,
    symbols: symbols.length,
    replay: { files: scans, speed: replay.speed, loop: replay.loop, passes: player.passes(), finished, skippedWhilePlaying: player.skipped },
    eventsPublished: stats.counter('events'),
    eventsPerSec: Math.round(stats.rate('events')),
    bytesPublished: stats.counter('bytes'),
    closedKlinesStored: closedKlines?.published ?? 0,
    lagMs,
    cpu: stats.cpu,
    eventLoopP99Ms: stats.eventLoopP99Ms,
    rssMb: Math.round(stats.rssMb()),
    startedAt,
  });

  const metrics = new RoleMetrics({ role: 'feed', id: config.id, stats, log, bus });
  feedMetrics(metrics, { stats, symbols: () => symbols.length, rate: () => 0, lagMs: () => lagMs });
  const server = createAdminServer({
    metrics: metrics.routes(),
    public: { 'GET /healthz': (_req, res) => sendJson(res, 200, { ok: true, id: config.id, role: 'feed', mode: 'replay', lagMs }) },
    cluster: { 'GET /symbols': (_req, res) => sendJson(res, 200, { symbols: symbols.map((s) => symbolInfo(s)) }) },
    admin: {
      'GET /stats': (_req, res) => sendJson(res, 200, statsBody()),
      'POST /admin/config': () => {
        throw new HttpError(400, 'a replaying feed has nothing live-configurable: its pace is --replay-speed');
      },
      'POST /admin/drain': (_req, res) => sendJson(res, 200, { ok: true, draining: false }),
    },
  }, ctx.secrets);
  try {
    const adminHost = config.adminHost ?? config.host;
    const port = await listen(server, config.adminPort, adminHost);
    adminUrl = `http://${adminHost}:${port}`;
  } catch (err) {
    clearInterval(sampler);
    metrics.stop();
    stats.stop();
    await player.close();
    throw new Error(`feed admin port ${config.host}:${config.adminPort}: ${err instanceof Error ? err.message : String(err)}`);
  }

  let heartbeat: Heartbeat | undefined;
  const record = (): NodeRecord =>
    selfRecord({ id: config.id, role: 'feed', urls: { admin: adminUrl }, startedAt, stats, load: { msgsOutPerSec: stats.rate('events') }, meta: { symbols, epoch } });
  if (config.routers.length > 0) {
    heartbeat = new Heartbeat({ routers: config.routers, intervalMs: config.heartbeatMs, record, log, auth: clusterAuth(ctx.secrets) });
    if (!(await heartbeat.start())) log.warn('no router accepted the first heartbeat; retrying', { routers: config.routers });
  }
  timer = setTimeout(() => void (running = turn()), 0);
  log.info('feed started: replaying', { files: replay.files, speed: replay.speed, loop: replay.loop, symbols, epoch, admin: adminUrl, bus: bus.kind });

  return {
    urls: { admin: adminUrl },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      clearInterval(sampler);
      await running;
      await player.close();
      await heartbeat?.stop();
      await closeServer(server);
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
