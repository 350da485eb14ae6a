// The JetStream stream that carries closed klines to the archiver, so that
// nothing is lost while an archiver restarts: stream KLINES, subjects
// `kline.closed.<symbol>.<interval>`, one shared durable pull consumer.
import type { NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, StorageType, type JetStreamClient } from '@nats-io/jetstream';
import type { Bus } from '../common/bus.ts';
import { NatsBus } from '../common/nats-bus.ts';
import type { Logger } from '../common/logger.ts';

export const KLINE_STREAM = 'KLINES';
export const KLINE_SUBJECTS = 'kline.closed.>';
export const ARCHIVER_DURABLE = 'kline-archiver';
/** The stream keeps a week: an archiver may be down that long without loss. */
const MAX_AGE_NS = 7 * 24 * 3600 * 1e9;

export function closedKlineSubject(symbol: string, interval: string): string {
  return `kline.closed.${symbol.toLowerCase()}.${interval}`;
}

/** `replicas`: copies of KLINES in a NATS cluster. */
export async function ensureKlineStream(nc: NatsConnection, replicas = 1): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(KLINE_STREAM);
  } catch {
    try {
      await jsm.streams.add({ name: KLINE_STREAM, subjects: [KLINE_SUBJECTS], storage: StorageType.File, max_age: MAX_AGE_NS, duplicate_window: 120e9, num_replicas: replicas });
    } catch (err) {
      // Another process created it between our two calls.
      await jsm.streams.info(KLINE_STREAM).catch(() => {
        throw err;
      });
    }
  }
}

export async function ensureArchiverConsumer(nc: NatsConnection, ackWaitMs: number, replicas = 1): Promise<void> {
  await ensureKlineStream(nc, replicas);
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.consumers.info(KLINE_STREAM, ARCHIVER_DURABLE);
  } catch {
    await jsm.consumers.add(KLINE_STREAM, {
      durable_name: ARCHIVER_DURABLE,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: ackWaitMs * 1e6,
      max_ack_pending: 20_000,
    });
  }
}

/** Publishes closed klines with JetStream acks; a msg id makes a re-publish within two minutes a no-op. */
export class ClosedKlinePublisher {
  #js: JetStreamClient;
  #onError: (err: unknown) => void;
  published = 0;
  failed = 0;

  constructor(nc: NatsConnection, onError: (err: unknown) => void) {
    this.#js = jetstream(nc);
    this.#onError = onError;
  }

  publish(symbol: string, interval: string, openTime: number, data: Uint8Array): void {
    this.#js
      .publish(closedKlineSubject(symbol, interval), data, { msgID: `${symbol}:${interval}:${openTime}` })
      .then(() => this.published++)
      .catch((err: unknown) => {
        // Reported on the first failure and every 100th after, not once per candle.
        if (this.failed++ % 100 === 0) this.#onError(err);
      });
  }
}

/**
 * The feed's archive of closed candles (stream KLINES, for the history
 * archiver, so none is lost); undefined, with a warning, on a bus without JetStream.
 */
export async function closedKlinePublisherFor(bus: Bus, replicas: number, log: Logger): Promise<ClosedKlinePublisher | undefined> {
  if (!(bus instanceof NatsBus)) return undefined;
  try {
    await ensureKlineStream(bus.nc, replicas);
    return new ClosedKlinePublisher(bus.nc, (err) => log.warn('closed kline not stored in JetStream', { err: String(err) }));
  } catch (err) {
    log.warn('no JetStream on this NATS: closed klines are not archived', { err: String(err) });
    return undefined;
  }
}
