// The four systems bench:peers compares, each started fresh for a step and
// stopped after it, all driven by the same load fleet: the bare `ws` server
// (paced), market-push (the real pipeline), Socket.IO 4 + Redis with a
// separate publisher, and nginx + nchan with an HTTP publisher.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis } from '../../../test/helpers/servers.ts';
import { BenchChild } from '../child.ts';
import type { LoadFleet } from '../load-fleet.ts';
import { startPipeline, type OnCleanup } from '../pipeline.ts';
import { streamUrl, type SubscriptionPlan } from '../subscriptions.ts';
import { socketIoUrl } from './engineio.ts';
import { nchanSubscribeUrl } from './nchan-config.ts';
import { startNchan } from './nchan.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const RAW_ENTRY = join(HERE, '..', 'raw-broadcast-server.ts');
const SIO_ENTRY = join(HERE, 'socketio-server.ts');
const PUB_ENTRY = join(HERE, 'publisher.ts');

export const SYSTEMS = ['bare-ws', 'market-push', 'socketio', 'nchan'] as const;
export type SystemName = (typeof SYSTEMS)[number];

export interface ConnectResult {
  open: number;
  failed: number;
  errors: string[];
}

export interface RunningSystem {
  name: SystemName;
  /** Every process of the system (the load clients are not in it): its CPU is the system's cost. */
  procs: Record<string, number>;
  /** The processes holding connections and subscriptions, for memory per idle connection. */
  memProcs: Record<string, number>;
  /** Opens the plan's connections, each subscribed to its topics. */
  connect(plan: SubscriptionPlan, timeoutMs: number): Promise<ConnectResult>;
  /** Intended trades per second per symbol; 0 stops publishing. */
  setRate(rate: number): Promise<void>;
  /** Heap of the connection-holding process, where it can tell. */
  heapBytes(): Promise<number | undefined>;
  /** A separate publisher's counts since it started: what it sent and what the peer refused or lost. */
  publisherStats?(): Promise<PublisherStats>;
  stop(): Promise<void>;
}

export interface SystemContext {
  symbols: string[];
  fleet: LoadFleet;
  capMs: number;
  onCleanup: OnCleanup;
  nchanWorkers: number;
  /** nchan's per-worker connection limit: above the idle-memory connection count. */
  maxConnections: number;
}

export interface PublisherStats {
  published: number;
  failures: number;
  lastError: string;
}

const statsOf = async (pub: BenchChild): Promise<PublisherStats> => {
  const r = await pub.request({ type: 'stats' }, 5_000);
  return { published: Number(r.published), failures: Number(r.failures), lastError: String(r.lastError ?? '') };
};

type Starter = (ctx: SystemContext) => Promise<RunningSystem>;

