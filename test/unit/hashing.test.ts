import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fnv1a, rendezvous } from '../../system/common/hashing.ts';

const topics = Array.from({ length: 10_000 }, (_, i) => `sym${String(i).padStart(5, '0')}usdt@${['ticker', 'trade', 'depth', 'kline_1m'][i % 4]}`);
const nodes = ['server-1', 'server-2', 'server-3', 'server-4'];

test('fnv1a: a stable unsigned 32-bit hash', () => {
  assert.equal(fnv1a('btcusdt@trade'), fnv1a('btcusdt@trade'));
  assert.notEqual(fnv1a('btcusdt@trade'), fnv1a('btcusdt@tradf'));
  for (const t of topics.slice(0, 100)) {
    const h = fnv1a(t);
    assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 32, t);
  }
});

test('rendezvous: the owner does not depend on node order and is stable across calls', () => {
  const reversed = [...nodes].reverse();
  for (const t of topics.slice(0, 2000)) {
    const owner = rendezvous(t, nodes);
    assert.ok(owner && nodes.includes(owner));
    assert.equal(rendezvous(t, reversed), owner, t);
    assert.equal(rendezvous(t, nodes), owner, t);
  }
  assert.equal(rendezvous('btcusdt@trade', []), undefined);
  assert.equal(rendezvous('btcusdt@trade', ['only']), 'only');
});

test('rendezvous: 10k topics spread over 4 nodes within ±15 %', () => {
  const counts = new Map<string, number>(nodes.map((n) => [n, 0]));
  for (const t of topics) counts.set(rendezvous(t, nodes)!, counts.get(rendezvous(t, nodes)!)! + 1);
  const fair = topics.length / nodes.length;
  for (const [n, c] of counts) assert.ok(Math.abs(c - fair) <= fair * 0.15, `${n} owns ${c} topics, fair share ${fair}`);
});

test('rendezvous: removing a node moves only its own topics, adding one takes only topics for itself', () => {
  const before = new Map(topics.map((t) => [t, rendezvous(t, nodes)!]));
  const without3 = nodes.filter((n) => n !== 'server-3');
  let moved = 0;
  for (const t of topics) {
    const after = rendezvous(t, without3)!;
    if (before.get(t) === 'server-3') {
      assert.notEqual(after, 'server-3');
      moved++;
    } else {
      assert.equal(after, before.get(t), `${t} moved although its owner stayed`);
    }
  }
  assert.ok(moved > 0);

  const withFifth = [...nodes, 'server-5'];
  for (const t of topics) {
    const after = rendezvous(t, withFifth)!;
    assert.ok(after === before.get(t) || after === 'server-5', `${t} moved between old nodes`);
  }
});
