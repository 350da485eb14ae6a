// Signed WebSocket-API requests (ws-api-sign.ts): Binance's own HMAC example
// from web-socket-api.md, and every way a request is refused, in the order
// the gateway checks them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hmacHex, signaturePayload, verifySigned } from '../../system/gateway/ws-api-sign.ts';
import type { ApiKeyEntry } from '../../system/common/api-keys.ts';

// Binance's documented example key pair and signature (not a real account).
const DOC_KEY = 'vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A';
const DOC_SECRET = 'NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j';

test("Binance's documented HMAC example: the payload sorts params and leaves out the signature", () => {
  const params = { symbol: 'BTCUSDT', side: 'SELL', type: 'LIMIT', timeInForce: 'GTC', quantity: '0.01000000', price: '52000.00', recvWindow: 100, timestamp: 1645423376532, apiKey: DOC_KEY, signature: 'x' };
  const payload = signaturePayload(params);
  assert.equal(payload, `apiKey=${DOC_KEY}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT`);
  assert.equal(hmacHex(DOC_SECRET, payload), 'aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24');
});

test('verifySigned: the key entry for a good request; Binance codes for each fault', () => {
  const now = 1_800_000_000_000;
  const entry: ApiKeyEntry = { apiKey: DOC_KEY, secret: DOC_SECRET, user: 'alice', created: new Date(0).toISOString() };
  const keys = [entry, { apiKey: 'oldKeyWithoutSecret00', user: 'bob', created: new Date(0).toISOString() }];
  const sign = (p: Record<string, unknown>, secret = DOC_SECRET) => ({ ...p, signature: hmacHex(secret, signaturePayload(p)) });
  const without = (k: string) => Object.fromEntries(Object.entries(good).filter(([n]) => n !== k));
  const good = { apiKey: DOC_KEY, timestamp: now - 100, recvWindow: 10_000 };
  assert.equal(verifySigned(sign(good), keys, now), entry);
  const upper = sign(good);
  assert.equal(verifySigned({ ...upper, signature: upper.signature.toUpperCase() }, keys, now), entry, 'HMAC signatures are case-insensitive');
  assert.equal(verifySigned(sign({ ...good, timestamp: (now - 100) * 1000 }), keys, now), entry, 'µs timestamps');
  assert.equal(verifySigned(sign({ apiKey: DOC_KEY, timestamp: now - 4_000 }), keys, now), entry, 'recvWindow defaults to 5000');

  const code = (p: Record<string, unknown>, k: ApiKeyEntry[] | 'none' = keys) => {
    const r = verifySigned(p, k === 'none' ? undefined : k, now);
    return 'code' in r ? r.code : 'accepted';
  };
  assert.equal(code(sign(without('apiKey'))), -1102);
  assert.equal(code(sign({ ...good, apiKey: 'bad key!' })), -2014);
  assert.equal(code(sign({ ...good, apiKey: 'unknownKey0000000000' })), -2015);
  assert.equal(code(sign({ ...good, apiKey: 'oldKeyWithoutSecret00' })), -2015, 'a key with no secret cannot sign');
  assert.equal(code(sign(good), 'none'), -2015, 'no key file: every key refused');
  assert.equal(code({ ...good }), -1102, 'no signature');
  assert.equal(code(sign(without('timestamp'))), -1102);
  assert.equal(code(sign({ ...good, timestamp: 'yesterday' })), -1102);
  assert.equal(code(sign({ ...good, timestamp: now - 10_001 })), -1021, 'older than recvWindow');
  assert.equal(code(sign({ ...good, timestamp: now + 1_000 })), -1021, '1 s ahead');
  assert.equal(code(sign({ ...good, recvWindow: 60_001 })), -1130);
  assert.equal(code(sign({ ...good, recvWindow: '5000.1234' })), -1130);
  assert.equal(code(sign({ ...good, symbol: 'BTCUSDT' })), -1103, 'a param the method does not take');
  assert.equal(code(sign({ ...good, apiKey: { a: 1 } })), -1130);
  assert.equal(code(sign(good, 'anotherSecret0000000')), -1022, 'signed with another secret');
  assert.equal(code({ ...sign(good), timestamp: now - 50 }), -1022, 'a param changed after signing');
  assert.equal(code({ ...good, signature: 'yN1vWpXb+qoZ3/dGiFs9vmpNdV7e3FxkA+BstzbezDKwObcijvk/CVkWxIwMCtCJbP270R0OempYwEpS6rDZCQ==' }), -1022, 'an Ed25519 signature');
});
