// Writes closed klines to Redis and to the cold tier (Cassandra or the
// embedded store). With NATS it pulls from ONE durable JetStream consumer
// shared by every push-server, so each kline is archived once, and acks only
// after the writes: a restart resumes where the consumer stands, and a
// redelivery is harmless because both writes are upserts.
// The cold tier is the record: while it is down nothing is acked (the batch
// is retried, and kept alive with `working()`). Redis is a cache: while it is
// down the batch is still acked once the cold tier has it, and the Redis
// writes wait in a bounded retry list.
import { fromBinary } from '@bufbuild/protobuf';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, type Consumer, type JsMsg } from '@nats-io/jetstream';
import { EventSchema } from '../../proto/gen/market_pb.js';
import type { Logger } from '../common/logger.ts';
import { fromMessage, type Kline, type KlineStore } from './kline.ts';
import { ARCHIVER_DURABLE, ensureArchiverConsumer, KLINE_STREAM } from './kline-stream.ts';

// How long an idle archiver's pull waits for the next closed candle (a pull costs a JetStream request and
// heartbeats every half of it); and how long a batch gathers once one arrived (archived within about a second).
const IDLE_WAIT_MS = 30_000;
const BATCH_WAIT_MS = 1_000;

export interface ArchiverOptions {
  nc?: NatsConnection;
  redis?: KlineStore;
  cold?: KlineStore;
  log: Logger;
  batch?: number;
  ackWaitMs?: number;
  /** JetStream replicas of KLINES when the archiver creates it (a NATS cluster). */
  replicas?: number;
  retryMs?: number;
  /** Redis writes kept while Redis is down; the oldest are dropped past it (the cold tier has them). */
  redisBacklogMax?: number;
}

export function decodeClosedKline(data: Uint8Array): Kline | undefined {
  const ev = fromBinary(EventSchema, data);
  return ev.payload.case === 'kline' ? fromMessage(ev.payload.value) : undefined;
}

export class KlineArchiver {
  #o: ArchiverOptions;
  #stopped = false;
  #loop?: Promise<void>;
  #wake?: () => void;
  #redisBacklog: Kline[] = [];
  #direct: Kline[] = [];
  #pulling: { stop(): void } | undefined;
  archived = 0;
  redisFailures = 0;
  coldFailures = 0;
  redisDropped = 0;

  constructor(o: ArchiverOptions) {
    this.#o = o;
  }

  get redisBacklog(): number {
    return this.#redisBacklog.length;
  }

  async start(): Promise<void> {
    if (this.#o.nc) {
      // A NATS without JetStream (or not reachable yet) must not stop the server: the loop retries.
      this.#loop = this.#pullLoop(this.#o.nc);
    } else {
      this.#loop = this.#directLoop();
    }
  }

