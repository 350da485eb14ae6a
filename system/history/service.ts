// Kline history inside a push-server: the memory tier fed from the bus, the
// Redis and cold tiers, the warm-up from Redis before the server reports
// healthy, the archiver, and the Binance REST handler.
import type { Credential } from '../common/secrets.ts';
import { fromBinary } from '@bufbuild/protobuf';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EventSchema } from '../../proto/gen/market_pb.js';
import type { Bus, BusHandler } from '../common/bus.ts';
import { INTERVAL_MS, KLINE_INTERVALS } from '../common/topics.ts';
import { NatsBus } from '../common/nats-bus.ts';
import type { Logger } from '../common/logger.ts';
import { seriesKey, fromMessage, type KlineStore } from './kline.ts';
import { MemoryKlineStore } from './memory-store.ts';
import { RedisKlineStore } from './redis-store.ts';
import { CassandraKlineStore } from './cassandra-store.ts';
import { SqliteKlineStore } from './sqlite-store.ts';
import type { HistoryConfig } from '../common/config.ts';
import { TieredReader } from './tiered.ts';
import { KlineArchiver } from './archiver.ts';
import { PreparedKlines } from './prepared.ts';
import { OpenCandles } from './open-candle.ts';
import { KlineHttp } from './kline-http.ts';

export interface HistoryOptions extends HistoryConfig {
  ackWaitMs?: number;
  /** JetStream replicas of KLINES (config.natsReplicas). */
  natsReplicas?: number;
  /** Redis ACL user (the cluster's secrets.redis); never part of the config on argv. */
  redisAuth?: Credential;
  /** Bytes of final (closed, immutable) answers kept in memory; default 64 MiB, 0 turns the cache off. */
  finalCacheBytes?: number;
}

export const DEFAULT_MEMORY_HORIZON_MS = 24 * 3600_000;
export const DEFAULT_REDIS_HORIZON_MS = 15 * 24 * 3600_000;

export class HistoryService {
  readonly memory: MemoryKlineStore;
  readonly redis?: RedisKlineStore;
  readonly cold?: KlineStore;
  readonly reader: TieredReader;
  readonly archiver?: KlineArchiver;
  readonly memoryHorizonMs: number;
  readonly redisHorizonMs: number;
  readonly prepared: PreparedKlines;
  readonly openCandles: OpenCandles;
  readonly http: KlineHttp;
  #log: Logger;
  #bus: Bus;
  #startedAt = Date.now();
  #warmed = false;
  #firstLive = new Map<string, number>();
  #unsub?: () => void;
  #knownSymbols = new Set<string>();
  #symbolTimer?: NodeJS.Timeout;

  constructor(o: HistoryOptions, bus: Bus, log: Logger) {
    this.#log = log;
    this.#bus = bus;
    this.memoryHorizonMs = o.memoryHorizonMs ?? DEFAULT_MEMORY_HORIZON_MS;
    this.redisHorizonMs = o.redisHorizonMs ?? DEFAULT_REDIS_HORIZON_MS;
    this.memory = new MemoryKlineStore(this.memoryHorizonMs);
    if (o.redis) this.redis = new RedisKlineStore({ url: o.redis, horizonMs: this.redisHorizonMs, ...(o.redisAuth ? { auth: o.redisAuth } : {}) });
    if (o.cassandra) this.cold = new CassandraKlineStore({
        contactPoints: o.cassandra, keyspace: o.keyspace,
        ...(o.cassandraReplication ? { replication: o.cassandraReplication } : {}),
        ...(o.cassandraReadConsistency ? { readConsistency: o.cassandraReadConsistency } : {}),
        ...(o.cassandraWriteConsistency ? { writeConsistency: o.cassandraWriteConsistency } : {}),
      });
    else if (o.embeddedPath) this.cold = new SqliteKlineStore(o.embeddedPath);
    this.reader = new TieredReader({
      memory: this.memory,
      redis: this.redis,
      cold: this.cold,
      redisHorizonMs: this.redisHorizonMs,
      memoryFrom: (s, i) => this.memoryFrom(s, i),
    });
    this.prepared = new PreparedKlines(this.memory);
    this.openCandles = new OpenCandles(this.memory, INTERVAL_MS);
    this.http = new KlineHttp({
      reader: this.reader,
      prepared: this.prepared,
      knownSymbol: (s) => this.knownSymbol(s),
      memoryFrom: (s, i) => this.memoryFrom(s, i),
      finalCacheBytes: o.finalCacheBytes ?? 64 * 1024 * 1024,
    });
    if (o.archive !== false && (this.redis || this.cold)) {
      const nc = bus instanceof NatsBus ? bus.nc : undefined;
      this.archiver = new KlineArchiver({ nc, redis: this.redis, cold: this.cold, log, ackWaitMs: o.ackWaitMs, ...(o.natsReplicas ? { replicas: o.natsReplicas } : {}) });
    }
  }

