// bench:peers' pure parts: the nchan config generator, the Engine.IO framing
// the load clients speak, the shared kept-up rule, the paced trade source and
// the report's plot.
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { nchanConfig, nchanSubscribeUrl, nchanPublishUrl, findNchanModule } from '../../bench/lib/peers/nchan-config.ts';
import { engineIoStep, socketIoUrl, subscribeFrame } from '../../bench/lib/peers/engineio.ts';
import { keptUp } from '../../bench/lib/kept-up.ts';
import { TradeSource } from '../../bench/lib/peers/trade-source.ts';
import { jsonPublishTimeUs } from '../../bench/lib/frame-time.ts';
import { latencyPlotSvg, reportHtml } from '../../bench/lib/peers/report-html.ts';

test('nchan config: own prefix paths, the given loopback port, publisher and split-channel subscriber locations', () => {
  const conf = nchanConfig({ dir: '/tmp/x1', port: 41234, modulePath: '/m/ngx_nchan_module.so', workers: 2, workerConnections: 11_024 });
  assert.match(conf, /^load_module \/m\/ngx_nchan_module\.so;$/m);
  assert.match(conf, /^\s*listen 127\.0\.0\.1:41234;$/m);
  assert.match(conf, /^pid \/tmp\/x1\/nginx\.pid;$/m);
  assert.match(conf, /^error_log \/tmp\/x1\/error\.log warn;$/m);
  assert.match(conf, /^daemon off;$/m);
  assert.match(conf, /worker_processes 2;/);
  assert.match(conf, /worker_connections 11024;/);
  for (const t of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) assert.match(conf, new RegExp(`${t}_temp_path /tmp/x1/${t};`));
  // Nothing of the system's nginx: no include of /etc/nginx, no other listen.
  assert.doesNotMatch(conf, /\/etc\/nginx|include /);
  assert.equal(conf.match(/listen /g)!.length, 1);
  const pub = /location ~ \^\/pub\/([^ ]+) \{([^}]*)\}/.exec(conf)!;
  assert.match(pub[2]!, /nchan_publisher http;/);
  assert.match(pub[2]!, /nchan_channel_id \$1;/);
  const sub = /location ~ \^\/sub\/\(\.\+\)\$ \{([^}]*)\}/.exec(conf)!;
  assert.match(sub[1]!, /nchan_subscriber websocket;/);
  assert.match(sub[1]!, /nchan_channel_id_split_delimiter ",";/);
  assert.match(sub[1]!, /nchan_subscriber_first_message newest;/);
});

test('nchan config refuses a bad port or worker count', () => {
  assert.throws(() => nchanConfig({ dir: '/d', port: 0, modulePath: '/m', workers: 1, workerConnections: 10 }), /port must be 1-65535/);
  assert.throws(() => nchanConfig({ dir: '/d', port: 70_000, modulePath: '/m', workers: 1, workerConnections: 10 }), /port/);
  assert.throws(() => nchanConfig({ dir: '/d', port: 80, modulePath: '/m', workers: 0, workerConnections: 10 }), /workers/);
});

test('nchan URLs: several channels on one subscriber connection, one channel per publish', () => {
  assert.equal(nchanSubscribeUrl('ws://127.0.0.1:9', ['btcusdt@trade', 'ethusdt@trade']), 'ws://127.0.0.1:9/sub/btcusdt%40trade,ethusdt%40trade');
  assert.equal(nchanPublishUrl('http://127.0.0.1:9', 'btcusdt@trade'), 'http://127.0.0.1:9/pub/btcusdt%40trade');
  assert.equal(findNchanModule(['/nonexistent/a.so']), undefined);
});

test('Engine.IO framing: open → namespace connect, connect → subscribe, ping → pong, events pass, refusals fail', () => {
  const topics = ['btcusdt@trade', 'ethusdt@trade'];
  assert.equal(socketIoUrl('ws://h:1'), 'ws://h:1/socket.io/?EIO=4&transport=websocket');
  assert.deepEqual(engineIoStep(Buffer.from('0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'), topics), { kind: 'open', send: '40' });
  assert.deepEqual(engineIoStep(Buffer.from('40{"sid":"y"}'), topics), { kind: 'connected', send: '42["subscribe",["btcusdt@trade","ethusdt@trade"]]' });
  assert.equal(subscribeFrame(['a@trade']), '42["subscribe",["a@trade"]]');
  assert.deepEqual(engineIoStep(Buffer.from('2'), topics), { kind: 'ping', send: '3' });
  assert.deepEqual(engineIoStep(Buffer.from('42["trade",{"stream":"btcusdt@trade","pt":12}]'), topics), { kind: 'data' });
  assert.equal(engineIoStep(Buffer.from('44{"message":"nope"}'), topics).kind, 'refused');
  assert.equal(engineIoStep(Buffer.from('1'), topics).kind, 'refused');
});

