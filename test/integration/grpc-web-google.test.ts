// Google's grpc-web browser runtime (the npm package grpc-web, GrpcWebClientBase)
// in Chromium, against a real gateway, from a page of ANOTHER origin (so every
// call passes a CORS preflight with the runtime's headers): text mode
// (application/grpc-web-text, the runtime's default, base64 both ways, the
// stream chunked in base64) and binary mode (application/grpc-web+proto),
// unary ExchangeInfo and server-streaming Subscribe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { startCluster } from '../helpers/cluster.ts';
import type { StreamOutcome } from '../helpers/grpc-web-google-page.ts';

const PAGE_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'grpc-web-google-page.ts');

async function bundlePage(): Promise<string> {
  const esbuild = await import('esbuild');
  try {
    const out = await esbuild.build({ entryPoints: [PAGE_SCRIPT], bundle: true, write: false, format: 'esm', platform: 'browser', target: 'es2022', logLevel: 'silent' });
    return out.outputFiles[0]!.text;
  } finally {
    await esbuild.stop();
  }
}

/** The page's own origin: a plain HTTP server on another port than the gateway's. */
async function servePage(script: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (req.url === '/page.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>grpc-web</title><script type="module" src="/page.js"></script>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${port}/` };
}

type Api = {
  exchangeInfo(gateway: string, mode: string): Promise<{ symbols: string[]; serverTimeMs: string }>;
  subscribe(gateway: string, mode: string, topics: string[], wantEvents: number, deadlineMs?: number): Promise<StreamOutcome>;
};
const exchangeInfo = (page: Page, gateway: string, mode: string) =>
  page.evaluate(([g, m]) => (globalThis as unknown as { grpcWebGoogle: Api }).grpcWebGoogle.exchangeInfo(g!, m!), [gateway, mode]);
const subscribe = (page: Page, gateway: string, mode: string, topics: string[], wantEvents: number, deadlineMs?: number) =>
  page.evaluate(
    ([g, m, t, n, d]) => (globalThis as unknown as { grpcWebGoogle: Api }).grpcWebGoogle.subscribe(g as string, m as string, t as string[], n as number, d as number | undefined),
    [gateway, mode, topics, wantEvents, deadlineMs] as const,
  );

/** Events of one topic arrive in order without gaps (seq +1 each). */
function assertContiguous(events: StreamOutcome['events'], topic: string): void {
  const seqs = events.filter((e) => e.topic === topic).map((e) => BigInt(e.seq));
  for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1]! + 1n, `contiguous seqs: ${seqs.join(',')}`);
}

