import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { combinedStreams, parseJsonRequest, parseProtobufRequest, timeUnitMicros, wsPathListenKey, wsPathStreams } from '../../system/gateway/protocol.ts';
import { ClientFrameSchema } from '../../proto/gen/client_pb.js';

const json = (v: unknown) => parseJsonRequest(JSON.stringify(v));
const proto = (init: MessageInitShape<typeof ClientFrameSchema>) => parseProtobufRequest(toBinary(ClientFrameSchema, create(ClientFrameSchema, init)));

test('JSON: SUBSCRIBE, UNSUBSCRIBE and LIST_SUBSCRIPTIONS', () => {
  assert.deepEqual(json({ method: 'SUBSCRIBE', params: ['btcusdt@trade', 'ethusdt@depth'], id: 1 }), {
    kind: 'subscribe',
    id: 1,
    topics: ['btcusdt@trade', 'ethusdt@depth'],
  });
  assert.deepEqual(json({ method: 'UNSUBSCRIBE', params: ['btcusdt@trade'], id: 'req-2' }), { kind: 'unsubscribe', id: 'req-2', topics: ['btcusdt@trade'] });
  assert.deepEqual(json({ method: 'LIST_SUBSCRIPTIONS', id: 3 }), { kind: 'list', id: 3 });
  assert.deepEqual(json({ method: 'LIST_SUBSCRIPTIONS' }), { kind: 'list', id: null }, 'the id is optional');
  assert.deepEqual(json({ method: 'LIST_SUBSCRIPTIONS', id: null }), { kind: 'list', id: null });
  assert.deepEqual(json({ method: 'SUBSCRIBE', params: ['x@trade'], id: 0 }), { kind: 'subscribe', id: 0, topics: ['x@trade'] }, 'id 0 is a valid id');
});

test('JSON: invalid JSON is code 3', () => {
  for (const text of ['{', 'not json', '', '{"method":"SUBSCRIBE",}']) {
    const r = parseJsonRequest(text);
    assert.equal(r.kind, 'error', text);
    assert.deepEqual({ ...r, msg: undefined }, { kind: 'error', id: null, code: 3, msg: undefined }, text);
    assert.match((r as { msg: string }).msg, /^Invalid JSON/);
  }
});

test('JSON: something other than an object is code 2', () => {
  for (const v of [[], 1, 'SUBSCRIBE', null, true]) {
    assert.deepEqual(json(v), { kind: 'error', id: null, code: 2, msg: 'Invalid request: expected a JSON object' }, JSON.stringify(v));
  }
});

test('JSON: a bad request id is code 1', () => {
  for (const id of [-1, 1.5, true, {}, [1], 'x'.repeat(65), 2 ** 53]) {
    const r = json({ method: 'SUBSCRIBE', params: ['btcusdt@trade'], id });
    assert.equal(r.kind, 'error', JSON.stringify(id));
    assert.equal((r as { code: number }).code, 1, JSON.stringify(id));
    assert.equal(r.id, null, 'a bad id is never echoed');
  }
  assert.equal(json({ method: 'LIST_SUBSCRIPTIONS', id: 'x'.repeat(64) }).kind, 'list', '64 characters is still fine');
});

test('JSON: an unknown property is code 0, with the id echoed', () => {
  assert.deepEqual(json({ method: 'SUBSCRIBE', params: ['btcusdt@trade'], id: 9, extra: 1 }), { kind: 'error', id: 9, code: 0, msg: 'Unknown property "extra"' });
});

