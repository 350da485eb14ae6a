// Issues 16 and 11: the history process is the cluster's REST host. A real
// `pushctl up` (nats-server and redis-server from PATH, free ports, a temp
// data dir) starts it; the REST URL it prints (and records, and the router
// lists) answers klines with an ETag and 304, and every other public market
// route with the same bodies as the gateway; its NATS user may read candles
// and trades but publish nothing; `down` stops it with the rest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { ClusterSecrets } from '../../system/common/secrets.ts';
import type { ClusterState } from '../../cli/lib/state-file.ts';
import { isAlive } from '../../cli/lib/processes.ts';
import { pushctl } from '../helpers/pushctl.ts';
import { waitFor } from '../helpers/cluster.ts';

const UP = ['--port-base', '0', '--gateways', '1', '--servers', '1', '--symbols', '2', '--rate', '2', '--users', '0'];

interface Answer {
  status: number;
  body: string;
  headers: Headers;
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

/** Errors the server reports asynchronously on a connection (permission violations). */
function asyncErrors(nc: NatsConnection): string[] {
  const seen: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error') seen.push(`${s.error.name}: ${s.error.message}`);
  })();
  return seen;
}

/**
 * The same query on the gateway and on the REST host, at the same moment, until both bodies agree
 * (a trade between the two reads may change a ticker; at 2 trades/s most pairs of reads agree).
 */
async function sameOnBoth(gateway: string, rest: string, path: string, normalise = (b: string) => b): Promise<{ gw: Answer; rest: Answer }> {
  let last: { gw: Answer; rest: Answer } | undefined;
  for (let i = 0; i < 30; i++) {
    const [gw, r] = await Promise.all([get(`${gateway}${path}`), get(`${rest}${path}`)]);
    last = { gw, rest: r };
    if (gw.status === r.status && normalise(gw.body) === normalise(r.body)) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`${path}: the REST host and the gateway never agreed:\n gateway ${last!.gw.status} ${last!.gw.body.slice(0, 300)}\n rest    ${last!.rest.status} ${last!.rest.body.slice(0, 300)}`);
}