/** Stops once, also when registered with the caller's cleanup list. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
}

async function startPublisher(ctx: SystemContext, kind: 'socketio' | 'nchan', target: string): Promise<BenchChild> {
  const pub = new BenchChild(`${kind}-publisher`, PUB_ENTRY, [JSON.stringify({ kind, symbols: ctx.symbols, target, maxMs: ctx.capMs })]);
  ctx.onCleanup(`${kind} publisher`, () => pub.kill());
  await pub.waitFor('ready', 20_000);
  return pub;
}

const bareWs: Starter = async (ctx) => {
  // Paced mode, no credit window: clients send nothing back, as with every other system.
  const raw = new BenchChild('bare-ws', RAW_ENTRY, [JSON.stringify({ symbols: ctx.symbols, format: 'json', maxMs: ctx.capMs, highWaterBytes: 1 << 30, ackEvery: 0, window: Number.MAX_SAFE_INTEGER })]);
  ctx.onCleanup('bare ws server', () => raw.kill());
  const { port } = await raw.waitFor<{ type: 'ready'; port: number }>('ready', 20_000);
  return {
    name: 'bare-ws',
    procs: { 'bare-ws': raw.pid },
    memProcs: { 'bare-ws': raw.pid },
    connect: (plan, t) => ctx.fleet.connect(plan.clients.map((s) => streamUrl(`ws://127.0.0.1:${port}`, s, 'json')), t),
    setRate: async (rate) => {
      await raw.request({ type: 'stop' }, 5_000);
      if (rate > 0) await raw.request({ type: 'start', rate }, 5_000);
    },
    heapBytes: async () => undefined,
    stop: once(async () => {
      await ctx.fleet.closeConnections();
      await raw.kill();
    }),
  };
};

const marketPush: Starter = async (ctx) => {
  const plan0 = { symbols: ctx.symbols, clients: [], subscribersPerSymbol: [], totalSubscriptions: 0 };
  const pipe = await startPipeline(
    { clients: 0, symbols: ctx.symbols.length, format: 'json', profile: new Set(), pin: {}, busTap: false, connectClients: false },
    plan0, ctx.fleet, 0, '', ctx.capMs, ctx.onCleanup,
  );
  const procs = Object.fromEntries(Object.entries(pipe.procs).filter(([k]) => !k.startsWith('load-clients')));
  return {
    name: 'market-push',
    procs,
    memProcs: { 'market-push gateway': procs.gateway!, 'market-push server': procs.server! },
    connect: async (plan, t) => {
      const r = await ctx.fleet.connect(plan.clients.map((s) => streamUrl(pipe.gatewayUrl, s, 'json')), t);
      // Let the gateway's upstream subscriptions settle.
      await new Promise((res) => setTimeout(res, 1_000));
      return r;
    },
    setRate: async (rate) => void (await pipe.setRate(rate)),
    heapBytes: async () => undefined,
    stop: once(() => pipe.stop()),
  };
};

const socketIo: Starter = async (ctx) => {
  const redis = await startRedis();
  ctx.onCleanup('socket.io redis-server', () => redis.stop());
  const server = new BenchChild('socketio-server', SIO_ENTRY, [JSON.stringify({ redisUrl: redis.url, maxMs: ctx.capMs })]);
  ctx.onCleanup('socket.io server', () => server.kill());
  const { port } = await server.waitFor<{ type: 'ready'; port: number }>('ready', 20_000);
  const pub = await startPublisher(ctx, 'socketio', redis.url);
  return {
    name: 'socketio',
    procs: { 'socketio-server': server.pid, 'socketio-publisher': pub.pid, redis: redis.proc.pid ?? 0 },
    memProcs: { 'socketio-server': server.pid },
    connect: (plan, t) => ctx.fleet.connect(plan.clients.map(() => socketIoUrl(`ws://127.0.0.1:${port}`)), t, 0, 'socketio', plan.clients),
    setRate: async (rate) => void (await pub.request({ type: 'rate', rate }, 5_000)),
    heapBytes: async () => (await server.request<{ type: 'mem'; heapUsed: number }>({ type: 'mem' }, 5_000)).heapUsed,
    publisherStats: () => statsOf(pub),
    stop: once(async () => {
      await ctx.fleet.closeConnections();
      await pub.kill();
      await server.kill();
      await redis.stop();
    }),
  };
};

const nchan: Starter = async (ctx) => {
  const ng = await startNchan(ctx.nchanWorkers, ctx.maxConnections + 1_024);
  ctx.onCleanup('nginx + nchan', () => ng.stop());
  const pub = await startPublisher(ctx, 'nchan', `http://${ng.base}`);
  return {
    name: 'nchan',
    procs: { nginx: ng.pid, 'nchan-publisher': pub.pid },
    memProcs: { nginx: ng.pid },
    connect: (plan, t) => ctx.fleet.connect(plan.clients.map((s) => nchanSubscribeUrl(`ws://${ng.base}`, s)), t),
    setRate: async (rate) => void (await pub.request({ type: 'rate', rate }, 5_000)),
    heapBytes: async () => undefined,
    publisherStats: () => statsOf(pub),
    stop: once(async () => {
      await ctx.fleet.closeConnections();
      await pub.kill();
      await ng.stop();
    }),
  };
};

const STARTERS: Record<SystemName, Starter> = { 'bare-ws': bareWs, 'market-push': marketPush, socketio: socketIo, nchan };

export async function startSystem(name: SystemName, ctx: SystemContext): Promise<RunningSystem> {
  const s = await STARTERS[name](ctx);
  ctx.onCleanup(name, s.stop);
  return s;
}