test('kept-up rule: ≥ 95 % delivered and p99 ≤ 1 s, both needed', () => {
  assert.equal(keptUp(95_000, 100_000, 1_000), true);
  assert.equal(keptUp(94_999, 100_000, 10), false);
  assert.equal(keptUp(100_000, 100_000, 1_000.1), false);
  assert.equal(keptUp(100, 0, 1), false);
});

test('trade source: paced at the rate per symbol, ~150–200-byte JSON with pt last, readable by the load clients', async () => {
  const src = new TradeSource(['btcusdt', 'ethusdt']);
  assert.deepEqual(src.due().trades, []);
  src.setRate(1_000); // 1 ms apart per symbol
  await new Promise((r) => setTimeout(r, 60));
  const { trades, nextUs } = src.due();
  // ~60 ms at 1,000/s for 2 symbols: about 120 (timers are coarse on a loaded machine; never less than 50 ms worth).
  assert.ok(trades.length >= 100 && trades.length <= 2 * 400, `trades ${trades.length}`);
  assert.ok(Number.isFinite(nextUs));
  const t = trades[0]!;
  assert.equal(t.topic, 'btcusdt@trade');
  const parsed = JSON.parse(t.json) as { stream: string; data: { pt: number } };
  assert.equal(parsed.stream, 'btcusdt@trade');
  assert.ok(t.json.length >= 130 && t.json.length <= 220, `length ${t.json.length}`); // the gateway's trade event shape
  assert.ok(t.json.endsWith(`"pt":${parsed.data.pt}}}`));
  assert.equal(jsonPublishTimeUs(Buffer.from(`42["trade",${t.json}]`)), parsed.data.pt);
  src.setRate(0);
  assert.equal(src.due().nextUs, Infinity);
});

test('latency plot: one legend entry per system, hollow points for steps that did not keep up', () => {
  const svg = latencyPlotSvg(
    [
      { system: 'bare-ws', rate: 25_000, p99Ms: 3, keptUp: true },
      { system: 'bare-ws', rate: 50_000, p99Ms: 5, keptUp: true },
      { system: 'nchan', rate: 50_000, p99Ms: 2_000, keptUp: false },
    ],
    ['bare-ws', 'nchan'],
  );
  assert.match(svg, /^<svg /);
  assert.equal((svg.match(/<circle /g) ?? []).length, 3);
  assert.equal((svg.match(/fill="white"/g) ?? []).length, 1);
  assert.match(svg, />bare-ws</);
  assert.match(svg, />nchan</);
  assert.match(svg, />25k\/s</);
});

test('bench:peers refuses bad flags with a clear message, no stack, and starts nothing', () => {
  const root = new URL('../../', import.meta.url).pathname;
  for (const [args, want] of [
    [['--rates', 'abc'], /--rates must be a number/],
    [['--systems', 'bare-ws,kafka'], /unknown system "kafka"/],
    [['--repeats', '0'], /--repeats must be a number in \[1, 10\]/],
  ] as const) {
    const r = spawnSync(process.execPath, ['bench/peers.ts', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, want);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.equal(r.stdout, '');
  }
});

test('report page: warnings in red, idle memory in its own list, cells escaped, no scripts', () => {
  const html = reportHtml('bench:peers', 'intro', '<svg></svg>', ['system', 'p99 ms'], [['<nchan>', '3']], ['nchan was NOT measured: nginx is not installed'], ['nginx: 10.2 kB RSS per idle connection']);
  assert.match(html, /<p class="warn">nchan was NOT measured: nginx is not installed<\/p>/);
  assert.match(html, /<h2>Idle memory per subscribed connection<\/h2>\n<ul><li>nginx: 10\.2 kB/);
  assert.match(html, /<td>&lt;nchan&gt;<\/td>/);
  assert.doesNotMatch(html, /<script|<link /);
  assert.doesNotMatch(reportHtml('t', 'i', '', [], [], [], []), /Idle memory|class="warn"/);
});
