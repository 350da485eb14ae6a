import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { EncodedEvent, controlFrame, decodeEvent, eventData, eventJson, prepareFrame } from '../../system/gateway/codec.ts';
import { EventSchema, type Event, type Ticker } from '../../proto/gen/market_pb.js';
import { ServerFrameSchema } from '../../proto/gen/client_pb.js';

const PT = 1_767_225_600_123_456n; // µs
const E = 1_767_225_600_123; // ms

const envelope = (topic: string, payload: MessageInitShape<typeof EventSchema>['payload']): Event =>
  create(EventSchema, { topic, seq: 41n, epoch: 3n, publishTimeUs: PT, payload });
const tail = { seq: 41, ep: 3, pt: Number(PT) };

const levels = (n: number, side: number) => Array.from({ length: n }, (_, i) => ({ price: (100 + side * i * 0.5).toFixed(2), qty: `${i}.125` }));

const ticker = envelope('btcusdt@ticker', {
  case: 'ticker',
  value: {
    symbol: 'btcusdt', priceChange: '-1.5', priceChangePercent: '-0.9', weightedAvgPrice: '101.2', lastPrice: '100.5', lastQty: '0.3',
    bestBid: '100.4', bestBidQty: '2', bestAsk: '100.6', bestAskQty: '3', openPrice: '102', highPrice: '103', lowPrice: '99',
    volume: '1000', quoteVolume: '101000', openTime: 1_767_139_200_000n, closeTime: 1_767_225_600_000n, firstTradeId: 5n, lastTradeId: 905n, tradeCount: 901n,
  },
});
const kline = envelope('btcusdt@kline_1m', {
  case: 'kline',
  value: {
    symbol: 'btcusdt', interval: '1m', openTime: 1_767_225_540_000n, closeTime: 1_767_225_599_999n, firstTradeId: 100n, lastTradeId: 150n,
    open: '100', close: '101', high: '102', low: '99.5', volume: '12', tradeCount: 51n, closed: true, quoteVolume: '1212', takerBuyBaseVolume: '7', takerBuyQuoteVolume: '707',
  },
});
const depthUpdate = envelope('btcusdt@depth', {
  case: 'depthUpdate',
  value: { symbol: 'btcusdt', firstUpdateId: 1001n, finalUpdateId: 1003n, bids: [{ price: '100.1', qty: '0' }, { price: '100.0', qty: '1.5' }], asks: [{ price: '100.2', qty: '4' }] },
});
const depthSnapshot = (n: number) =>
  envelope('btcusdt@depth', { case: 'depthSnapshot', value: { symbol: 'btcusdt', lastUpdateId: 1003n, bids: levels(n, -1), asks: levels(n, 1) } });
const trade = envelope('btcusdt@trade', {
  case: 'trade',
  value: { symbol: 'btcusdt', tradeId: 777n, price: '100.5', qty: '0.01', tradeTime: 1_767_225_600_120n, buyerIsMaker: true },
});

const order = envelope('alice@order', {
  case: 'order',
  value: {
    user: 'alice', id: 'ev-9', symbol: 'ethusdt', clientOrderId: 'c-1', side: 'BUY', type: 'LIMIT', status: 'PARTIALLY_FILLED',
    price: '3000.5', qty: '2', filledQty: '0.5', updateTime: 1_767_225_600_100n,
  },
});
const bare = envelope('btcusdt@trade', undefined);

test('eventData: 24hrTicker in Binance field names', () => {
  assert.deepEqual(eventData(ticker), {
    e: '24hrTicker', E, s: 'BTCUSDT', p: '-1.5', P: '-0.9', w: '101.2', x: '102', c: '100.5', Q: '0.3', b: '100.4', B: '2', a: '100.6', A: '3',
    o: '102', h: '103', l: '99', v: '1000', q: '101000', O: 1_767_139_200_000, C: 1_767_225_600_000, F: 5, L: 905, n: 901, ...tail,
  });
});

test('eventData: the same ticker on a @miniTicker topic is a 24hrMiniTicker', () => {
  const mini = create(EventSchema, { ...ticker, topic: 'btcusdt@miniticker' });
  assert.deepEqual(eventData(mini), { e: '24hrMiniTicker', E, s: 'BTCUSDT', c: '100.5', o: '102', h: '103', l: '99', v: '1000', q: '101000', ...tail });
});

