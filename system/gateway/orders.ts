// Private order streams. Order updates are published to NATS JetStream on
// `orders.<user>` (stream ORDERS, kept 24 h), so nothing is lost while no
// client listens. A client subscribed to the private `orders` topic gets its
// user's events from an ordered consumer starting right after the position
// it gives (`after`: the last event its application has), or else after its
// last acknowledged event (acks are kept in the KV bucket push_order_acks, so
// any gateway can resume any user). Every event's `seq` is its JetStream
// stream sequence: strictly increasing per user, and what clients ack.
import { jetstream, jetstreamManager, DeliverPolicy, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { EventSchema, OrderSchema } from '../../proto/gen/market_pb.js';
import type { Logger } from '../common/logger.ts';
import type { ProcessStats } from '../common/process-stats.ts';
import type { ClientConn } from './client-conn.ts';
import { EncodedEvent } from './codec.ts';

export const ORDERS_STREAM = 'ORDERS';
export const ORDERS_TOPIC = 'orders';
export const ACKS_BUCKET = 'push_order_acks';
const DAY_NS = 24 * 3600 * 1e9;

export const orderSubject = (user: string) => `orders.${user}`;

/** Creates the ORDERS stream if it is missing (publishers may call it too). */
export async function ensureOrdersStream(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(ORDERS_STREAM);
  } catch {
    await jsm.streams.add({ name: ORDERS_STREAM, subjects: ['orders.>'], max_age: DAY_NS });
  }
}

export class OrderStreams {
  #js: JetStreamClient;
  #acks: KV;
  #log: Logger;
  #stats: ProcessStats;
  #bound = new Map<ClientConn, { stop(): void }>();
  #ackTimers = new Map<string, { upTo: number; timer: NodeJS.Timeout }>();

  private constructor(js: JetStreamClient, acks: KV, log: Logger, stats: ProcessStats) {
    this.#js = js;
    this.#acks = acks;
    this.#log = log;
    this.#stats = stats;
  }

  static async open(nc: NatsConnection, log: Logger, stats: ProcessStats): Promise<OrderStreams> {
    await ensureOrdersStream(nc);
    const acks = await new Kvm(nc).create(ACKS_BUCKET, { history: 1 });
    return new OrderStreams(jetstream(nc), acks, log, stats);
  }

  async #lastAck(user: string): Promise<number> {
    const e = await this.#acks.get(`u.${user}`);
    return e && e.operation === 'PUT' ? Number(e.string()) || 0 : 0;
  }

  /** Starts delivering `user`'s order events to c, after `after` (or its last ack). */
  async bind(c: ClientConn, user: string, after: number | undefined): Promise<void> {
    this.unbind(c);
    const start = (after ?? (await this.#lastAck(user))) + 1;
    const consumer = await this.#js.consumers.get(ORDERS_STREAM, {
      filter_subjects: orderSubject(user),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: start,
    });
    if (c.state === 'closed') return;
    const messages = await consumer.consume();
    const stop = () => messages.stop();
    this.#bound.set(c, { stop });
    c.abort.signal.addEventListener('abort', () => this.unbind(c));
    void (async () => {
      for await (const m of messages) {
        if (c.state === 'closed') break;
        let order;
        try {
          order = fromBinary(OrderSchema, m.data);
        } catch {
          this.#stats.count('bad_orders');
          this.#log.warn('undecodable order event skipped', { user, seq: m.seq });
          continue;
        }
        const bytes = toBinary(EventSchema, create(EventSchema, {
          topic: ORDERS_TOPIC,
          seq: BigInt(m.seq),
          epoch: 0n,
          publishTimeUs: BigInt(Math.floor(Number(m.info.timestampNanos) / 1000)),
          payload: { case: 'order', value: order },
        }));
        // Never dropped by the slow-client policy: private events are few and must not be lost.
        c.send(new EncodedEvent(ORDERS_TOPIC, m.seq, bytes).frame(c.format));
        this.#stats.count('orders_out');
      }
    })().catch((err: unknown) => this.#log.warn('order stream ended', { user, err: String(err) }));
  }

  unbind(c: ClientConn): void {
    const b = this.#bound.get(c);
    if (!b) return;
    this.#bound.delete(c);
    b.stop();
  }

  /** Cumulative ack; written to the KV at most every 100 ms per user. */
  ack(user: string, upTo: number): void {
    const pending = this.#ackTimers.get(user);
    if (pending) {
      pending.upTo = Math.max(pending.upTo, upTo);
      return;
    }
    const entry = {
      upTo,
      timer: setTimeout(() => {
        this.#ackTimers.delete(user);
        void this.#storeAck(user, entry.upTo);
      }, 100),
    };
    entry.timer.unref();
    this.#ackTimers.set(user, entry);
  }

  async #storeAck(user: string, upTo: number): Promise<void> {
    try {
      if (upTo > (await this.#lastAck(user))) await this.#acks.put(`u.${user}`, String(upTo));
    } catch (err) {
      this.#log.warn('could not store an order ack', { user, err: String(err) });
    }
  }

  async stop(): Promise<void> {
    for (const c of [...this.#bound.keys()]) this.unbind(c);
    for (const [user, e] of this.#ackTimers) {
      clearTimeout(e.timer);
      await this.#storeAck(user, e.upTo);
    }
    this.#ackTimers.clear();
  }
}