test('JSON: an unknown or missing method is code 2', () => {
  const r = json({ method: 'subscribe', params: ['btcusdt@trade'], id: 4 });
  assert.equal(r.kind, 'error');
  assert.equal((r as { code: number }).code, 2);
  assert.equal(r.id, 4);
  assert.match((r as { msg: string }).msg, /unknown method "subscribe", expected one of SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS/);
  assert.deepEqual(json({ params: [], id: 5 }), { kind: 'error', id: 5, code: 2, msg: 'Invalid request: method must be a string' });
  assert.deepEqual(json({ method: 7, id: 5 }), { kind: 'error', id: 5, code: 2, msg: 'Invalid request: method must be a string' });
  const long = json({ method: 'X'.repeat(1000), id: 6 }) as { msg: string };
  assert.ok(long.msg.length < 200, 'a huge method name is not echoed in full');
});

test('JSON: bad params are code 2', () => {
  for (const params of [undefined, [], 'btcusdt@trade', [1], ['btcusdt@trade', null], {}]) {
    for (const method of ['SUBSCRIBE', 'UNSUBSCRIBE']) {
      assert.deepEqual(
        json({ method, params, id: 8 }),
        { kind: 'error', id: 8, code: 2, msg: 'Invalid request: params must be a non-empty array of stream names' },
        `${method} ${JSON.stringify(params)}`,
      );
    }
  }
});

test('protobuf: every ClientFrame kind', () => {
  assert.deepEqual(proto({ id: 1n, kind: { case: 'subscribe', value: { topics: ['btcusdt@trade', 'btcusdt@depth'] } } }), {
    kind: 'subscribe',
    id: 1,
    topics: ['btcusdt@trade', 'btcusdt@depth'],
  });
  assert.deepEqual(proto({ id: 2n, kind: { case: 'unsubscribe', value: { topics: ['btcusdt@trade'] } } }), { kind: 'unsubscribe', id: 2, topics: ['btcusdt@trade'] });
  assert.deepEqual(proto({ id: 3n, kind: { case: 'listSubscriptions', value: {} } }), { kind: 'list', id: 3 });
  assert.deepEqual(proto({ id: 4n, kind: { case: 'ping', value: { clientTimeUs: 1_767_225_600_123_456n } } }), { kind: 'ping', id: 4, clientTimeUs: 1_767_225_600_123_456 });
});

test('protobuf: empty topic lists and an empty frame are code 2', () => {
  assert.deepEqual(proto({ id: 5n, kind: { case: 'subscribe', value: { topics: [] } } }), { kind: 'error', id: 5, code: 2, msg: 'Invalid request: no topics to subscribe' });
  assert.deepEqual(proto({ id: 6n, kind: { case: 'unsubscribe', value: {} } }), { kind: 'error', id: 6, code: 2, msg: 'Invalid request: no topics to unsubscribe' });
  assert.deepEqual(proto({ id: 7n }), { kind: 'error', id: 7, code: 2, msg: 'Invalid request: empty ClientFrame' });
  assert.deepEqual(parseProtobufRequest(new Uint8Array()), { kind: 'error', id: 0, code: 2, msg: 'Invalid request: empty ClientFrame' });
});

test('protobuf: garbage bytes are code 3', () => {
  const garbage = [
    [0x12, 0x05, 0x0a], // subscribe of 5 bytes, 1 present
    [0x07], // wire type 7 does not exist
    [0x08, 0xff, 0xff], // id varint cut short
    [...Buffer.from('{"method":"SUBSCRIBE"}')], // JSON on a protobuf connection
  ];
  for (const bytes of garbage) {
    const r = parseProtobufRequest(Uint8Array.from(bytes));
    assert.equal(r.kind, 'error', JSON.stringify(bytes));
    assert.equal((r as { code: number }).code, 3, JSON.stringify(bytes));
    assert.equal(r.id, null);
    assert.match((r as { msg: string }).msg, /^Invalid frame: not a ClientFrame/);
  }
});

