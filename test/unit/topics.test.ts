import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BINANCE_KLINE_INTERVALS,
  TZ_KLINE_INTERVALS,
  klineNextOpen,
  klineOpenTime,
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
  assert.deepEqual(parseTopic('ETHUSDT@Depth'), { topic: 'ethusdt@depth', symbol: 'ethusdt', stream: 'depth', kind: 'depth', depthMs: 1000 }, 'case is normalised');
  assert.deepEqual(parseTopic('btcusdt@depth@100ms'), { topic: 'btcusdt@depth@100ms', symbol: 'btcusdt', stream: 'depth@100ms', kind: 'depth', depthMs: 100 });
  assert.deepEqual(parseTopic('btcusdt@depth@1000ms'), { topic: 'btcusdt@depth', symbol: 'btcusdt', stream: 'depth', kind: 'depth', depthMs: 1000 }, 'the 1 s stream spelled out');
  assert.deepEqual(parseTopic('btcusdt@miniTicker'), { topic: 'btcusdt@miniticker', symbol: 'btcusdt', stream: 'miniticker', kind: 'ticker' });
  assert.deepEqual(parseTopic('sym031usdt@trade'), { topic: 'sym031usdt@trade', symbol: 'sym031usdt', stream: 'trade', kind: 'trade' });
  for (const interval of BINANCE_KLINE_INTERVALS) {
    assert.deepEqual(parseTopic(`bnbusdt@kline_${interval}`), { topic: `bnbusdt@kline_${interval}`, symbol: 'bnbusdt', stream: `kline_${interval}`, kind: 'kline', interval });
  }
  // 1M is a month, 1m a minute: the interval keeps its case.
  assert.equal((parseTopic('BTCUSDT@kline_1M') as ParsedTopic).topic, 'btcusdt@kline_1M');
  assert.equal((parseTopic('btcusdt@kline_1m') as ParsedTopic).interval, '1m');
  // +08:00: the intervals whose candles differ are on the bus; the others are the UTC ones, derived by a push-server.
  assert.deepEqual(parseTopic('btcusdt@kline_1d@+08:00'), { topic: 'btcusdt@kline_1d@+08:00', symbol: 'btcusdt', stream: 'kline_1d@+08:00', kind: 'kline', interval: '1d', tz: true });
  assert.deepEqual(parseTopic('btcusdt@kline_1h@+08:00'), { topic: 'btcusdt@kline_1h@+08:00', symbol: 'btcusdt', stream: 'kline_1h@+08:00', kind: 'kline', interval: '1h', tz: true, source: 'btcusdt@kline_1h' });
  assert.deepEqual(TZ_KLINE_INTERVALS, ['6h', '12h', '1d', '3d', '1w', '1M']);
  assert.deepEqual(parseTopic('btcusdt@aggTrade'), { topic: 'btcusdt@aggtrade', symbol: 'btcusdt', stream: 'aggtrade', kind: 'trade', source: 'btcusdt@trade' });
  assert.deepEqual(parseTopic('!miniTicker@arr'), { topic: '!miniticker@arr', symbol: '', stream: 'miniticker@arr', kind: 'ticker', allMarket: true, source: '*@ticker' });
  assert.ok(!isConflatable('!ticker@arr'), 'an array holds only what changed: a newer one does not replace it');
  assert.deepEqual(parseTopic('btcusdt@avgPrice'), { topic: 'btcusdt@avgprice', symbol: 'btcusdt', stream: 'avgprice', kind: 'ticker', source: 'btcusdt@trade' });
  assert.deepEqual(parseTopic('btcusdt@depth5'), { topic: 'btcusdt@depth5', symbol: 'btcusdt', stream: 'depth5', kind: 'ticker', levels: 5, depthMs: 1000, source: 'btcusdt@depth' });
  assert.deepEqual(parseTopic('btcusdt@depth20@100ms'), { topic: 'btcusdt@depth20@100ms', symbol: 'btcusdt', stream: 'depth20@100ms', kind: 'ticker', levels: 20, depthMs: 100, source: 'btcusdt@depth@100ms' });
  // Rolling windows: at the symbol's @ticker cadence, and the all-market arrays at every @ticker's.
  assert.deepEqual(parseTopic('BTCUSDT@ticker_1h'), { topic: 'btcusdt@ticker_1h', symbol: 'btcusdt', stream: 'ticker_1h', kind: 'ticker', source: 'btcusdt@ticker', window: '1h' });
  assert.deepEqual(parseTopic('!ticker_4h@arr'), { topic: '!ticker_4h@arr', symbol: '', stream: 'ticker_4h@arr', kind: 'ticker', allMarket: true, source: '*@ticker', window: '4h' });
  assert.equal((parseTopic('ethusdt@ticker_1d') as ParsedTopic).window, '1d');
  assert.ok(isConflatable('btcusdt@ticker_1d'), 'a window is a whole state');
  assert.ok(!isConflatable('!ticker_1h@arr'));
});

