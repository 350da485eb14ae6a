import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TimingWheel } from '../../system/common/timing-wheel.ts';

// The wheel is driven by tick() only: start() is never called, so no real timer exists.
function wheel(slots = 8, tickMs = 10) {
  const fired: Array<{ item: string; tick: number }> = [];
  let now = 0;
  const w = new TimingWheel<string>({ tickMs, slots, onExpire: (item) => fired.push({ item, tick: now }) });
  const advance = (ticks: number) => {
    for (let i = 0; i < ticks; i++) {
      now++;
      w.tick();
    }
  };
  return { w, fired, advance, at: () => now };
}

test('TimingWheel: an item fires after ceil(delay / tick) ticks, at least one', () => {
  const { w, fired, advance } = wheel(8, 10);
  w.schedule('zero', 0);
  w.schedule('one', 10);
  w.schedule('round-up', 11);
  w.schedule('five', 50);
  assert.equal(w.size, 4);
  advance(1);
  assert.deepEqual(fired.map((f) => f.item).sort(), ['one', 'zero']);
  advance(1);
  assert.deepEqual(fired.at(-1), { item: 'round-up', tick: 2 });
  advance(2);
  assert.equal(fired.length, 3, 'nothing due at ticks 3 and 4');
  advance(1);
  assert.deepEqual(fired.at(-1), { item: 'five', tick: 5 });
  assert.equal(w.size, 0);
});

test('TimingWheel: delays longer than one revolution wait whole rounds', () => {
  const slots = 8;
  for (const ticks of [7, 8, 9, 16, 17, 25, 64, 100]) {
    const { w, fired, advance } = wheel(slots, 10);
    advance(3); // start from a cursor that is not at slot 0
    w.schedule('x', ticks * 10);
    advance(ticks - 1);
    assert.equal(fired.length, 0, `${ticks} ticks: must not fire early`);
    assert.equal(w.has('x'), true);
    advance(1);
    assert.deepEqual(fired, [{ item: 'x', tick: 3 + ticks }], `${ticks} ticks`);
    advance(3 * slots);
    assert.equal(fired.length, 1, `${ticks} ticks: fires once`);
  }
});

test('TimingWheel: reschedule moves the deadline, cancel removes it', () => {
  const { w, fired, advance } = wheel(4, 10);
  w.schedule('a', 30);
  w.schedule('b', 30);
  advance(2);
  w.schedule('a', 50); // pushed out past one revolution from here
  w.cancel('b');
  assert.equal(w.has('b'), false);
  assert.equal(w.size, 1);
  advance(1);
  assert.deepEqual(fired, [], 'neither fires at the original deadline');
  advance(3);
  assert.deepEqual(fired, []);
  advance(1);
  assert.deepEqual(fired, [{ item: 'a', tick: 7 }]);
  advance(20);
  assert.equal(fired.length, 1);
  w.cancel('never-scheduled'); // harmless
});

test('TimingWheel: many items in one slot fire once each', () => {
  const { w, fired, advance } = wheel(4, 10);
  const items = Array.from({ length: 100 }, (_, i) => `c${i}`);
  for (const [i, it] of items.entries()) w.schedule(it, 10 * (1 + (i % 10)));
  advance(40);
  assert.equal(fired.length, items.length);
  assert.deepEqual(new Set(fired.map((f) => f.item)).size, items.length);
  for (const f of fired) assert.equal(f.tick, 1 + (Number(f.item.slice(1)) % 10), f.item);
});

test('TimingWheel: a throwing callback does not stop the others, and items can reschedule themselves', (t) => {
  t.mock.method(console, 'error', () => {});
  const seen: string[] = [];
  const w: TimingWheel<string> = new TimingWheel<string>({
    tickMs: 5,
    slots: 4,
    onExpire: (item) => {
      seen.push(item);
      if (item === 'bad') throw new Error('boom');
      if (item === 'again' && seen.filter((s) => s === 'again').length < 3) w.schedule('again', 5);
    },
  });
  w.schedule('bad', 5);
  w.schedule('good', 5);
  w.schedule('again', 5);
  w.tick();
  assert.deepEqual(seen.sort(), ['again', 'bad', 'good']);
  assert.equal(w.has('again'), true);
  w.tick();
  w.tick();
  w.tick();
  assert.equal(seen.filter((s) => s === 'again').length, 3);
  assert.equal(seen.filter((s) => s === 'good').length, 1);
  assert.equal(w.size, 0);
});

test('TimingWheel: bad options throw', () => {
  assert.throws(() => new TimingWheel({ tickMs: 0, slots: 8, onExpire: () => {} }), /tickMs > 0/);
  assert.throws(() => new TimingWheel({ tickMs: 10, slots: 1, onExpire: () => {} }), /at least 2 slots/);
});

test('TimingWheel: start() ticks every tickMs until stop()', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const fired: string[] = [];
  const w = new TimingWheel<string>({ tickMs: 100, slots: 8, onExpire: (item) => fired.push(item) });
  w.start();
  w.start(); // idempotent: a second interval would fire items twice as fast
  w.schedule('a', 300);
  t.mock.timers.tick(299);
  assert.deepEqual(fired, []);
  t.mock.timers.tick(1);
  assert.deepEqual(fired, ['a']);
  w.stop();
  w.schedule('b', 100);
  t.mock.timers.tick(1000);
  assert.deepEqual(fired, ['a'], 'a stopped wheel fires nothing');
});