test('pushctl up starts the history process as the REST host: every market route, its own least-privilege NATS user, down stops it', { timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-rest-host-'));
  let probe: NatsConnection | undefined;
  t.after(async () => {
    await probe?.close().catch(() => {});
    if (existsSync(join(dir, 'cluster.json'))) await pushctl(['down', '--data-dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const up = await pushctl(['up', '--detach', '--json', ...UP, '--data-dir', dir], { timeoutMs: 150_000 });
  assert.equal(up.code, 0, `up failed:\n${up.out}`);
  const out = JSON.parse(up.stdout.trim().split('\n').at(-1)!) as {
    rest: string;
    restHosts: Array<{ id: string; http: string }>;
    router: string;
    gateways: Array<{ http: string }>;
    nats: string;
    listeners: Array<{ id: string; protocol: string; address: string; audience: string }>;
  };
  const rest = out.rest;
  const gateway = out.gateways[0]!.http;
  assert.match(rest, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.notEqual(new URL(rest).port, new URL(gateway).port, 'the REST host is a port of its own');
  assert.deepEqual(out.restHosts, [{ id: 'history-1', http: rest }]);
  assert.ok(out.listeners.some((l) => l.id === 'history-1' && l.address === rest && l.audience === 'client'), 'listed as a client listener');
  const state = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as ClusterState;
  assert.deepEqual(state.endpoints.rest, [{ id: 'history-1', http: rest }]);
  assert.ok(state.processes.some((p) => p.id === 'history-1'), 'its own process');

  await t.test('the router lists it to clients; status prints it with its audience', async () => {
    const listed = JSON.parse((await get(`${out.router}/v1/rest`)).body) as { rest: string[] };
    assert.deepEqual(listed.rest, [rest]);
    const status = await pushctl(['status', '--data-dir', dir]);
    assert.match(status.stdout, new RegExp(`rest +${rest.replace(/\./g, '\\.')}`));
    assert.match(status.stdout, /clients: Binance REST base URL for charts and market data, kept off the stream path/);
    const sj = JSON.parse((await pushctl(['status', '--json', '--data-dir', dir])).stdout) as { rest: string; nodes: Array<{ id: string; role: string; address: string; health: string }> };
    assert.equal(sj.rest, rest);
    assert.deepEqual(sj.nodes.find((n) => n.id === 'history-1'), { id: 'history-1', role: 'history', address: rest, health: 'ok' });
  });

  await t.test('klines from its own tiers: Binance rows, weights, ETag and 304', async () => {
    const info = JSON.parse((await get(`${rest}/api/v3/exchangeInfo`)).body) as { symbols: Array<{ symbol: string }> };
    const symbol = info.symbols[0]!.symbol;
    let k: Answer | undefined;
    await waitFor(async () => {
      k = await get(`${rest}/api/v3/klines?symbol=${symbol}&interval=1m&limit=5`);
      return k.status === 200 && (JSON.parse(k.body) as unknown[]).length > 0;
    }, 60_000, 'klines on the REST host');
    const rows = JSON.parse(k!.body) as unknown[][];
    assert.equal(rows[0]!.length, 12, 'Binance kline rows');
    assert.ok(k!.headers.get('etag'), 'an ETag');
    assert.match(k!.headers.get('cache-control') ?? '', /max-age/);
    assert.ok(Number(k!.headers.get('x-mbx-used-weight-1m')) > 0, 'Binance request weight');
    assert.equal(k!.headers.get('x-mp-server'), null, 'answered here, not forwarded to a server');
    // A closed range is final: its ETag is answered with a 304 and no body.
    const closed = await get(`${rest}/api/v3/klines?symbol=${symbol}&interval=1m&endTime=${Number(rows[0]![6])}&limit=1`);
    assert.equal(closed.status, 200, closed.body);
    const again = await get(`${rest}/api/v3/klines?symbol=${symbol}&interval=1m&endTime=${Number(rows[0]![6])}&limit=1`, { 'if-none-match': closed.headers.get('etag')! });
    assert.equal(again.status, 304);
    assert.equal(again.body, '');
    const ui = await get(`${rest}/api/v3/uiKlines?symbol=${symbol}&interval=1m&endTime=${Number(rows[0]![6])}&limit=1`);
    assert.equal(ui.body, closed.body, 'uiKlines: the same candles');
  });

  await t.test('every other market route answers as on the gateway (the gateway\'s own code)', async () => {
    const info = JSON.parse((await get(`${gateway}/api/v3/exchangeInfo`)).body) as { symbols: Array<{ symbol: string }> };
    const symbol = info.symbols[0]!.symbol;
    const noTime = (b: string) => b.replace(/"serverTime":\d+/, '');
    const ex = await sameOnBoth(gateway, rest, '/api/v3/exchangeInfo', noTime);
    assert.equal(ex.rest.status, 200);
    assert.equal((JSON.parse(ex.rest.body) as { symbols: unknown[] }).symbols.length, 2);
    for (const path of [
      `/api/v3/depth?symbol=${symbol}&limit=5`,
      `/api/v3/ticker/24hr?symbol=${symbol}`,
      `/api/v3/ticker/price?symbol=${symbol}`,
      `/api/v3/ticker/bookTicker?symbol=${symbol}`,
      `/api/v3/trades?symbol=${symbol}&limit=3`,
      `/api/v3/aggTrades?symbol=${symbol}&limit=3`,
      `/api/v3/avgPrice?symbol=${symbol}`,
      '/api/v3/ping',
    ]) {
      const both = await sameOnBoth(gateway, rest, path, (b) => b.replace(/"closeTime":\d+/, '').replace(/"(T|time)":\d+/g, ''));
      assert.equal(both.rest.status, 200, `${path}: ${both.rest.body}`);
      assert.ok(both.rest.body.length > 2 || path.endsWith('ping'), `${path} has a body`);
    }
    const time = JSON.parse((await get(`${rest}/api/v3/time`)).body) as { serverTime: number };
    assert.ok(Math.abs(time.serverTime - Date.now()) < 60_000);
    // Bad input: the same Binance error as the gateway, nothing forwarded.
    const bad = await sameOnBoth(gateway, rest, '/api/v3/depth?symbol=NOPEUSDT');
    assert.equal(bad.rest.status, 400);
    assert.match(bad.rest.body, /"code":-1121/);
    const unknown = await get(`${rest}/api/v3/order`);
    assert.equal(unknown.status, 404);
    assert.match(unknown.body, /"code":-1000/);
  });

  await t.test('its NATS user reads candles and trades but cannot publish market data', async () => {
    const secrets = JSON.parse(readFileSync(join(dir, 'secrets.json'), 'utf8')) as ClusterSecrets;
    assert.equal(secrets.nats.history.user, 'mp-history');
    const cmdline = readFileSync(`/proc/${state.processes.find((p) => p.id === 'history-1')!.pid}/cmdline`, 'utf8');
    assert.ok(!cmdline.includes(secrets.nats.history.password), 'no password on its command line');
    assert.match(cmdline, /"natsAuth":true/);
    probe = await connect({ servers: out.nats, user: secrets.nats.history.user, pass: secrets.nats.history.password, name: 'probe-history' });
    const errors = asyncErrors(probe);
    let trades = 0;
    probe.subscribe('md.trade.*', { callback: () => void trades++ });
    probe.publish('md.trade.btcusdt', new TextEncoder().encode('fake trade'));
    await probe.flush();
    await waitFor(() => errors.some((e) => /PermissionViolation/.test(e) && /Publish to "md\.trade\.btcusdt"/.test(e)), 10_000, 'the md.> publish to be refused');
    await waitFor(() => trades > 0, 20_000, 'trades delivered to the history user');
    probe.subscribe('md.depth.*');
    await probe.flush();
    await waitFor(() => errors.some((e) => /PermissionViolation/.test(e) && /Subscription to "md\.depth\.\*"/.test(e)), 10_000, 'the depth subscription to be refused');
    await probe.close();
    probe = undefined;
    // The history process itself needed nothing it was refused: the only violations are the probe's.
    const violations = readFileSync(join(dir, 'logs', 'nats.log'), 'utf8').split('\n').filter((l) => /Violation/.test(l));
    assert.ok(violations.length >= 2, 'the refused probe was logged');
    assert.deepEqual(violations.filter((l) => !l.includes('probe-')), [], 'no role hit a permission violation');
  });

  const down = await pushctl(['down', '--data-dir', dir]);
  assert.equal(down.code, 0, down.out);
  assert.equal(existsSync(join(dir, 'cluster.json')), false);
  const alive = state.processes.filter((p) => isAlive(p.pid, p.startTime)).map((p) => `${p.id}=${p.pid}`);
  assert.deepEqual(alive, [], 'processes left behind');
  await assert.rejects(fetch(`${rest}/healthz`, { signal: AbortSignal.timeout(2_000) }), 'the REST port is closed');
});

test('pushctl up --history-procs 0 starts none and says REST is on the gateways; a bad count is refused before anything starts', { timeout: 200_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-rest-none-'));
  t.after(async () => {
    if (existsSync(join(dir, 'cluster.json'))) await pushctl(['down', '--data-dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const bad = await pushctl(['up', '--detach', ...UP, '--history-procs', '-1', '--data-dir', dir]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.out, /history-procs/);
  assert.equal(existsSync(join(dir, 'cluster.json')), false, 'nothing started');
  const up = await pushctl(['up', '--detach', ...UP, '--history-procs', '0', '--data-dir', dir], { timeoutMs: 150_000 });
  assert.equal(up.code, 0, up.out);
  assert.match(up.stdout, /rest +\(no history process: --history-procs 0\) the gateways' http URLs serve REST/);
  const state = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as ClusterState;
  assert.equal(state.processes.some((p) => p.id.startsWith('history')), false);
  const down = await pushctl(['down', '--data-dir', dir]);
  assert.equal(down.code, 0, down.out);
  assert.deepEqual(state.processes.filter((p) => isAlive(p.pid, p.startTime)).map((p) => p.id), []);
});