  /** Without NATS (embedded mode) closed klines come straight from the bus. */
  offer(k: Kline): void {
    this.#direct.push(k);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#pulling?.stop();
    this.#wake?.();
    await this.#loop;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      const t = setTimeout(r, ms);
      this.#wake = () => {
        clearTimeout(t);
        r();
      };
    });
  }

  async #pullLoop(nc: NatsConnection): Promise<void> {
    const js = jetstream(nc);
    let warned = false;
    while (!this.#stopped) {
      try {
        await ensureArchiverConsumer(nc, this.#o.ackWaitMs ?? 30_000, this.#o.replicas ?? 1);
        warned = false;
        const consumer = await js.consumers.get(KLINE_STREAM, ARCHIVER_DURABLE);
        const batch = this.#o.batch ?? 500;
        while (!this.#stopped) {
          // Waiting for work: one pull for one message, held open, instead of a 1 s fetch (with its 500 ms
          // heartbeats) every second, which was most of an idle server's CPU. A Redis backlog keeps the 1 s pace.
          const first = await this.#pull(consumer, 1, this.#redisBacklog.length > 0 ? BATCH_WAIT_MS : IDLE_WAIT_MS);
          if (first.length === 0) {
            await this.#flushRedisBacklog();
            continue;
          }
          // Closed candles come in bursts: what else arrives within a second joins the batch, as before.
          const msgs = batch > 1 && !this.#stopped ? [...first, ...(await this.#pull(consumer, batch - 1, BATCH_WAIT_MS))] : first;
          const klines: Kline[] = [];
          for (const m of msgs) {
            try {
              const k = decodeClosedKline(m.data);
              if (k) klines.push(k);
            } catch (err) {
              this.#o.log.warn('dropping an undecodable closed kline', { err: String(err) });
            }
          }
          const keepAlive = setInterval(() => msgs.forEach((m) => m.working()), 5_000);
          try {
            if (!(await this.#write(klines))) return; // stopped while the cold tier was down: no ack, redelivered later
          } finally {
            clearInterval(keepAlive);
          }
          for (const m of msgs) m.ack();
          await nc.flush();
          this.archived += klines.length;
        }
      } catch (err) {
        if (this.#stopped) break;
        if (!warned) this.#o.log.warn('archiver cannot pull closed klines from JetStream; retrying', { err: err instanceof Error ? err.message : String(err) });
        warned = true;
        await this.#sleep(this.#o.retryMs ?? 1_000);
      }
    }
  }

  /** Up to n messages, waiting at most expiresMs; stop() ends the wait at once. */
  async #pull(consumer: Consumer, n: number, expiresMs: number): Promise<JsMsg[]> {
    const msgs: JsMsg[] = [];
    const iter = await consumer.fetch({ max_messages: n, expires: expiresMs });
    this.#pulling = iter;
    try {
      if (this.#stopped) iter.stop();
      for await (const m of iter) msgs.push(m);
    } finally {
      this.#pulling = undefined;
    }
    return msgs;
  }

  async #directLoop(): Promise<void> {
    while (!this.#stopped) {
      await this.#sleep(200);
      const batch = this.#direct.splice(0, this.#direct.length);
      if (batch.length > 0 && (await this.#write(batch))) this.archived += batch.length;
      else await this.#flushRedisBacklog();
    }
    const rest = this.#direct.splice(0, this.#direct.length);
    if (rest.length > 0) await this.#write(rest, 1);
  }

  /** Cold tier until it succeeds (false if stopped first); Redis best effort. */
  async #write(klines: Kline[], attempts = Infinity): Promise<boolean> {
    const { redis, cold } = this.#o;
    const durable = cold ?? redis;
    if (!durable) return true;
    const redisWrite = redis && redis !== durable ? this.#writeRedis(klines) : Promise.resolve();
    for (let attempt = 1; ; attempt++) {
      try {
        await durable.put(klines);
        break;
      } catch (err) {
        this.coldFailures++;
        if (attempt === 1 || attempt % 30 === 0) {
          this.#o.log.warn(`archiver: ${durable.name} write failed; holding the batch unacked and retrying`, { klines: klines.length, err: err instanceof Error ? err.message : String(err) });
        }
        if (this.#stopped || attempt >= attempts) {
          await redisWrite;
          return false;
        }
        await this.#sleep(this.#o.retryMs ?? 1_000);
      }
    }
    await redisWrite;
    return true;
  }

  async #writeRedis(klines: Kline[]): Promise<void> {
    const redis = this.#o.redis!;
    await this.#flushRedisBacklog();
    try {
      if (this.#redisBacklog.length > 0) throw new Error('redis still behind');
      await redis.put(klines);
    } catch {
      this.redisFailures++;
      for (const k of klines) this.#redisBacklog.push(k);
      const max = this.#o.redisBacklogMax ?? 200_000;
      if (this.#redisBacklog.length > max) {
        const drop = this.#redisBacklog.length - max;
        this.#redisBacklog.splice(0, drop);
        this.redisDropped += drop;
      }
    }
  }

  async #flushRedisBacklog(): Promise<void> {
    const redis = this.#o.redis;
    if (!redis || this.#redisBacklog.length === 0) return;
    const batch = this.#redisBacklog.slice(0, 2_000);
    try {
      await redis.put(batch);
      this.#redisBacklog.splice(0, batch.length);
    } catch {
      // still down; next turn
    }
  }
}
