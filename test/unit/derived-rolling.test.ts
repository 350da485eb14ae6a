// The push-server's derivation of the rolling-window streams, without processes:
// a subscriber gets the current window at once, every @ticker event of the
// symbol brings its window (closing at that event's time), and one @ticker
// event feeds both the symbol's own stream and the all-market arrays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { EventSchema, type Event } from '../../proto/gen/market_pb.js';
import { TopicHistory } from '../../system/common/topic-history.ts';
import { readEventHeader } from '../../system/common/event-header.ts';
import { parseTopic, type ParsedTopic } from '../../system/common/topics.ts';
import { DerivedTopics } from '../../system/server/derived-topics.ts';
import { RollingTickers } from '../../system/server/rolling-tickers.ts';

const EPOCH = 1_767_225_600_000;
const now = Date.now();

function setup() {
  const topics = new Map<string, TopicHistory>();
  const historyOf = (t: string) => {
    let th = topics.get(t);
    if (!th) topics.set(t, (th = new TopicHistory(t, 16)));
    return th;
  };
  const out: Event[] = [];
  const rolling = new RollingTickers(now - 60_000);
  const derived = new DerivedTopics({ historyOf, topics, rolling, deliver: (_t, bytes) => out.push(fromBinary(EventSchema, bytes)), gap: () => {} });
  // A source @ticker event of a symbol, as the bus brings it (recorded in its history first, as server.ts does).
  let seq = 0;
  const tick = (symbol: string, atMs: number) => {
    const bytes = toBinary(EventSchema, create(EventSchema, { topic: `${symbol}@ticker`, seq: BigInt(++seq), epoch: BigInt(EPOCH), publishTimeUs: BigInt(atMs * 1000), payload: { case: 'ticker', value: { symbol: symbol.toUpperCase() } } }));
    const h = readEventHeader(bytes);
    historyOf(h.topic).add(h, bytes);
    derived.onSource(h, bytes, false);
  };
  return { derived, rolling, out, tick };
}

const p = (t: string) => parseTopic(t) as ParsedTopic;

test('a rolling stream starts with the current window and follows its symbol\'s @ticker; arrays get the same events', () => {
  const { derived, rolling, out, tick } = setup();
  rolling.add('btcusdt', EPOCH, { id: 1, price: '100.0', qty: '1', time: now - 30_000 });
  rolling.add('ethusdt', EPOCH, { id: 1, price: '10.0', qty: '2', time: now - 20_000 });
  tick('btcusdt', now - 10_000);
  tick('ethusdt', now - 10_000);

  derived.ensure(p('btcusdt@ticker_1h'));
  derived.ensure(p('!ticker_1h@arr'));
  assert.deepEqual(out.map((e) => [e.topic, e.payload.case]), [['btcusdt@ticker_1h', 'ticker'], ['!ticker_1h@arr', 'tickerArray']], 'the current state at once');
  const first = out[0]!.payload.value as Extract<Event['payload'], { case: 'ticker' }>['value'];
  assert.deepEqual([first.symbol, first.lastPrice, first.tradeCount, first.firstTradeId, first.lastTradeId], ['BTCUSDT', '100.0', 1n, 1n, 1n]);
  out.length = 0;

  // A new trade, then the symbol's ticker 2 s later: its own stream follows, and the array (a second after the first) holds it.
  rolling.add('btcusdt', EPOCH, { id: 2, price: '101.5', qty: '3', time: now + 500 });
  tick('btcusdt', now + 2_000);
  assert.deepEqual(out.map((e) => e.topic), ['btcusdt@ticker_1h', '!ticker_1h@arr'], 'one @ticker event feeds both');
  const own = out[0]!.payload.value as Extract<Event['payload'], { case: 'ticker' }>['value'];
  assert.deepEqual([own.lastPrice, own.highPrice, own.volume, own.tradeCount, own.closeTime], ['101.5', '101.5', '4', 2n, BigInt(now + 2_000)]);
  assert.equal(out[0]!.seq, 2n, 'the derived topic has its own seq');
  const arr = (out[1]!.payload.value as Extract<Event['payload'], { case: 'tickerArray' }>['value']).tickers;
  assert.deepEqual(arr.map((t) => t.symbol), ['BTCUSDT'], 'only the symbol whose window changed');
  out.length = 0;

  // ethusdt ticks, but nothing changed in its window and an array went out less than a second ago: nothing in an array.
  tick('ethusdt', now + 2_500);
  tick('ethusdt', now + 3_500);
  assert.deepEqual(out.map((e) => e.topic), [], 'an unchanged window is not sent again');

  derived.release('btcusdt@ticker_1h');
  derived.release('!ticker_1h@arr');
  assert.equal(derived.size, 0);
  tick('btcusdt', now + 5_000);
  assert.equal(out.length, 0, 'nothing derived once released');
});
