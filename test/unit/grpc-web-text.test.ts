// gRPC-web text mode over Connect's binary protocol: request bodies in base64
// split anywhere (and padded mid-stream, as clients that encode chunks
// separately send them) decode to the same bytes; each response chunk is
// base64 on its own; bad base64 is a clear INVALID_ARGUMENT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, ConnectError } from '@connectrpc/connect';
import type { UniversalServerRequest, UniversalServerResponse } from '@connectrpc/connect/protocol';
import { binaryResponseAsText, isGrpcWebText, textRequestAsBinary } from '../../system/gateway/grpc-web-text.ts';

async function* chunks(parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield Buffer.from(p, 'latin1');
}
const request = (parts: string[]): UniversalServerRequest => ({
  httpVersion: '1.1',
  method: 'POST',
  url: 'http://gw/marketpush.v1.PushService/ExchangeInfo',
  header: new Headers({ 'content-type': 'application/grpc-web-text', 'content-length': '99' }),
  body: chunks(parts),
  signal: new AbortController().signal,
});
async function drain(body: unknown): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of body as AsyncIterable<Uint8Array>) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

test('content types of text mode', () => {
  assert.ok(isGrpcWebText('application/grpc-web-text'));
  assert.ok(isGrpcWebText('application/grpc-web-text+proto'));
  assert.ok(!isGrpcWebText('application/grpc-web+proto'));
  assert.ok(!isGrpcWebText('application/grpc-web-textual'));
  assert.ok(!isGrpcWebText(undefined));
});

test('a text request becomes the binary one, whatever its chunking and padding', async () => {
  const a = Buffer.from([0, 0, 0, 0, 5, 1, 2, 3, 4, 5]); // 10 bytes: padded when encoded alone
  const b = Buffer.from([9, 8]);
  const whole = Buffer.concat([a, b]);
  // One base64 string; split at every position; and two separately padded pieces.
  const text = whole.toString('base64');
  for (let i = 0; i <= text.length; i++) {
    const req = textRequestAsBinary(request([text.slice(0, i), text.slice(i)]));
    assert.equal(req.header.get('content-type'), 'application/grpc-web+proto');
    assert.equal(req.header.get('content-length'), null);
    assert.deepEqual(await drain(req.body), whole, `split at ${i}`);
  }
  const padded = a.toString('base64') + b.toString('base64'); // "…=" in the middle
  assert.match(padded.slice(0, -4), /=/);
  assert.deepEqual(await drain(textRequestAsBinary(request([padded.slice(0, 5), padded.slice(5)])).body), whole);
  assert.deepEqual(await drain(textRequestAsBinary(request([` ${padded}\r\n`])).body), whole, 'whitespace ignored');
});

test('bad base64 is INVALID_ARGUMENT with a plain message', async () => {
  for (const bad of [['AAA*'], ['AAAAA']]) {
    await assert.rejects(drain(textRequestAsBinary(request(bad)).body), (e: unknown) => e instanceof ConnectError && e.code === Code.InvalidArgument && /base64/.test(e.rawMessage));
  }
});

test('each response chunk is base64 on its own, the content type says text', async () => {
  async function* body(): AsyncGenerator<Uint8Array> {
    yield Uint8Array.from([0, 0, 0, 0, 1, 7]);
    yield Uint8Array.from([0x80, 0, 0, 0, 2, 65, 66]);
  }
  const res: UniversalServerResponse = { status: 200, header: new Headers({ 'content-type': 'application/grpc-web+proto' }), body: body() };
  const text = binaryResponseAsText(res);
  assert.equal(new Headers(text.header).get('content-type'), 'application/grpc-web-text+proto');
  const pieces: string[] = [];
  for await (const c of text.body as AsyncIterable<Uint8Array>) pieces.push(Buffer.from(c).toString('latin1'));
  assert.deepEqual(pieces, [Buffer.from([0, 0, 0, 0, 1, 7]).toString('base64'), Buffer.from([0x80, 0, 0, 0, 2, 65, 66]).toString('base64')]);
  // Not a gRPC-web answer (e.g. a 415 before the call): untouched.
  const plain: UniversalServerResponse = { status: 415, header: new Headers({ 'content-type': 'text/plain' }) };
  assert.equal(binaryResponseAsText(plain), plain);
});