test('kline boundaries: fixed intervals from the epoch, weeks from Monday, months by the calendar, +08:00 shifted', () => {
  const t = Date.UTC(2024, 1, 29, 20, 30, 15, 500); // Thursday 2024-02-29 20:30:15.5 UTC = Friday 04:30 in UTC+8
  const h8 = 8 * 3_600_000;
  assert.equal(klineOpenTime('1s', t), Date.UTC(2024, 1, 29, 20, 30, 15));
  assert.equal(klineOpenTime('3m', t), Date.UTC(2024, 1, 29, 20, 30));
  assert.equal(klineOpenTime('12h', t), Date.UTC(2024, 1, 29, 12));
  assert.equal(klineOpenTime('12h', t, h8), Date.UTC(2024, 1, 29, 16), '12h in UTC+8 opens at 00:00 / 12:00 local');
  assert.equal(klineOpenTime('1d', t), Date.UTC(2024, 1, 29));
  assert.equal(klineOpenTime('1d', t, h8), Date.UTC(2024, 1, 29, 16), 'the UTC+8 day began at 16:00 UTC the day before');
  assert.equal(klineOpenTime('1w', t), Date.UTC(2024, 1, 26), 'weeks open on Monday');
  assert.equal(new Date(klineOpenTime('1w', t)).getUTCDay(), 1);
  assert.equal(klineOpenTime('1M', t), Date.UTC(2024, 1, 1));
  assert.equal(klineNextOpen('1M', Date.UTC(2024, 1, 1)), Date.UTC(2024, 2, 1), 'February 2024 has 29 days');
  assert.equal(klineOpenTime('1M', t, h8), Date.UTC(2024, 2, 1) - h8, 'already March in UTC+8');
  assert.equal(klineNextOpen('1M', Date.UTC(2024, 11, 1) - h8, h8), Date.UTC(2025, 0, 1) - h8);
  for (const i of BINANCE_KLINE_INTERVALS) {
    const open = klineOpenTime(i, t);
    assert.ok(open <= t && t < klineNextOpen(i, open), i);
  }
});

test('parseTopic rejects malformed names with a message saying why', () => {
  const bad: Array<[unknown, RegExp]> = [
    [42, /topic must be a string/],
    [null, /topic must be a string/],
    ['btcusdt', /expected <symbol>@<stream>/],
    ['@ticker', /expected <symbol>@<stream>/],
    ['btc@usdt@ticker', /unknown stream "usdt@ticker"/],
    ['btcusdt@depth@250ms', /unknown stream "depth@250ms"/],
    ['b@ticker', /invalid symbol/],
    ['btc-usdt@ticker', /invalid symbol/],
    [`${'a'.repeat(21)}@ticker`, /invalid symbol/],
    ['btcusdt@kline_2m', /invalid kline interval/],
    ['btcusdt@kline_', /invalid kline interval/],
    ['btcusdt@kline_1H', /invalid kline interval/],
    ['btcusdt@kline_1d@+09:00', /invalid time zone/],
    ['btcusdt@depth15', /unknown stream "depth15"/],
    ['btcusdt@depth5@250ms', /unknown stream "depth5@250ms"/],
    ['!bookTicker', /not available/],
    ['!ticker_2h@arr', /not available/],
    ['btcusdt@ticker_2h', /unknown stream "ticker_2h"/],
    ['btcusdt@ticker_1h@arr', /unknown stream/],
    ['btcusdt@blockTrade', /not available/],
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
      assert.match(subject, /^md\.[a-zA-Z0-9_@+:]+\.[a-z0-9]+$/);
      assert.equal(subjectTopic(subject), topic);
    }
  }
  assert.equal(topicSubject(parseTopic('btcusdt@kline_1m') as ParsedTopic), 'md.kline_1m.btcusdt');
  assert.equal(topicSubject(parseTopic('btcusdt@depth@100ms') as ParsedTopic), 'md.depth@100ms.btcusdt');
  assert.equal(subjectTopic('md.depth@100ms.btcusdt'), 'btcusdt@depth@100ms');
  assert.equal(depthSnapshotSubject('btcusdt'), 'md.depthsnap.btcusdt');
  for (const notMarket of ['ctl.drain.x', 'md', 'md.btcusdt', 'mdx.ticker.btcusdt']) assert.equal(subjectTopic(notMarket), undefined, notMarket);
});

test('symbolTopics lists every stream of a symbol, and only tickers and klines conflate', () => {
  const topics = symbolTopics('btcusdt');
  assert.equal(topics.length, 6 + BINANCE_KLINE_INTERVALS.length + TZ_KLINE_INTERVALS.length);
  assert.ok(topics.includes('btcusdt@kline_1M@+08:00'));
  assert.ok(isConflatable('btcusdt@depth10@100ms') && isConflatable('btcusdt@depth5'));
  assert.ok(!isConflatable('btcusdt@aggtrade'));
  assert.ok(topics.includes('btcusdt@depth@100ms'));
  for (const t of topics) assert.equal(typeof parseTopic(t), 'object', t);
  assert.deepEqual(
    topics.filter(isConflatable),
    ['btcusdt@ticker', 'btcusdt@miniticker', 'btcusdt@bookticker', ...BINANCE_KLINE_INTERVALS.map((i) => `btcusdt@kline_${i}`), ...TZ_KLINE_INTERVALS.map((i) => `btcusdt@kline_${i}@+08:00`)],
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