test('eventData / eventJson: rolling-window tickers (1hTicker, 4hTicker arrays), no trade ids when the window had no trade', () => {
  const h1 = create(EventSchema, { ...ticker, topic: 'btcusdt@ticker_1h' });
  const fields = { s: 'BTCUSDT', p: '-1.5', P: '-0.9', o: '102', h: '103', l: '99', c: '100.5', w: '101.2', v: '1000', q: '101000', O: 1_767_139_200_000, C: 1_767_225_600_000 };
  assert.deepEqual(eventData(h1), { e: '1hTicker', E, ...fields, F: 5, L: 905, n: 901, ...tail });
  const quiet = envelope('!ticker_4h@arr', { case: 'tickerArray', value: { tickers: [{ ...(ticker.payload.value as Ticker), tradeCount: 0n, firstTradeId: 0n, lastTradeId: 0n }] } });
  assert.deepEqual(eventJson(quiet), [{ e: '4hTicker', E, ...fields, F: -1, L: -1, n: 0 }]);
});

test('eventData: bookTicker in Binance field names (no e/E, as Binance sends it)', () => {
  const bt = envelope('btcusdt@bookticker', { case: 'bookTicker', value: { symbol: 'btcusdt', updateId: 400900217n, bidPrice: '25.35', bidQty: '31.21', askPrice: '25.36', askQty: '40.66' } });
  assert.deepEqual(eventData(bt), { u: 400900217, s: 'BTCUSDT', b: '25.35', B: '31.21', a: '25.36', A: '40.66', ...tail });
});

test('eventData: kline in Binance field names', () => {
  assert.deepEqual(eventData(kline), {
    e: 'kline', E, s: 'BTCUSDT',
    k: {
      t: 1_767_225_540_000, T: 1_767_225_599_999, s: 'BTCUSDT', i: '1m', f: 100, L: 150, o: '100', c: '101', h: '102', l: '99.5',
      v: '12', n: 51, x: true, q: '1212', V: '7', Q: '707', B: '0',
    },
    ...tail,
  });
});

test('eventData: depthUpdate, depthSnapshot and trade in Binance field names', () => {
  assert.deepEqual(eventData(depthUpdate), {
    e: 'depthUpdate', E, s: 'BTCUSDT', U: 1001, u: 1003, b: [['100.1', '0'], ['100.0', '1.5']], a: [['100.2', '4']], ...tail,
  });
  assert.deepEqual(eventData(depthSnapshot(2)), {
    e: 'depthSnapshot', E, s: 'BTCUSDT', lastUpdateId: 1003, bids: [['100.00', '0.125'], ['99.50', '1.125']], asks: [['100.00', '0.125'], ['100.50', '1.125']], ...tail,
  });
  assert.deepEqual(eventData(trade), { e: 'trade', E, s: 'BTCUSDT', t: 777, p: '100.5', q: '0.01', T: 1_767_225_600_120, m: true, M: true, ...tail });
});

test('eventData: order as an executionReport, an event without payload as unknown', () => {
  assert.deepEqual(eventData(order), {
    e: 'executionReport', E, s: 'ETHUSDT', c: 'c-1', S: 'BUY', o: 'LIMIT', X: 'PARTIALLY_FILLED', p: '3000.5', q: '2', z: '0.5',
    T: 1_767_225_600_100, i: 'ev-9', ...tail,
  });
  assert.deepEqual(eventData(bare), { e: 'unknown', E, ...tail });
});

/** Reads one server→client WebSocket frame (RFC 6455 §5.2) and checks nothing follows it. */
function readWsFrame(frame: Buffer): { fin: boolean; opcode: number; lengthBytes: number; payload: Buffer } {
  const fin = (frame[0]! & 0x80) !== 0;
  assert.equal(frame[0]! & 0x70, 0, 'no RSV bits');
  const opcode = frame[0]! & 0x0f;
  assert.equal(frame[1]! & 0x80, 0, 'server frames are not masked');
  let len = frame[1]! & 0x7f;
  let offset = 2;
  let lengthBytes = 0;
  if (len === 126) {
    len = frame.readUInt16BE(2);
    offset = 4;
    lengthBytes = 2;
    assert.ok(len >= 126, 'minimal length encoding');
  } else if (len === 127) {
    len = Number(frame.readBigUInt64BE(2));
    offset = 10;
    lengthBytes = 8;
    assert.ok(len >= 65536, 'minimal length encoding');
  }
  assert.equal(frame.length, offset + len, 'exactly one frame');
  return { fin, opcode, lengthBytes, payload: frame.subarray(offset) };
}

