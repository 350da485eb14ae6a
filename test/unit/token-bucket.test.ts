import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../system/common/token-bucket.ts';

function takeAll(b: TokenBucket, now: number, max = 1000): number {
  let n = 0;
  while (n < max && b.take(1, now)) n++;
  return n;
}

test('TokenBucket: a full burst, then nothing until time passes', () => {
  const b = new TokenBucket(10, 5, 1000);
  assert.equal(takeAll(b, 1000), 5);
  assert.equal(b.take(1, 1000), false);
  assert.equal(b.take(1, 1099), false, '0.99 of a token');
  assert.equal(b.take(1, 1100), true, '100 ms at 10/s is one token');
  assert.equal(b.take(1, 1100), false);
});

test('TokenBucket: refills at the rate, never beyond the burst', () => {
  const b = new TokenBucket(4, 8, 0);
  assert.equal(takeAll(b, 0), 8);
  assert.equal(takeAll(b, 500), 2, 'half a second at 4/s');
  assert.equal(takeAll(b, 1500), 4);
  assert.equal(takeAll(b, 60_000), 8, 'a long pause refills only up to the burst');
});

test('TokenBucket: take(n) takes n tokens or none', () => {
  const b = new TokenBucket(1, 10, 0);
  assert.equal(b.take(7, 0), true);
  assert.equal(b.take(4, 0), false, 'only 3 left');
  assert.equal(b.take(3, 0), true, 'a refused take costs nothing');
  assert.equal(b.take(1, 0), false);
  assert.equal(b.take(2, 2000), true);
});
