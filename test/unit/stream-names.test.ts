import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { binanceStreamName, parseTopic, topicOfStreamName, type ParsedTopic } from '../../system/common/topics.ts';
import { EncodedEvent } from '../../system/gateway/codec.ts';
import { EventSchema } from '../../proto/gen/market_pb.js';

// What a client subscribes → the `stream` of Binance's combined wrapper (web-socket-streams.md: symbols lower
// case, the stream type as the docs spell it; kline intervals are case-sensitive, 1M a month).
const CASES: Array<[string, string]> = [
  ['BTCUSDT@trade', 'btcusdt@trade'],
  ['btcusdt@aggTrade', 'btcusdt@aggTrade'],
  ['BTCUSDT@AGGTRADE', 'btcusdt@aggTrade'],
  ['btcusdt@miniticker', 'btcusdt@miniTicker'],
  ['BtcUsdt@bookTicker', 'btcusdt@bookTicker'],
  ['btcusdt@avgPrice', 'btcusdt@avgPrice'],
  ['BTCUSDT@ticker', 'btcusdt@ticker'],
  ['btcusdt@kline_1M', 'btcusdt@kline_1M'],
  ['BTCUSDT@kline_1m', 'btcusdt@kline_1m'],
  ['btcusdt@kline_1M@+08:00', 'btcusdt@kline_1M@+08:00'],
  ['BTCUSDT@depth', 'btcusdt@depth'],
  ['btcusdt@depth@1000ms', 'btcusdt@depth'],
  ['BTCUSDT@DEPTH5@100MS', 'btcusdt@depth5@100ms'],
  ['!miniTicker@arr', '!miniTicker@arr'],
  ['!MINITICKER@ARR', '!miniTicker@arr'],
  ['!ticker@arr', '!ticker@arr'],
];

test('Binance stream names: every stream kind, whatever case it was subscribed in', () => {
  for (const [asked, binance] of CASES) {
    const p = parseTopic(asked) as ParsedTopic;
    assert.equal(typeof p, 'object', asked);
    assert.equal(binanceStreamName(p.topic), binance, asked);
    assert.equal(topicOfStreamName(binance), p.topic, `${binance} maps back to its topic`);
  }
  // A symbol that happens to spell a stream type is not renamed; names that are not topics pass through.
  assert.equal(binanceStreamName('aggtrade@trade'), 'aggtrade@trade');
  assert.equal(binanceStreamName('orders'), 'orders');
});

test('the combined frame carries the Binance name; the raw frame and the protobuf topic do not change', () => {
  const ev = create(EventSchema, { topic: 'btcusdt@aggtrade', seq: 1n, epoch: 1n, publishTimeUs: 1_700_000_000_000_000n, payload: { case: 'trade', value: { symbol: 'btcusdt', tradeId: 5n, price: '1.00', qty: '2.00', tradeTime: 1_700_000_000_000n } } });
  const enc = new EncodedEvent(ev.topic, 1, new Uint8Array(), ev);
  for (const micros of [false, true]) {
    const text = enc.frame('combined', micros).toString('utf8');
    assert.ok(text.includes('{"stream":"btcusdt@aggTrade","data":{'), text);
  }
  assert.ok(!enc.frame('raw').toString('utf8').includes('"stream"'));
});
