// The archiver on a real nats-server (JetStream) with the embedded cold store:
// two archivers share ONE durable consumer and archive each kline once; a cold
// tier that fails holds the batch unacked and the archiver resumes when it is back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { EventSchema } from '../../proto/gen/market_pb.js';
import { KlineArchiver } from '../../system/history/archiver.ts';
import { ARCHIVER_DURABLE, closedKlineSubject, ensureKlineStream, KLINE_STREAM } from '../../system/history/kline-stream.ts';
import { SqliteKlineStore } from '../../system/history/sqlite-store.ts';
import type { Kline, KlineStore } from '../../system/history/kline.ts';
import { connectNats } from '../../system/common/nats-bus.ts';
import { createLogger } from '../../system/common/logger.ts';
import { startNats } from '../helpers/servers.ts';
import { waitFor } from '../helpers/cluster.ts';
import { makeKlines } from '../helpers/klines.ts';

const M = 60_000;

const event = (k: Kline) =>
  toBinary(EventSchema, create(EventSchema, {
    topic: `${k.symbol.toLowerCase()}@kline_${k.interval}`,
    payload: { case: 'kline', value: { symbol: k.symbol, interval: k.interval, openTime: BigInt(k.openTime), closeTime: BigInt(k.closeTime), open: k.open, high: k.high, low: k.low, close: k.close, volume: k.volume, quoteVolume: k.quoteVolume, tradeCount: BigInt(k.trades), takerBuyBaseVolume: k.takerBuyBase, takerBuyQuoteVolume: k.takerBuyQuote, closed: true } },
  }));

/** Counts the klines written, and fails every write while `down` is set. */
class CountingStore implements KlineStore {
  readonly name = 'embedded';
  readonly inner = new SqliteKlineStore(':memory:');
  writes = 0;
  down = false;
  async put(ks: readonly Kline[]) {
    if (this.down) throw new Error('cold tier unavailable');
    await this.inner.put(ks);
    this.writes += ks.length;
  }
  query = this.inner.query.bind(this.inner);
  close = () => this.inner.close();
}

test('two archivers on one durable consumer archive each kline once; a down cold tier waits unacked and resumes', async (t) => {
  const nats = await startNats();
  t.after(() => nats.stop());
  const log = createLogger('archiver-test');
  t.after(() => log.close());
  const nc = await connectNats(nats.url, 'archiver-test');
  t.after(() => nc.close());
  await ensureKlineStream(nc);
  const js = jetstream(nc);
  const cold = new CountingStore();
  t.after(() => cold.close());
  const a = new KlineArchiver({ nc, cold, log, batch: 100, retryMs: 100 });
  const b = new KlineArchiver({ nc, cold, log, batch: 100, retryMs: 100 });
  await a.start();
  await b.start();
  t.after(() => Promise.all([a.stop(), b.stop()]));

  const all = makeKlines('BTCUSDT', '1m', Date.UTC(2024, 0, 1), M, 2000);
  await Promise.all(all.map((k) => js.publish(closedKlineSubject(k.symbol, k.interval), event(k))));
  await waitFor(() => a.archived + b.archived === 2000, 60_000, 'all archived');
  assert.equal(cold.writes, 2000, 'each kline written once across both archivers');
  assert.ok(a.archived > 0 && b.archived > 0, `both archivers took work (${a.archived} + ${b.archived})`);
  assert.deepEqual(await cold.query({ symbol: 'BTCUSDT', interval: '1m', from: 0, to: Number.MAX_SAFE_INTEGER, limit: 5000, order: 'asc' }), all);

  // Cold tier down: new klines are pulled but not acked; nothing is lost when it comes back.
  cold.down = true;
  const more = makeKlines('BTCUSDT', '1m', Date.UTC(2024, 0, 2), M, 300);
  await Promise.all(more.map((k) => js.publish(closedKlineSubject(k.symbol, k.interval), event(k))));
  await waitFor(() => a.coldFailures + b.coldFailures >= 3, 20_000, 'failed writes');
  const jsm = await jetstreamManager(nc);
  const info = await jsm.consumers.info(KLINE_STREAM, ARCHIVER_DURABLE);
  assert.equal(info.num_pending + info.num_ack_pending, 300, 'nothing acked while the cold tier is down');
  cold.down = false;
  await waitFor(() => a.archived + b.archived === 2300, 30_000, 'resumed');
  assert.equal(cold.writes, 2300);
  const after = await jsm.consumers.info(KLINE_STREAM, ARCHIVER_DURABLE);
  assert.equal(after.num_ack_pending, 0);
  assert.equal(after.num_pending, 0);
  await Promise.all([a.stop(), b.stop()]);
});
