import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  KLINE_INTERVALS,
  REAL_SYMBOLS,
  defaultSymbols,
  depthSnapshotSubject,
  isConflatable,
  parseTopic,
  subjectTopic,
  symbolTopics,
  topicSubject,
  type ParsedTopic,
} from '../../system/common/topics.ts';

test('parseTopic accepts the Binance stream names', () => {
  assert.deepEqual(parseTopic('btcusdt@ticker'), { topic: 'btcusdt@ticker', symbol: 'btcusdt', stream: 'ticker', kind: 'ticker' });
  assert.deepEqual(parseTopic('ETHUSDT@Depth'), { topic: 'ethusdt@depth', symbol: 'ethusdt', stream: 'depth', kind: 'depth' }, 'case is normalised');
  assert.deepEqual(parseTopic('sym031usdt@trade'), { topic: 'sym031usdt@trade', symbol: 'sym031usdt', stream: 'trade', kind: 'trade' });
  for (const interval of KLINE_INTERVALS) {
    assert.deepEqual(parseTopic(`bnbusdt@kline_${interval}`), { topic: `bnbusdt@kline_${interval}`, symbol: 'bnbusdt', stream: `kline_${interval}`, kind: 'kline', interval });
  }
});

test('parseTopic rejects malformed names with a message saying why', () => {
  const bad: Array<[unknown, RegExp]> = [
    [42, /topic must be a string/],
    [null, /topic must be a string/],
    ['btcusdt', /expected <symbol>@<stream>/],
    ['@ticker', /expected <symbol>@<stream>/],
    ['btc@usdt@ticker', /expected <symbol>@<stream>/],
    ['b@ticker', /invalid symbol/],
    ['btc-usdt@ticker', /invalid symbol/],
    [`${'a'.repeat(21)}@ticker`, /invalid symbol/],
    ['btcusdt@kline_2m', /invalid kline interval/],
    ['btcusdt@kline_', /invalid kline interval/],
    ['btcusdt@aggTrade', /unknown stream "aggtrade"/],
    ['btcusdt@', /unknown stream ""/],
    ['btcusdt@depthsnap', /unknown stream/],
  ];
  for (const [raw, re] of bad) {
    const r = parseTopic(raw);
    assert.equal(typeof r, 'string', `${String(raw)} must be rejected`);
    assert.match(r as string, re, String(raw));
  }
});

test('topicSubject and subjectTopic are inverse', () => {
  for (const symbol of ['btcusdt', 'sym999usdt']) {
    for (const topic of symbolTopics(symbol)) {
      const parsed = parseTopic(topic) as ParsedTopic;
      const subject = topicSubject(parsed);
      assert.match(subject, /^md\.[a-z0-9_]+\.[a-z0-9]+$/);
      assert.equal(subjectTopic(subject), topic);
    }
  }
  assert.equal(topicSubject(parseTopic('btcusdt@kline_1m') as ParsedTopic), 'md.kline_1m.btcusdt');
  assert.equal(depthSnapshotSubject('btcusdt'), 'md.depthsnap.btcusdt');
  for (const notMarket of ['ctl.drain.x', 'md', 'md.btcusdt', 'mdx.ticker.btcusdt']) assert.equal(subjectTopic(notMarket), undefined, notMarket);
});

test('symbolTopics lists every stream of a symbol, and only tickers and klines conflate', () => {
  const topics = symbolTopics('btcusdt');
  assert.equal(topics.length, 3 + KLINE_INTERVALS.length);
  for (const t of topics) assert.equal(typeof parseTopic(t), 'object', t);
  assert.deepEqual(
    topics.filter(isConflatable),
    ['btcusdt@ticker', ...KLINE_INTERVALS.map((i) => `btcusdt@kline_${i}`)],
  );
});

test('defaultSymbols(n): n unique valid symbols, the real ones first, starting with btcusdt', () => {
  for (const n of [1, 2, REAL_SYMBOLS.length - 1, REAL_SYMBOLS.length, REAL_SYMBOLS.length + 1, 1000]) {
    const s = defaultSymbols(n);
    assert.equal(s.length, n, `n=${n}`);
    assert.equal(new Set(s).size, n, `n=${n}: unique`);
    assert.equal(s[0], 'btcusdt');
    assert.deepEqual(s.slice(0, REAL_SYMBOLS.length), REAL_SYMBOLS.slice(0, n));
    for (const sym of s) assert.equal(typeof parseTopic(`${sym}@trade`), 'object', sym);
  }
  assert.deepEqual(defaultSymbols(0), []);
  assert.equal(defaultSymbols(REAL_SYMBOLS.length + 1).at(-1), `sym0${REAL_SYMBOLS.length + 1}usdt`);
});
