// Issue 11 leftovers, run as an outsider: a separate process that holds no
// credential (no secrets file, a bare environment) calls a push-server's link
// port without the cluster token and with a made-up one (UNAUTHENTICATED,
// counted by the server), while the cluster's own gateway links, which carry
// the token, deliver market data. And the gateway's client gRPC port closes
// connections that hold no call: an HTTP/2 client that never calls after its
// idle timeout (GOAWAY), a raw TCP socket that never speaks once it leaves a
// keepalive ping unanswered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { adminJson, startCluster } from '../helpers/cluster.ts';
import { TestClient } from '../helpers/ws-client.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Runs an ES module script in a fresh process with no secrets and a bare environment; its last stdout line as JSON. */
function outsider<T>(script: string, args: string[], timeoutMs = 60_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', script, ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (err += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('exit', (code) => {
      clearTimeout(t);
      const line = out.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(line) as T);
      } catch {
        reject(new Error(`outsider exited ${code}: ${out}\n${err}`));
      }
    });
  });
}

// Attach calls on the link service: none, then a made-up bearer token. Each ends with a status (or times out).
const ATTACKER = `
import * as grpc from '@grpc/grpc-js';
const [addr] = process.argv.slice(1);
const client = new grpc.Client(addr, grpc.credentials.createInsecure());
const attach = (md) => new Promise((resolve) => {
  const call = client.makeBidiStreamRequest('/marketpush.v1.ServerLink/Attach', (b) => b, (b) => b, md, { deadline: Date.now() + 20000 });
  let data = 0;
  call.on('data', () => data++);
  call.on('error', (e) => resolve({ code: e.code, details: e.details, data }));
  call.on('status', (s) => s.code === 0 && resolve({ code: 0, details: s.details, data }));
  // A hello and a subscription, as a gateway would send (LinkRequest bytes do not matter: refused before any handler).
  call.write(Buffer.from([0x0a, 0x00]));
});
const bare = await attach(new grpc.Metadata());
const wrong = new grpc.Metadata(); wrong.set('authorization', 'Bearer mpc_made-up-token-000000000000000000000000');
const guessed = await attach(wrong);
client.close();
console.log(JSON.stringify({ bare, guessed }));
`;

// An HTTP/2 connection that never opens a call, and a raw TCP socket that never sends a byte: how long until each is closed.
const IDLER = `
import http2 from 'node:http2';
import net from 'node:net';
const [host, port] = process.argv.slice(1);
const began = Date.now();
const h2 = new Promise((resolve) => {
  const s = http2.connect('http://' + host + ':' + port);
  let goaway = false;
  s.on('goaway', () => (goaway = true));
  s.on('error', () => {});
  const t = setTimeout(() => { s.destroy(); resolve({ closedAfterMs: null, goaway }); }, 20000);
  s.on('close', () => { clearTimeout(t); resolve({ closedAfterMs: Date.now() - began, goaway }); });
});
const raw = new Promise((resolve) => {
  const s = net.connect(Number(port), host);
  s.resume(); // read (and discard) what the server sends, so its close is seen
  s.on('error', () => {});
  const t = setTimeout(() => { s.destroy(); resolve({ closedAfterMs: null }); }, 20000);
  s.on('close', () => { clearTimeout(t); resolve({ closedAfterMs: Date.now() - began }); });
});
console.log(JSON.stringify({ h2: await h2, raw: await raw }));
`;

test('link port: calls without the cluster token are refused; the gateways\' links carry it', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster({ servers: 1, gateways: 1, symbols: 2, rate: 10, gateway: { grpcIdleTimeoutMs: 1_000 } });
  t.after(() => cluster.stop());
  const server = cluster.servers[0]!;
  const gw = cluster.gateways[0]!;

  // The cluster's own link works: a subscription reaches the server and data flows back.
  const client = new TestClient(`${gw.urls.ws}/ws`);
  t.after(() => client.close());
  await client.opened;
  client.send({ method: 'SUBSCRIBE', params: ['btcusdt@trade'], id: 1 });
  const trades = () => client.json.filter((m) => m.e === 'trade').length;
  await client.waitFor(() => trades() > 0, 20_000, 'a trade');
  const before = await adminJson<{ streams: number; gateways: string[]; counters: Record<string, number> }>(`${server.urls.admin}/stats`);
  assert.ok(before.streams > 0 && before.gateways.includes('gateway-1'), JSON.stringify(before));
  const refusedBefore = before.counters.link_refused ?? 0;

  const r = await outsider<{ bare: { code: number; details: string; data: number }; guessed: { code: number; details: string; data: number } }>(ATTACKER, [server.urls.grpc!]);
  assert.equal(r.bare.code, 16, `no token: ${JSON.stringify(r.bare)}`); // UNAUTHENTICATED
  assert.match(r.bare.details, /credential required/);
  assert.equal(r.bare.data, 0);
  assert.equal(r.guessed.code, 16, `made-up token: ${JSON.stringify(r.guessed)}`);
  assert.equal(r.guessed.details, 'credential not accepted');
  assert.equal(r.guessed.data, 0);

  const after = await adminJson<{ streams: number; gateways: string[]; counters: Record<string, number> }>(`${server.urls.admin}/stats`);
  assert.equal((after.counters.link_refused ?? 0) - refusedBefore, 2);
  assert.deepEqual(after.gateways, ['gateway-1'], 'no stream of the outsider was ever attached');
  // The real link is untouched: data still flows.
  const seen = trades();
  await client.waitFor(() => trades() > seen, 20_000, 'more trades');
});

test('client gRPC port: connections holding no call are closed (idle timeout, unanswered keepalive)', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster({
    servers: 1, gateways: 1, symbols: 2, rate: 5, gateway: { grpcIdleTimeoutMs: 1_000, grpcKeepaliveMs: 1_000, grpcKeepaliveTimeoutMs: 1_000 },
  });
  t.after(() => cluster.stop());
  const [host, port] = cluster.gateways[0]!.urls.grpc!.replace(/^grpcs?:\/\//, '').split(':') as [string, string];
  const r = await outsider<{ h2: { closedAfterMs: number | null; goaway: boolean }; raw: { closedAfterMs: number | null } }>(IDLER, [host, port]);
  assert.notEqual(r.h2.closedAfterMs, null, 'an HTTP/2 connection that never calls is closed');
  assert.equal(r.h2.goaway, true, 'told with a GOAWAY first');
  assert.ok(r.h2.closedAfterMs! >= 900, `closed only once idle (${r.h2.closedAfterMs} ms)`);
  assert.notEqual(r.raw.closedAfterMs, null, 'a silent raw TCP connection is closed');
  assert.ok(r.raw.closedAfterMs! >= 900, `closed only once idle (${r.raw.closedAfterMs} ms)`);
});
