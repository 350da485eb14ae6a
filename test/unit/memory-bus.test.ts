import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBus, subjectMatches } from '../../system/common/bus.ts';

test('subjectMatches: * is one token, > one or more trailing tokens', () => {
  const yes: Array<[string, string]> = [
    ['md.trade.btcusdt', 'md.trade.btcusdt'],
    ['md.*.btcusdt', 'md.kline_1m.btcusdt'],
    ['md.trade.*', 'md.trade.ethusdt'],
    ['md.>', 'md.trade.btcusdt'],
    ['md.>', 'md.x'],
    ['>', 'md'],
    ['*.*.*', 'a.b.c'],
  ];
  const no: Array<[string, string]> = [
    ['md.trade.btcusdt', 'md.trade.ethusdt'],
    ['md.*', 'md.trade.btcusdt'],
    ['md.*.btcusdt', 'md.trade'],
    ['md.>', 'md'],
    ['md.trade', 'md.trade.btcusdt'],
    ['md.trade.btcusdt', 'md.trade'],
    ['md.*.*', 'md.trade.btcusdt.extra'],
  ];
  for (const [p, s] of yes) assert.equal(subjectMatches(p, s), true, `${p} ~ ${s}`);
  for (const [p, s] of no) assert.equal(subjectMatches(p, s), false, `${p} !~ ${s}`);
});

test('MemoryBus: delivers asynchronously to every matching subscription, in publish order', async (t) => {
  const bus = new MemoryBus();
  t.after(() => bus.close());
  const got: string[] = [];
  bus.subscribe('md.trade.*', (s, d) => got.push(`trade*:${s}:${new TextDecoder().decode(d)}`));
  bus.subscribe('md.>', (s) => got.push(`md>:${s}`));
  bus.subscribe('md.*.btcusdt', (s) => got.push(`*btc:${s}`));
  bus.publish('md.trade.btcusdt', new TextEncoder().encode('1'));
  bus.publish('md.ticker.ethusdt', new TextEncoder().encode('2'));
  bus.publish('ctl.other', new TextEncoder().encode('3'));
  assert.deepEqual(got, [], 'nothing is delivered inside publish');
  await bus.flush();
  assert.deepEqual(got, ['trade*:md.trade.btcusdt:1', 'md>:md.trade.btcusdt', '*btc:md.trade.btcusdt', 'md>:md.ticker.ethusdt']);
});

test('MemoryBus: unsubscribe stops delivery, even of messages already published', async (t) => {
  const bus = new MemoryBus();
  t.after(() => bus.close());
  const a: string[] = [];
  const b: string[] = [];
  const subA = bus.subscribe('md.>', (s) => a.push(s));
  bus.subscribe('md.>', (s) => b.push(s));
  bus.publish('md.trade.btcusdt', new Uint8Array());
  await bus.flush();
  bus.publish('md.trade.ethusdt', new Uint8Array());
  subA.unsubscribe();
  await bus.flush();
  assert.deepEqual(a, ['md.trade.btcusdt']);
  assert.deepEqual(b, ['md.trade.btcusdt', 'md.trade.ethusdt']);
});

test('MemoryBus: a throwing handler does not stop the others; close drops subscriptions', async (t) => {
  t.mock.method(console, 'error', () => {});
  const bus = new MemoryBus();
  const got: string[] = [];
  bus.subscribe('x', () => {
    throw new Error('handler failed');
  });
  bus.subscribe('x', (s) => got.push(s));
  bus.publish('x', new Uint8Array());
  await bus.flush();
  assert.deepEqual(got, ['x']);
  await bus.close();
  bus.publish('x', new Uint8Array());
  await bus.flush();
  assert.deepEqual(got, ['x']);
});
