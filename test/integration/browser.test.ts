// The demo page in a real browser (Debian's chromium, headless, driven by
// playwright-core) against a real cluster of two gateways: the ticker and the
// kline chart update over gRPC-web, switching to WebSocket works, and when the
// page's gateway is killed (SIGKILL) it reconnects through the router to the
// other one and keeps updating.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { startCluster } from '../helpers/cluster.ts';

interface DemoState {
  protocol: string;
  state: string;
  gateway: string;
  events: number;
  tickerUpdates: number;
  klineUpdates: number;
  chartDraws: number;
  axes: { priceTicks: string[]; timeTicks: string[]; plotLeft: number; plotRight: number; width: number };
  reconnects: number;
  latencyMs: number;
  lastError: string;
}

const demoState = (page: Page) => page.evaluate(() => (window as unknown as { demo: DemoState }).demo);

/** Waits until the page's state satisfies `cond` (evaluated here, polled); the message shows the last state. */
async function until(page: Page, cond: (d: DemoState) => boolean, what: string, timeoutMs = 30_000): Promise<DemoState> {
  const deadline = Date.now() + timeoutMs;
  let last: DemoState | undefined;
  for (;;) {
    last = await demoState(page).catch(() => undefined);
    if (last && cond(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; page state: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('demo page: live ticker and chart over gRPC-web and WebSocket, and a failover to the other gateway', async (t) => {
  const cluster = await startCluster({ servers: 1, gateways: 2, symbols: 2, rate: 20, gateway: { pingIntervalMs: 1_000, pongTimeoutMs: 5_000 } });
  t.after(() => cluster.stop());
  const [gw1, gw2] = cluster.gateways as [(typeof cluster.gateways)[0], (typeof cluster.gateways)[0]];

  const profile = await mkdtemp(join(tmpdir(), 'mp-chromium-'));
  t.after(() => rm(profile, { recursive: true, force: true }));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  const notFound: string[] = [];
  page.on('response', (r) => {
    if (r.status() === 404) notFound.push(r.url());
  });

  await page.goto(`${gw1.urls.http}/demo/?symbol=btcusdt&protocol=grpc-web`);
  let s = await until(page, (d) => d.state === 'live' && d.tickerUpdates >= 1 && d.chartDraws >= 1, 'the first ticker and chart over gRPC-web');
  assert.equal(s.protocol, 'grpc-web');
  assert.equal(s.gateway, gw1.urls.http, 'the page starts on the gateway that served it');
  const klines = s.klineUpdates;
  s = await until(page, (d) => d.klineUpdates > klines + 2 && d.chartDraws >= 2, 'the chart to update');
  assert.ok(Number.isFinite(s.latencyMs), 'latency measured');
  assert.notEqual(await page.textContent('#price'), '–', 'the ticker shows a price');
  assert.match((await page.textContent('#latency')) ?? '', /ms$/);
  assert.equal(await page.getAttribute('#state', 'data-state'), 'live');
  // The chart has a price axis and a UTC time axis, and spans the page's width, newest candle at the right.
  assert.ok(s.axes.priceTicks.length >= 2, `price ticks ${s.axes.priceTicks.join(', ')}`);
  assert.ok(s.axes.timeTicks.length >= 1 && s.axes.timeTicks.every((l) => /^\d\d:\d\d$/.test(l)), `time ticks ${s.axes.timeTicks.join(', ')}`);
  const pageWidth = await page.evaluate(() => document.body.clientWidth);
  assert.ok(s.axes.width >= pageWidth * 0.95, `chart ${s.axes.width}px wide on a ${pageWidth}px page`);
  assert.ok(s.axes.plotRight >= s.axes.width - 100, `newest candle at x=${s.axes.plotRight} of ${s.axes.width}`);
  assert.deepEqual(notFound, [], 'nothing the page asked for (the favicon included) was missing');

  // Switch to WebSocket: same page, other protocol, data keeps coming.
  await page.click('#proto-ws');
  s = await until(page, (d) => d.protocol === 'ws' && d.state === 'live', 'the WebSocket connection');
  assert.equal(s.gateway, gw1.urls.ws);
  const wsEvents = s.events;
  s = await until(page, (d) => d.events > wsEvents + 3 && d.klineUpdates > 0, 'events over WebSocket');
  assert.equal(await page.getAttribute('#proto-ws', 'aria-pressed'), 'true');

  // Back to gRPC-web, then kill the page's gateway outright.
  await page.click('#proto-grpc-web');
  s = await until(page, (d) => d.protocol === 'grpc-web' && d.state === 'live' && d.gateway === gw1.urls.http, 'gRPC-web again');
  const before = s.reconnects;
  await gw1.kill('SIGKILL');
  s = await until(page, (d) => d.reconnects > before, 'the page to notice its gateway died', 15_000);
  s = await until(page, (d) => d.state === 'live' && d.gateway === gw2.urls.http, 'a reconnect to the other gateway', 30_000);
  const after = s.events;
  const tickers = s.tickerUpdates;
  s = await until(page, (d) => d.events > after + 3 && d.tickerUpdates > tickers, 'updates after the failover');
  assert.equal(s.protocol, 'grpc-web');

  // Its own gateway is gone: switching protocol now goes through the router too.
  await page.click('#proto-ws');
  s = await until(page, (d) => d.protocol === 'ws' && d.state === 'live', 'WebSocket after the failover');
  assert.equal(s.gateway, gw2.urls.ws);
  const wsAfter = s.events;
  await until(page, (d) => d.events > wsAfter + 3, 'events over WebSocket from the other gateway');
  assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
});