test('AUTH, ACK and SUBSCRIBE with a resume position', () => {
  assert.deepEqual(parseJsonRequest('{"method":"AUTH","params":["a.b.c"],"id":1}'), { kind: 'auth', id: 1, token: 'a.b.c' });
  assert.deepEqual(parseJsonRequest('{"method":"ACK","params":[42],"id":null}'), { kind: 'ack', id: null, upTo: 42 });
  assert.deepEqual(parseJsonRequest('{"method":"SUBSCRIBE","params":["orders"],"id":2,"after":17}'), { kind: 'subscribe', id: 2, topics: ['orders'], ordersAfter: 17 });
  assert.equal((parseJsonRequest('{"method":"ACK","params":[-1],"id":3}') as { code: number }).code, 2);
  assert.equal((parseJsonRequest('{"method":"AUTH","params":[],"id":4}') as { code: number }).code, 2);
  assert.equal((parseJsonRequest('{"method":"SUBSCRIBE","params":["orders"],"id":5,"after":"x"}') as { code: number }).code, 1);
});

test('JSON: SET_PROPERTY / GET_PROPERTY combined, with Binance\'s error codes', () => {
  assert.deepEqual(json({ method: 'SET_PROPERTY', params: ['combined', true], id: 5 }), { kind: 'setProperty', id: 5, name: 'combined', value: true });
  assert.deepEqual(json({ method: 'GET_PROPERTY', params: ['combined'], id: 2 }), { kind: 'getProperty', id: 2, name: 'combined' });
  const err = (v: unknown) => {
    const r = json(v);
    assert.equal(r.kind, 'error');
    return r as { code: number; msg: string };
  };
  assert.deepEqual([err({ method: 'SET_PROPERTY', params: ['combined', 1], id: 1 }).code, err({ method: 'SET_PROPERTY', params: ['combined', 1], id: 1 }).msg], [1, 'Invalid value type: expected Boolean']);
  assert.deepEqual([err({ method: 'GET_PROPERTY', params: ['nope'], id: 1 }).code, err({ method: 'GET_PROPERTY', params: ['nope'], id: 1 }).msg], [0, 'Unknown property']);
  assert.equal(err({ method: 'GET_PROPERTY', params: [], id: 1 }).msg, 'Invalid request: property name must be a string');
  assert.equal(err({ method: 'SET_PROPERTY', params: ['combined', true, 1], id: 1 }).msg, 'Invalid request: too many parameters');
});

test('/ws paths: streams, connection names and the one listenKey hook; /stream reads + as a plus; timeUnit', () => {
  assert.deepEqual(wsPathStreams('/ws/btcusdt@trade/ethusdt@depth'), ['btcusdt@trade', 'ethusdt@depth']);
  assert.deepEqual(wsPathStreams('/ws/1'), [], 'ccxt\'s connection number carries nothing');
  const key = 'pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1';
  assert.equal(wsPathListenKey(`/ws/${key}`), key);
  assert.deepEqual(wsPathStreams(`/ws/${key}`), [], 'a listenKey is not a stream');
  for (const notKey of ['/ws/1', '/ws/btcusdt@trade', `/ws/${key}/btcusdt@trade`, '/ws', '/ws/short']) assert.equal(wsPathListenKey(notKey), undefined, notKey);
  assert.deepEqual(combinedStreams(new URL('http://x/stream?streams=btcusdt@kline_1d@+08:00/btcusdt@trade')), ['btcusdt@kline_1d@+08:00', 'btcusdt@trade']);
  assert.deepEqual(combinedStreams(new URL('http://x/stream?streams=btcusdt@kline_1d@%2B08:00')), ['btcusdt@kline_1d@+08:00']);
  assert.equal(timeUnitMicros(new URL('http://x/ws?timeUnit=MICROSECOND')), true);
  assert.equal(timeUnitMicros(new URL('http://x/ws?timeUnit=microsecond')), true);
  assert.equal(timeUnitMicros(new URL('http://x/ws?timeUnit=MILLISECOND')), false);
  assert.equal(timeUnitMicros(new URL('http://x/ws')), false);
  assert.match(String(timeUnitMicros(new URL('http://x/ws?timeUnit=ns'))), /MILLISECOND or MICROSECOND/);
});
