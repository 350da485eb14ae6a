// Publishes the order-flow simulator's events the way a matching engine
// would: one protobuf Order per event on `orders.<user>`, into the ORDERS
// JetStream stream, acknowledged by the server. Each user's events go out one
// at a time, in order (a user's stream must never be reordered); users are
// independent of each other. A failed publish (bus restarting) is retried
// with the same Nats-Msg-Id, so a retry after a lost ack is not stored twice.
import { create, toBinary } from '@bufbuild/protobuf';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { OrderSchema } from '../../proto/gen/market_pb.js';
import type { Logger } from '../common/logger.ts';
import { ensureOrdersStream, orderSubject } from '../gateway/orders.ts';
import type { OrderInit } from './order-flow.ts';

/** Events one user may have waiting while the bus is away; past it new ones are dropped and counted. */
const MAX_QUEUED_PER_USER = 100_000;
const RETRY_MS = [100, 200, 500, 1_000];

interface Lane {
  queue: Array<{ data: Uint8Array; msgId: string }>;
  running: boolean;
}

export class OrderFlowPublisher {
  #js: JetStreamClient;
  #log: Logger;
  #lanes = new Map<string, Lane>();
  #stopped = false;
  #idle: Array<() => void> = [];
  published = 0;
  dropped = 0;
  retries = 0;

  /** Distinguishes this feed run's message ids from a restarted feed's (the dedupe window is 2 min). */
  #run: string;

  private constructor(nc: NatsConnection, log: Logger, run: string) {
    this.#js = jetstream(nc);
    this.#log = log;
    this.#run = run;
  }

  /** `replicas`: copies of ORDERS in a NATS cluster (the gateways ask for the same). */
  static async open(nc: NatsConnection, log: Logger, run: string, replicas = 1): Promise<OrderFlowPublisher> {
    await ensureOrdersStream(nc, replicas);
    return new OrderFlowPublisher(nc, log, run);
  }

  get queued(): number {
    let n = 0;
    for (const l of this.#lanes.values()) n += l.queue.length;
    return n;
  }

  publish(user: string, event: OrderInit): void {
    if (this.#stopped) return;
    let lane = this.#lanes.get(user);
    if (!lane) this.#lanes.set(user, (lane = { queue: [], running: false }));
    if (lane.queue.length >= MAX_QUEUED_PER_USER) {
      if (this.dropped++ % 1000 === 0) this.#log.warn('order events dropped: the bus has been away too long', { user, dropped: this.dropped });
      return;
    }
    lane.queue.push({ data: toBinary(OrderSchema, create(OrderSchema, event)), msgId: `${this.#run}:${user}:${event.id}` });
    if (!lane.running) void this.#drain(user, lane);
  }

  async #drain(user: string, lane: Lane): Promise<void> {
    lane.running = true;
    let attempt = 0;
    while (lane.queue.length > 0 && !this.#stopped) {
      const next = lane.queue[0]!;
      try {
        await this.#js.publish(orderSubject(user), next.data, { msgID: next.msgId });
        lane.queue.shift();
        this.published++;
        attempt = 0;
      } catch (err) {
        if (attempt === 0) this.#log.warn('order event not stored yet; retrying', { user, err: String(err) });
        this.retries++;
        await new Promise((r) => setTimeout(r, RETRY_MS[Math.min(attempt++, RETRY_MS.length - 1)]));
      }
    }
    lane.running = false;
    if (this.queued === 0) for (const r of this.#idle.splice(0)) r();
  }

  /** Resolves once everything queued is stored (or after timeoutMs). */
  async flush(timeoutMs: number): Promise<void> {
    if (this.queued === 0) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.#idle.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  stop(): void {
    this.#stopped = true;
    for (const r of this.#idle.splice(0)) r();
  }
}
