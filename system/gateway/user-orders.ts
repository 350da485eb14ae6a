// One user's Binance user-data events, followed live from the JetStream
// ORDERS stream (`orders.<user>` only, from now on: no replay), mapped by
// user-data-events.ts. Shared by the listenKey streams (user-data.ts) and the
// WebSocket API's subscriptions (ws-api.ts).
import { jetstream, DeliverPolicy, type ConsumerMessages } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { fromBinary } from '@bufbuild/protobuf';
import { OrderSchema } from '../../proto/gen/market_pb.js';
import type { ProcessStats } from '../common/process-stats.ts';
import { ORDERS_STREAM, orderSubject } from './orders.ts';
import { userDataEvents } from './user-data-events.ts';

export class UserOrderFeed {
  #messages: ConsumerMessages | undefined;
  #stopped = false;
  #ready!: (ok: boolean) => void;
  /** Resolves true once events are flowing (from this moment on), false when stopped or failed first. */
  readonly ready = new Promise<boolean>((r) => (this.#ready = r));
  /** Resolves when the feed ends: undefined when stopped, the error when the bus ended it. */
  readonly done: Promise<Error | undefined>;

  constructor(nc: NatsConnection, user: string, stats: ProcessStats, onEvent: (ev: Record<string, unknown>) => void) {
    this.done = this.#run(nc, user, stats, onEvent).finally(() => this.#ready(false));
  }

  async #run(nc: NatsConnection, user: string, stats: ProcessStats, onEvent: (ev: Record<string, unknown>) => void): Promise<Error | undefined> {
    try {
      const consumer = await jetstream(nc).consumers.get(ORDERS_STREAM, { filter_subjects: orderSubject(user), deliver_policy: DeliverPolicy.New });
      if (this.#stopped) return undefined;
      const messages = (this.#messages = await consumer.consume());
      if (this.#stopped) {
        void messages.stop();
        return undefined;
      }
      this.#ready(true);
      for await (const m of messages) {
        if (this.#stopped) break;
        let order;
        try {
          order = fromBinary(OrderSchema, m.data);
        } catch {
          stats.count('bad_orders');
          continue;
        }
        for (const ev of userDataEvents(order, m.seq, Math.floor(Number(m.info.timestampNanos) / 1e6))) onEvent(ev);
      }
      return this.#stopped ? undefined : new Error('the order stream ended');
    } catch (err) {
      return this.#stopped ? undefined : (err as Error);
    }
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  stop(): void {
    this.#stopped = true;
    void this.#messages?.stop();
  }
}
