import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShardedSetMap } from '../../system/common/sharded-map.ts';

for (const shards of [1, 7, 1024]) {
  test(`ShardedSetMap(${shards}): add reports the first value of a key, delete the last`, () => {
    const m = new ShardedSetMap<string, number>(shards);
    assert.equal(m.add('btcusdt@trade', 1), true);
    assert.equal(m.add('btcusdt@trade', 2), false);
    assert.equal(m.add('btcusdt@trade', 2), false, 'adding a value twice is not a first add');
    assert.equal(m.size, 1);
    assert.deepEqual([...m.get('btcusdt@trade')!].sort(), [1, 2]);

    assert.equal(m.delete('btcusdt@trade', 3), false, 'deleting an absent value changes nothing');
    assert.equal(m.delete('nope@trade', 1), false, 'deleting from an absent key changes nothing');
    assert.equal(m.delete('btcusdt@trade', 1), false);
    assert.equal(m.size, 1);
    assert.equal(m.delete('btcusdt@trade', 2), true);
    assert.equal(m.size, 0);
    assert.equal(m.get('btcusdt@trade'), undefined);
    assert.equal(m.delete('btcusdt@trade', 2), false, 'a second delete is not a last delete');

    // The key can start over after it emptied.
    assert.equal(m.add('btcusdt@trade', 2), true);
    assert.equal(m.size, 1);
  });

  test(`ShardedSetMap(${shards}): size counts keys and keys() visits every shard`, () => {
    const m = new ShardedSetMap<string, string>(shards);
    const keys = Array.from({ length: 3000 }, (_, i) => `sym${i}usdt@depth`);
    for (const k of keys) {
      m.add(k, 'a');
      m.add(k, 'b');
    }
    assert.equal(m.size, keys.length);
    assert.deepEqual([...m.keys()].sort(), [...keys].sort());
    for (const k of keys.slice(0, 1000)) {
      m.delete(k, 'a');
      m.delete(k, 'b');
    }
    assert.equal(m.size, 2000);
    assert.deepEqual([...m.keys()].sort(), keys.slice(1000).sort());
  });
}

test('ShardedSetMap: 1 shard and 1024 shards give the same results for the same operations', () => {
  const one = new ShardedSetMap<string, number>(1);
  const many = new ShardedSetMap<string, number>(1024);
  let seed = 42;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let i = 0; i < 5000; i++) {
    const key = `k${rnd(200)}`;
    const value = rnd(5);
    if (rnd(3) === 0) assert.equal(one.delete(key, value), many.delete(key, value), `delete ${key} ${value}`);
    else assert.equal(one.add(key, value), many.add(key, value), `add ${key} ${value}`);
    assert.equal(one.size, many.size);
  }
  assert.deepEqual([...one.keys()].sort(), [...many.keys()].sort());
  for (const k of one.keys()) assert.deepEqual([...one.get(k)!].sort(), [...many.get(k)!].sort());
});

test('ShardedSetMap: a bad shard count throws', () => {
  for (const bad of [0, -1, 1.5, Number.NaN, Infinity]) {
    assert.throws(() => new ShardedSetMap(bad), /shard count must be a positive integer/, String(bad));
  }
});