test("Google's grpc-web runtime in Chromium, from another origin: text and binary mode, unary and server streaming", async (t) => {
  const [cluster, script] = await Promise.all([startCluster({ servers: 1, gateways: 1, symbols: 2, rate: 20 }), bundlePage()]);
  t.after(() => cluster.stop());
  const gateway = cluster.gateways[0]!.urls['grpc-web']!;
  const origin = await servePage(script);
  t.after(() => {
    origin.server.closeAllConnections(); // the browser's keep-alive connections would hold close() up
    return new Promise<void>((r) => origin.server.close(() => r()));
  });
  assert.notEqual(new URL(origin.url).origin, new URL(gateway).origin, 'the page and the gateway are different origins');

  // The preflight the runtime's calls need, as the browser sends it.
  const preflight = await fetch(`${gateway}/marketpush.v1.PushService/Subscribe`, {
    method: 'OPTIONS',
    headers: { origin: new URL(origin.url).origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-grpc-web,x-user-agent,grpc-timeout,accept' },
  });
  assert.equal(preflight.status, 204);
  const allowed = (preflight.headers.get('access-control-allow-headers') ?? '').toLowerCase();
  for (const h of ['content-type', 'x-grpc-web', 'x-user-agent', 'grpc-timeout']) assert.ok(allowed.includes(h), `preflight allows ${h}: ${allowed}`);
  const exposed = (preflight.headers.get('access-control-expose-headers') ?? '').toLowerCase();
  for (const h of ['grpc-status', 'grpc-message']) assert.ok(exposed.includes(h), `exposes ${h}: ${exposed}`);

  // Stream is bidirectional: not over HTTP/1.1, and said so (documented in docs/protocol.md).
  const bidi = await fetch(`${gateway}/marketpush.v1.PushService/Stream`, { method: 'POST', headers: { 'content-type': 'application/grpc-web+proto' }, body: new Uint8Array(5) });
  assert.equal(bidi.status, 505);

  // Bad input in text mode: a clear status, no parser internals.
  const badText = await fetch(`${gateway}/marketpush.v1.PushService/ExchangeInfo`, { method: 'POST', headers: { 'content-type': 'application/grpc-web-text' }, body: 'AAA*' });
  const trailer = badText.headers.get('grpc-status') ? `grpc-status:${badText.headers.get('grpc-status')}\r\ngrpc-message:${badText.headers.get('grpc-message')}` : Buffer.from(await badText.text(), 'base64').subarray(5).toString();
  assert.match(trailer, /grpc-status:\s*3\r\n/, trailer);
  assert.match(decodeURIComponent(trailer), /not base64/, trailer);

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
  const contentTypes = new Map<string, string>();
  page.on('response', (r) => {
    if (r.request().method() === 'POST') contentTypes.set(`${r.request().headers()['content-type']} ${new URL(r.url()).pathname}`, r.headers()['content-type'] ?? '');
  });
  await page.goto(origin.url);
  await page.waitForFunction(() => 'grpcWebGoogle' in globalThis);

  await t.test('text mode (the default): ExchangeInfo and a live Subscribe stream', async () => {
    const info = await exchangeInfo(page, gateway, 'text');
    assert.ok(info.symbols.includes('btcusdt') && info.symbols.includes('ethusdt'), `symbols: ${info.symbols}`);
    assert.ok(Number(info.serverTimeMs) > 0);
    // Live: the stream stays open and events arrive as they happen (the page cancels after 5).
    const s = await subscribe(page, gateway, 'text', ['btcusdt@trade'], 5);
    assert.equal(s.error, undefined, JSON.stringify(s));
    assert.match(s.sessionId, /^[0-9a-f-]{36}$/);
    assert.ok(s.events.length >= 5, JSON.stringify(s));
    assert.ok(s.events.every((e) => e.topic === 'btcusdt@trade'));
    assertContiguous(s.events, 'btcusdt@trade');
    assert.equal(contentTypes.get('application/grpc-web-text /marketpush.v1.PushService/Subscribe'), 'application/grpc-web-text+proto');
  });

  await t.test('binary mode: ExchangeInfo, and Subscribe with a deadline delivers its events', async () => {
    const info = await exchangeInfo(page, gateway, 'binary');
    assert.ok(info.symbols.includes('btcusdt'), `symbols: ${info.symbols}`);
    // The runtime reads binary responses as one ArrayBuffer, so a stream's
    // messages reach the page when the call ends: a deadline ends it.
    const s = await subscribe(page, gateway, 'binary', ['btcusdt@trade', 'ethusdt@trade'], 1_000_000, 2_500);
    assert.match(s.sessionId, /^[0-9a-f-]{36}$/, JSON.stringify(s));
    assert.equal(s.error?.code, 4, `ended by its deadline (DEADLINE_EXCEEDED): ${JSON.stringify({ ...s, events: s.events.length })}`);
    for (const topic of ['btcusdt@trade', 'ethusdt@trade']) {
      assert.ok(s.events.filter((e) => e.topic === topic).length >= 3, `several ${topic} events: ${JSON.stringify(s.events)}`);
      assertContiguous(s.events, topic);
    }
    assert.equal(contentTypes.get('application/grpc-web+proto /marketpush.v1.PushService/Subscribe'), 'application/grpc-web+proto');
  });

  assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
});
