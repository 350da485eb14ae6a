// Private order streams. Order updates are published to NATS JetStream on
// `orders.<user>` (stream ORDERS, kept 24 h), so nothing is lost while no
// client listens. A client subscribed to the private `orders` topic gets its
// user's events from an ordered consumer starting right after the position
// it gives (`after`: the last event its application has), or else after its
// last acknowledged event (acks are kept in the KV bucket push_order_acks, so
// any gateway can resume any user). Every event's `seq` is its JetStream
// stream sequence: strictly increasing per user, and what clients ack.
import { jetstream, jetstreamManager, DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection, Status } from '@nats-io/transport-node';
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
export async function ensureOrdersStream(nc: NatsConnection, replicas = 1): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(ORDERS_STREAM);
  } catch {
    await jsm.streams.add({ name: ORDERS_STREAM, subjects: ['orders.>'], max_age: DAY_NS, num_replicas: replicas });
  }
}

/** One client's order stream: where it stands, and the consumer feeding it now. */
interface Binding {
  c: ClientConn;
  user: string;
  /** Stream seq of the last event handed to the client: a reopened consumer starts right after it. */
  lastSeq: number;
  messages: ConsumerMessages | undefined;
  /** Bumped by every reopen: a consumer opened for an older one is stopped at once. */
  gen: number;
  stopped: boolean;
}

const REOPEN_BACKOFF_MS = [100, 200, 400, 800, 1_000];

export class OrderStreams {
  #nc: NatsConnection;
  #js: JetStreamClient;
  #jsm: JetStreamManager;
  #acks: KV;
  #log: Logger;
  #stats: ProcessStats;
  #bound = new Map<ClientConn, Binding>();
  #ackTimers = new Map<string, { upTo: number; timer: NodeJS.Timeout }>();
  #stopped = false;
  #status: AsyncIterable<Status> & { stop?: () => void };

  private constructor(nc: NatsConnection, jsm: JetStreamManager, acks: KV, log: Logger, stats: ProcessStats) {
    this.#nc = nc;
    this.#js = jetstream(nc);
    this.#jsm = jsm;
    this.#acks = acks;
    this.#log = log;
    this.#stats = stats;
    this.#status = nc.status() as AsyncIterable<Status> & { stop?: () => void };
    void this.#watchReconnects();
  }

  /** `replicas`: copies of ORDERS and the acks bucket in a NATS cluster. */
  static async open(nc: NatsConnection, log: Logger, stats: ProcessStats, replicas = 1): Promise<OrderStreams> {
    await ensureOrdersStream(nc, replicas);
    const acks = await new Kvm(nc).create(ACKS_BUCKET, { history: 1, replicas });
    return new OrderStreams(nc, await jetstreamManager(nc), acks, log, stats);
  }