test('prepareFrame: FIN + opcode and every payload length encoding', () => {
  for (const [size, lengthBytes] of [[0, 0], [1, 0], [125, 0], [126, 2], [65535, 2], [65536, 8], [200_000, 8]] as const) {
    const payload = Buffer.alloc(size, 0x61);
    const text = readWsFrame(prepareFrame(payload.toString(), false));
    assert.deepEqual({ fin: text.fin, opcode: text.opcode, lengthBytes: text.lengthBytes }, { fin: true, opcode: 1, lengthBytes }, `text ${size}`);
    assert.deepEqual(text.payload, payload);
    const binary = readWsFrame(prepareFrame(new Uint8Array(payload), true));
    assert.deepEqual({ fin: binary.fin, opcode: binary.opcode, lengthBytes: binary.lengthBytes }, { fin: true, opcode: 2, lengthBytes }, `binary ${size}`);
    assert.deepEqual(binary.payload, payload);
  }
  // A view into a larger buffer frames only its own bytes.
  const big = Buffer.from('xxhelloxx');
  assert.equal(readWsFrame(prepareFrame(big.subarray(2, 7), true)).payload.toString(), 'hello');
});

// Small events and depth snapshots of growing size give JSON frames in each length class.
const samples: Array<[string, Event]> = [
  ['ticker', ticker],
  ['kline', kline],
  ['depthUpdate', depthUpdate],
  ['trade', trade],
  ['order', order],
  ['no payload', bare],
  ['small depthSnapshot', depthSnapshot(0)],
  ['medium depthSnapshot', depthSnapshot(100)],
  ['large depthSnapshot', depthSnapshot(3000)],
];

test('EncodedEvent: raw, combined and protobuf frames carry the event, each built once', () => {
  const lengthClasses = new Set<number>();
  for (const [name, ev] of samples) {
    const bytes = toBinary(EventSchema, ev);
    const enc = new EncodedEvent(ev.topic, Number(ev.seq), bytes);
    assert.deepEqual(enc.event, ev, `${name}: decodes lazily from the bytes`);
    assert.equal(enc.event, enc.event, 'decoded once');

    const raw = enc.frame('raw');
    assert.equal(enc.frame('raw'), raw, `${name}: the same Buffer every time`);
    const r = readWsFrame(raw);
    assert.equal(r.opcode, 1);
    assert.deepEqual(JSON.parse(r.payload.toString()), eventData(ev), name);
    lengthClasses.add(r.lengthBytes);

    const combined = enc.frame('combined');
    assert.equal(enc.frame('combined'), combined);
    const c = readWsFrame(combined);
    assert.equal(c.opcode, 1);
    assert.deepEqual(JSON.parse(c.payload.toString()), { stream: ev.topic, data: eventData(ev) }, name);
    assert.ok(c.payload.toString().startsWith(`{"stream":"${ev.topic}","data":{`));

    const pb = enc.frame('protobuf');
    assert.equal(enc.frame('protobuf'), pb);
    const p = readWsFrame(pb);
    assert.equal(p.opcode, 2);
    const sf = fromBinary(ServerFrameSchema, p.payload);
    assert.equal(sf.kind.case, 'event');
    assert.deepEqual(sf.kind.value, ev, name);
  }
  assert.deepEqual([...lengthClasses].sort(), [0, 2, 8], 'the samples cover every frame length class');
});

test('EncodedEvent: a decoded event passed in is used as is', () => {
  const bytes = toBinary(EventSchema, trade);
  const enc = new EncodedEvent(trade.topic, 41, bytes, trade);
  assert.equal(enc.event, trade);
  assert.deepEqual(decodeEvent(bytes), trade);
});

test('controlFrame: JSON for JSON clients, a ServerFrame for protobuf clients', () => {
  const json = { result: null, id: 5 };
  const kind: MessageInitShape<typeof ServerFrameSchema>['kind'] = { case: 'result', value: { id: 5n, topics: [] } };
  for (const format of ['raw', 'combined'] as const) {
    const f = readWsFrame(controlFrame(format, json, kind));
    assert.equal(f.opcode, 1);
    assert.deepEqual(JSON.parse(f.payload.toString()), json);
  }
  const f = readWsFrame(controlFrame('protobuf', json, kind));
  assert.equal(f.opcode, 2);
  const sf = fromBinary(ServerFrameSchema, f.payload);
  assert.equal(sf.kind.case, 'result');
  assert.equal(sf.kind.value.id, 5n);
});
