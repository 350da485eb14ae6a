// The feed's order-flow part: the simulator (order-flow.ts) fed with every
// public event the feed publishes, and its events published to JetStream
// (order-flow-bus.ts). Off without users; refused loudly (not skipped
// silently) when users are asked for on a bus without JetStream.
import type { Event } from '../../proto/gen/market_pb.js';
import type { Bus } from '../common/bus.ts';
import type { FeedConfig } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import { NatsBus } from '../common/nats-bus.ts';
import { OrderFlow } from './order-flow.ts';
import { OrderFlowPublisher } from './order-flow-bus.ts';

export interface OrderFlowHandle {
  onMarketEvent(ev: Event): void;
  advanceTo(nowMs: number): void;
  stats(): Record<string, unknown>;
  stop(): Promise<void>;
}

export async function startOrderFlow(
  config: Pick<FeedConfig, 'users' | 'orderRate' | 'seed' | 'natsReplicas'>,
  ctx: { bus: Bus; log: Logger; symbols: string[]; startTimeMs: number },
): Promise<OrderFlowHandle | undefined> {
  const users = config.users ?? 0;
  if (users <= 0) return undefined;
  if (!(ctx.bus instanceof NatsBus)) {
    ctx.log.warn('simulated users need NATS JetStream (private order streams): this feed runs without them', { users });
    return undefined;
  }
  const flow = new OrderFlow({ users, ratePerUser: config.orderRate ?? 1, symbols: ctx.symbols, seed: config.seed, startTimeMs: ctx.startTimeMs });
  if (flow.tradedSymbols.length === 0) throw new Error('no simulated symbol can carry user orders (every one needs price + quantity decimals ≤ 8)');
  const pub = await OrderFlowPublisher.open(ctx.bus.nc, ctx.log, String(ctx.startTimeMs), config.natsReplicas ?? 1);
  const emit = (user: string, ev: Parameters<OrderFlowPublisher['publish']>[1]) => pub.publish(user, ev);
  ctx.log.info('order flow started', { users, orderRate: config.orderRate, symbols: flow.tradedSymbols });
  return {
    onMarketEvent: (ev) => flow.onMarketEvent(ev, emit),
    advanceTo: (now) => void flow.advanceTo(now, emit),
    stats: () => ({ users, orderRate: config.orderRate, symbols: flow.tradedSymbols.length, fills: flow.fills, published: pub.published, queued: pub.queued, retries: pub.retries, dropped: pub.dropped }),
    async stop() {
      await pub.flush(2_000);
      pub.stop();
    },
  };
}