  async #lastAck(user: string): Promise<number> {
    const e = await this.#acks.get(`u.${user}`);
    return e && e.operation === 'PUT' ? Number(e.string()) || 0 : 0;
  }

  /** Starts delivering `user`'s order events to c, after `after` (or its last ack). */
  async bind(c: ClientConn, user: string, after: number | undefined): Promise<void> {
    this.unbind(c);
    const b: Binding = { c, user, lastSeq: after ?? (await this.#lastAck(user)), messages: undefined, gen: 0, stopped: false };
    const messages = await this.#consume(b);
    if (c.state === 'closed') {
      void messages.stop();
      return;
    }
    b.messages = messages;
    this.#bound.set(c, b);
    c.abort.signal.addEventListener('abort', () => this.unbind(c));
    void this.#pump(b, messages);
  }

  /** An ordered consumer for the user's events after b.lastSeq. */
  async #consume(b: Binding): Promise<ConsumerMessages> {
    const consumer = await this.#js.consumers.get(ORDERS_STREAM, {
      filter_subjects: orderSubject(b.user),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: b.lastSeq + 1,
    });
    return consumer.consume();
  }

  async #pump(b: Binding, messages: ConsumerMessages): Promise<void> {
    try {
      for await (const m of messages) {
        if (b.stopped || b.c.state === 'closed') break;
        // A reopened consumer may repeat what the old one already handed over.
        if (m.seq <= b.lastSeq) continue;
        b.lastSeq = m.seq;
        let order;
        try {
          order = fromBinary(OrderSchema, m.data);
        } catch {
          this.#stats.count('bad_orders');
          this.#log.warn('undecodable order event skipped', { user: b.user, seq: m.seq });
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
        b.c.send(new EncodedEvent(ORDERS_TOPIC, m.seq, bytes).frame(b.c.format, b.c.micros));
        this.#stats.count('orders_out');
      }
    } catch (err) {
      this.#log.warn('order stream ended', { user: b.user, err: String(err) });
    }
    // Ended without being stopped or replaced (the consumer failed): reopen from where it stands.
    if (!b.stopped && b.messages === messages && b.c.state !== 'closed' && !this.#nc.isClosed()) void this.#reopen(b);
  }

  /**
   * The bus came back. The client library would revive each consumer itself,
   * but when its first check fails (JetStream still recovering right after a
   * restart) it backs off for the pull's `expires` (30 s): streams stalled
   * 36–48 s. Instead every stream reopens at once from its last delivered
   * event, retrying quickly until JetStream answers.
   */
  async #watchReconnects(): Promise<void> {
    try {
      for await (const s of this.#status) {
        if (s.type !== 'reconnect') continue;
        this.#stats.count('order_stream_reopens', this.#bound.size);
        for (const b of this.#bound.values()) void this.#reopen(b);
      }
    } catch {
      // the connection closed: nothing left to watch
    }
  }

  async #reopen(b: Binding): Promise<void> {
    const gen = ++b.gen;
    void b.messages?.stop();
    b.messages = undefined;
    for (let attempt = 0; !b.stopped && gen === b.gen && !this.#nc.isClosed(); attempt++) {
      try {
        const messages = await this.#consume(b);
        if (b.stopped || gen !== b.gen) {
          void messages.stop();
          return;
        }
        b.messages = messages;
        void this.#pump(b, messages);
        return;
      } catch (err) {
        if (attempt === 0) this.#log.info('order stream waiting for JetStream after a reconnect', { user: b.user, err: String(err) });
        await new Promise((r) => setTimeout(r, REOPEN_BACKOFF_MS[Math.min(attempt, REOPEN_BACKOFF_MS.length - 1)]));
      }
    }
  }

  unbind(c: ClientConn): void {
    const b = this.#bound.get(c);
    if (!b) return;
    this.#bound.delete(c);
    b.stopped = true;
    void b.messages?.stop();
  }

  /**
   * Cumulative ack of `user`'s events up to `upTo`, written to the KV at most
   * every 100 ms per user. Refused (the stored ack stays) when upTo is beyond
   * the user's last order event: a stored ack from the future would make a
   * later SUBSCRIBE without `after` skip events not yet published.
   * Resolves to the refusal, or undefined when accepted.
   */
  async ack(c: ClientConn, user: string, upTo: number): Promise<string | undefined> {
    const b = this.#bound.get(c);
    if (!(b && b.user === user && upTo <= b.lastSeq)) {
      let last: number;
      try {
        last = await this.#lastEventSeq(user);
      } catch (err) {
        this.#log.warn('could not check an order ack', { user, err: String(err) });
        return 'Invalid request: the ACK could not be checked right now (order store unavailable): retry';
      }
      if (upTo > last) {
        this.#stats.count('acks_refused');
        return `Invalid request: ACK ${upTo} is beyond this user's last order event (${last})`;
      }
    }
    this.#queueAck(user, upTo, 100);
    return undefined;
  }

  #queueAck(user: string, upTo: number, delayMs: number): void {
    if (this.#stopped) return;
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
      }, delayMs),
    };
    entry.timer.unref();
    this.#ackTimers.set(user, entry);
  }

  /** Stream seq of the user's newest order event (0: none). */
  async #lastEventSeq(user: string): Promise<number> {
    try {
      return (await this.#jsm.streams.getMessage(ORDERS_STREAM, { last_by_subj: orderSubject(user) }))?.seq ?? 0;
    } catch (err) {
      if (/no message found/i.test(String(err))) return 0;
      throw err;
    }
  }

  async #storeAck(user: string, upTo: number): Promise<void> {
    try {
      if (upTo > (await this.#lastAck(user))) await this.#acks.put(`u.${user}`, String(upTo));
    } catch (err) {
      // The bus may be restarting: keep the ack and try again (not after stop).
      this.#log.warn('could not store an order ack; retrying', { user, err: String(err) });
      this.#queueAck(user, upTo, 1_000);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#status.stop?.();
    for (const c of [...this.#bound.keys()]) this.unbind(c);
    for (const [user, e] of this.#ackTimers) {
      clearTimeout(e.timer);
      await this.#storeAck(user, e.upTo);
    }
    this.#ackTimers.clear();
  }
}
