import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toBinary } from '@bufbuild/protobuf';
import { EventSchema, type Event } from '../../proto/gen/market_pb.js';
import { MarketSimulator } from '../../system/feed/simulator.ts';
import { TopicHistory } from '../../system/common/topic-history.ts';
import { readEventHeader } from '../../system/common/event-header.ts';
import { bookFromHistory } from '../../system/server/depth-book.ts';

const START = Date.UTC(2026, 0, 1, 12, 0, 0);

test('bookFromHistory: the latest snapshot plus the diffs after it equals the next snapshot, at its update id', () => {
  const sim = new MarketSimulator({ symbols: ['btcusdt'], rate: 50, tickerMs: 1000, klineMs: 1000, depthSnapshotMs: 1000, depthLevels: 10, seed: 7, epoch: 1, startTimeMs: START });
  const th = new TopicHistory('btcusdt@depth@100ms', 512);
  let checked = 0;
  assert.equal(bookFromHistory(th), undefined, 'no book before the first snapshot');
  sim.advanceTo(START + 10_000, (subject: string, event: Event) => {
    if (event.topic !== 'btcusdt@depth@100ms') return;
    const bytes = toBinary(EventSchema, event);
    const h = readEventHeader(bytes);
    if (event.payload.case === 'depthSnapshot') {
      const before = bookFromHistory(th);
      const snap = event.payload.value;
      if (before) {
        // Snapshots fall right after a 100 ms diff: the book built so far is exactly this one.
        assert.equal(before.lastUpdateId, Number(snap.lastUpdateId));
        assert.deepEqual(before.bids, snap.bids.map((l) => [l.price, l.qty]));
        assert.deepEqual(before.asks, snap.asks.map((l) => [l.price, l.qty]));
        checked++;
      }
      assert.equal(subject, 'md.depthsnap.btcusdt');
      th.setDepthSnapshot(h, bytes);
    } else th.add(h, bytes);
  });
  assert.ok(checked >= 8, `only ${checked} snapshots compared`);
});