  /** First open time from which memory holds every candle of a series. */
  memoryFrom(symbol: string, interval: string): number {
    const floor = Date.now() - this.memoryHorizonMs;
    if (this.#warmed) return floor;
    return Math.max(floor, this.#firstLive.get(seriesKey(symbol, interval)) ?? this.#startedAt);
  }

  get warmed(): boolean {
    return this.#warmed;
  }

  /** Subscribes to klines, warms memory from Redis, starts the archiver. */
  async start(): Promise<void> {
    const onKline: BusHandler = (_subject, data) => {
      let k;
      let closed = false;
      let lastTradeId = 0;
      try {
        const ev = fromBinary(EventSchema, data);
        if (ev.payload.case !== 'kline') return;
        k = fromMessage(ev.payload.value);
        closed = ev.payload.value.closed;
        lastTradeId = Number(ev.payload.value.lastTradeId);
      } catch {
        return;
      }
      const key = seriesKey(k.symbol, k.interval);
      if (!this.#firstLive.has(key)) this.#firstLive.set(key, k.openTime);
      this.#knownSymbols.add(k.symbol);
      this.openCandles.onKline(k, closed, lastTradeId);
      if (closed && this.archiver && !(this.#bus instanceof NatsBus)) this.archiver.offer(k);
    };
    // Trades keep the open candle current between the feed's candle updates.
    const onTrade: BusHandler = (_subject, data) => {
      try {
        const ev = fromBinary(EventSchema, data);
        if (ev.payload.case !== 'trade') return;
        const t = ev.payload.value;
        // A symbol is valid from its first trade: candles of every interval follow only at the end of a second.
        const symbol = t.symbol.toUpperCase();
        this.#knownSymbols.add(symbol);
        this.openCandles.onTrade(symbol, { id: Number(t.tradeId), price: t.price, qty: t.qty, takerBuys: !t.buyerIsMaker });
      } catch {
        // not a trade event
      }
    };
    // Kline subjects only (one subscription per interval): a catch-all would bring every trade and depth twice.
    const subs = KLINE_INTERVALS.map((i) => this.#bus.subscribe(`md.kline_${i}.*`, onKline));
    subs.push(this.#bus.subscribe('md.trade.*', onTrade));
    this.#unsub = () => subs.forEach((s) => s.unsubscribe());
    if (this.redis) {
      try {
        await this.redis.connect();
        await this.warm();
      } catch (err) {
        this.#log.warn('history: Redis unavailable at start; memory holds only what arrives from now on', { err: err instanceof Error ? err.message : String(err) });
      }
    }
    await this.archiver?.start();
    // Symbols that only the cold tier holds (imported history) are valid too.
    const refresh = () =>
      void this.cold
        ?.symbols?.()
        .then((list) => list.forEach((s) => this.#knownSymbols.add(s)))
        .catch(() => {});
    refresh();
    this.#symbolTimer = setInterval(refresh, 30_000);
    this.#symbolTimer.unref();
  }

  /** Loads the memory horizon of every series from Redis. */
  async warm(): Promise<number> {
    const redis = this.redis!;
    const from = Date.now() - this.memoryHorizonMs;
    let n = 0;
    for (const s of await redis.seriesKeys()) {
      const rows = await redis.query({ symbol: s.symbol, interval: s.interval, from, to: Number.MAX_SAFE_INTEGER, limit: 1_000_000, order: 'asc' });
      // Live candles already in memory are newer than (or equal to) Redis's copy.
      for (const k of rows) if (this.memory.querySync({ symbol: k.symbol, interval: k.interval, from: k.openTime, to: k.openTime, limit: 1, order: 'asc' }).length === 0) this.memory.upsert(k);
      this.#knownSymbols.add(s.symbol);
      n += rows.length;
    }
    this.#warmed = true;
    this.#log.info('history: memory tier warmed from Redis', { klines: n });
    return n;
  }

  knownSymbol(symbol: string): boolean {
    return this.#knownSymbols.has(symbol.toUpperCase());
  }

  health(): { degraded: string[]; redis?: string; cold?: string; warmed: boolean } {
    const degraded: string[] = [];
    const recent = (t?: number) => t !== undefined && Date.now() - t < 10_000;
    if (this.redis && (!this.redis.up || recent(this.reader.lastFailure.get('redis')))) degraded.push('redis');
    if (this.cold && recent(this.reader.lastFailure.get(this.cold.name))) degraded.push(this.cold.name);
    return {
      degraded,
      redis: this.redis ? (this.redis.up ? 'up' : 'down') : undefined,
      cold: this.cold?.name,
      warmed: this.#warmed,
    };
  }

  stats(): Record<string, unknown> {
    return {
      memoryKlines: this.memory.size,
      archived: this.archiver?.archived ?? 0,
      redisBacklog: this.archiver?.redisBacklog ?? 0,
      redisFailures: this.archiver?.redisFailures ?? 0,
      coldFailures: this.archiver?.coldFailures ?? 0,
      answers: this.http.served,
      prepared: { entries: this.prepared.size, hits: this.prepared.hits, tailBuilds: this.prepared.tailBuilds, fullBuilds: this.prepared.fullBuilds },
      tradesFolded: this.openCandles.folded,
      ...this.health(),
    };
  }

  /** GET /api/v3/klines and /api/v3/uiKlines (the same answer). */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    await this.http.handle(req, res, url);
  }

  async stop(): Promise<void> {
    this.#unsub?.();
    clearInterval(this.#symbolTimer);
    await this.archiver?.stop();
    await this.redis?.close();
    await this.cold?.close();
    await this.memory.close();
  }
}
