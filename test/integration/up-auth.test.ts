// Issue 12, auth as a new user would meet it: a real `pushctl up --auth
// hs256` (nats-server and redis-server from PATH, free ports, a temp data
// dir), a token from `pushctl token`, a private order stream that delivers
// the user's own orders and takes acks; another user's token, an expired
// token and one without exp refused. Also what `pushctl token` refuses, the
// API key file, and `up` refusing bad --auth values before starting anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { SignJWT, decodeJwt, exportJWK, generateKeyPair } from 'jose';
import { create, toBinary } from '@bufbuild/protobuf';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { OrderSchema } from '../../proto/gen/market_pb.js';
import { orderSubject } from '../../system/gateway/orders.ts';
import { readApiKeys } from '../../system/common/api-keys.ts';
import type { ClusterSecrets } from '../../system/common/secrets.ts';
import { pushctl } from '../helpers/pushctl.ts';
import { waitFor } from '../helpers/cluster.ts';

const SMALL = ['--port-base', '0', '--servers', '1', '--gateways', '1', '--symbols', '2', '--rate', '2'];

const orderBytes = (user: string, n: number) =>
  toBinary(OrderSchema, create(OrderSchema, { user, id: `${user}-${n}`, symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', status: 'NEW', price: '60000.00', qty: '0.01', filledQty: '0', updateTime: BigInt(Date.now()) }));

/** Opens a WebSocket; resolves with it, or with the HTTP status and body of a refused upgrade. */
function open(url: string, headers: Record<string, string> = {}): Promise<{ ws?: WebSocket; status?: number; body?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, headers });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    ws.once('error', () => resolve({}));
  });
}

/** Every JSON message a socket receives, and a wait for a condition on them. */
function collect(ws: WebSocket) {
  const msgs: Array<Record<string, any>> = [];
  ws.on('message', (d: Buffer) => msgs.push(JSON.parse(d.toString()) as Record<string, any>));
  return {
    msgs,
    orders: () => msgs.filter((m) => m.e === 'executionReport'),
    reply: async (id: number) => {
      await waitFor(() => msgs.some((m) => m.id === id), 15_000, `reply ${id}`);
      return msgs.find((m) => m.id === id)!;
    },
  };
}

test('pushctl up --auth hs256, pushctl token, a private order stream end to end', { timeout: 240_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-auth-'));
  t.after(async () => {
    if (existsSync(join(dir, 'cluster.json'))) await pushctl(['down', '--data-dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const up = await pushctl(['up', '--detach', '--json', ...SMALL, '--auth', 'hs256', '--data-dir', dir], { timeoutMs: 150_000 });
  assert.equal(up.code, 0, `up failed:\n${up.out}`);
  const out = JSON.parse(up.stdout.trim().split('\n').at(-1)!) as { nats: string; gateways: Array<{ ws: string }>; auth: { mode: string; allowNoExp: boolean }; secretsFile: string };
  assert.deepEqual(out.auth, { mode: 'hs256', allowNoExp: false });
  const gw = out.gateways[0]!.ws;
  const secrets = JSON.parse(readFileSync(join(dir, 'secrets.json'), 'utf8')) as ClusterSecrets;

  await t.test('the key is in the 0600 secrets file, never on a command line', () => {
    assert.equal(statSync(join(dir, 'secrets.json')).mode & 0o777, 0o600);
    const state = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as { processes: Array<{ id: string; pid: number }>; auth: { mode: string } };
    assert.equal(state.auth.mode, 'hs256');
    for (const p of state.processes) {
      const cmdline = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8');
      assert.ok(!cmdline.includes(secrets.jwtHs256), `${p.id}'s command line carries the JWT key`);
    }
    const gwArgv = readFileSync(`/proc/${state.processes.find((p) => p.id === 'gateway-1')!.pid}/cmdline`, 'utf8');
    assert.match(gwArgv, /"hs256FromSecrets":true/);
  });

  await t.test('status --json shows the auth mode', async () => {
    const st = await pushctl(['status', '--json', '--data-dir', dir]);
    assert.equal(st.code, 0, st.out);
    assert.equal((JSON.parse(st.stdout.trim().split('\n').at(-1)!) as { auth: { mode: string } }).auth.mode, 'hs256');
  });

  const mint = async (user: string, ttl = '10m') => {
    const r = await pushctl(['token', '--user', user, '--ttl', ttl, '--data-dir', dir]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.stderr, /WebSocket: +ws:\/\/127\.0\.0\.1:\d+\/ws\?token=\$TOKEN/);
    assert.match(r.stderr, /"method":"SUBSCRIBE","params":\["orders"\]/);
    return r.stdout.trim();
  };
  const alice = await mint('alice');
  const bob = await mint('bob');
  assert.equal(decodeJwt(alice).sub, 'alice');

  // Orders published as an engine would, with the operator's NATS user from the secrets file.
  const nc = await connect({ servers: out.nats, user: secrets.nats.operator.user, pass: secrets.nats.operator.password });
  t.after(() => nc.close());
  const js = jetstream(nc);

  await t.test('alice: 101 upgrade, SUBSCRIBE orders acknowledged, her orders only, ACK accepted', async () => {
    const a = await open(`${gw}/ws?token=${alice}`);
    assert.ok(a.ws, `upgrade refused: ${a.status} ${a.body}`);
    t.after(() => a.ws!.terminate());
    const b = await open(`${gw}/ws`, { authorization: `Bearer ${bob}` });
    assert.ok(b.ws, `upgrade refused: ${b.status} ${b.body}`);
    t.after(() => b.ws!.terminate());
    const ac = collect(a.ws!);
    const bc = collect(b.ws!);
    a.ws!.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['orders'], id: 1 }));
    b.ws!.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['orders'], id: 1 }));
    assert.deepEqual(await ac.reply(1), { result: null, id: 1 });
    assert.deepEqual(await bc.reply(1), { result: null, id: 1 });
    for (let i = 1; i <= 5; i++) await js.publish(orderSubject('alice'), orderBytes('alice', i));
    for (let i = 1; i <= 3; i++) await js.publish(orderSubject('bob'), orderBytes('bob', i));
    await waitFor(() => ac.orders().length >= 5 && bc.orders().length >= 3, 20_000, 'order events');
    assert.deepEqual(ac.orders().map((m) => m.i), ['alice-1', 'alice-2', 'alice-3', 'alice-4', 'alice-5']);
    assert.deepEqual(bc.orders().map((m) => m.i), ['bob-1', 'bob-2', 'bob-3']);
    const last = ac.orders().at(-1)!.seq as number;
    a.ws!.send(JSON.stringify({ method: 'ACK', params: [last], id: 2 }));
    assert.deepEqual(await ac.reply(2), { result: null, id: 2 });
    // Another user's token on alice's connection: refused, and she stays alice.
    a.ws!.send(JSON.stringify({ method: 'AUTH', params: [bob], id: 3 }));
    const r3 = await ac.reply(3);
    assert.equal(r3.error?.code, 7);
    assert.match(r3.error?.msg, /cannot change user/);
    await js.publish(orderSubject('bob'), orderBytes('bob', 4));
    await js.publish(orderSubject('alice'), orderBytes('alice', 6));
    await waitFor(() => ac.orders().length >= 6 && bc.orders().length >= 4, 20_000, 'more order events');
    assert.ok(ac.orders().every((m) => String(m.i).startsWith('alice-')), JSON.stringify(ac.orders().map((m) => m.i)));
  });

  await t.test('refused: a token signed with another key, an expired token, a token without exp', async () => {
    const forged = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('bob').setExpirationTime(Math.floor(Date.now() / 1000) + 600).sign(new TextEncoder().encode('not-the-cluster-key-0123456789abcdef'));
    const f = await open(`${gw}/ws?token=${forged}`);
    assert.equal(f.status, 401);
    assert.match(f.body!, /bad token signature/);

    const short = await mint('alice', '1s');
    const exp = decodeJwt(short).exp! * 1000;
    await waitFor(() => Date.now() > exp + 1_000, 10_000, 'the token to expire');
    const e = await open(`${gw}/ws?token=${short}`);
    assert.equal(e.status, 401);
    assert.match(e.body!, /the token has expired/);

    const noExp = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuedAt().sign(new TextEncoder().encode(secrets.jwtHs256));
    const n = await open(`${gw}/ws?token=${noExp}`);
    assert.equal(n.status, 401);
    assert.match(n.body!, /the token has no expiry \(exp\)/);
    // The orders channel without any token: an error frame, not a stream.
    const anon = await open(`${gw}/ws`);
    assert.ok(anon.ws);
    const c = collect(anon.ws!);
    anon.ws!.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['orders'], id: 9 }));
    assert.equal((await c.reply(9)).error?.code, 7);
    anon.ws!.terminate();
  });

  await t.test('pushctl token --api-key: made once, the same key after, in a 0600 file', async () => {
    const first = await pushctl(['token', '--user', 'alice', '--api-key', '--data-dir', dir]);
    assert.equal(first.code, 0, first.out);
    const again = await pushctl(['token', '--user', 'alice', '--api-key', '--data-dir', dir]);
    assert.equal(again.stdout, first.stdout);
    assert.match(first.stdout.trim(), /^[A-Za-z0-9]{64}$/);
    assert.match(first.stderr, /X-MBX-APIKEY/);
    const file = join(dir, 'api-keys.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readApiKeys(file).map((k) => [k.apiKey, k.user]), [[first.stdout.trim(), 'alice']]);
    // The HMAC secret: printed once (stderr) when made, never again.
    const secret = readApiKeys(file)[0]!.secret!;
    assert.match(secret, /^[A-Za-z0-9]{64}$/);
    assert.ok(first.stderr.includes(secret), 'the new secret is shown');
    assert.ok(!again.stderr.includes(secret) && !again.stdout.includes(secret), 'and only once');
  });

  await t.test('pushctl token refuses bad input and clusters it cannot mint for', async () => {
    const bad = await pushctl(['token', '--user', 'alice', '--ttl', 'forever', '--data-dir', dir]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--ttl forever/);
    const badUser = await pushctl(['token', '--user', 'a.b', '--data-dir', dir]);
    assert.equal(badUser.code, 2);
    assert.match(badUser.stderr, /not|user id/);
    // A jwks cluster and an auth-less one (their recorded state is all pushctl token reads).
    const state = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as Record<string, unknown>;
    for (const [mode, auth, why] of [
      ['jwks', { mode: 'jwks', jwksUrl: 'https://idp.example/jwks.json', allowNoExp: false }, /identity provider/],
      ['none', { mode: 'none', allowNoExp: false }, /--auth none/],
    ] as const) {
      const other = join(dir, `other-${mode}`);
      mkdirSync(other);
      writeFileSync(join(other, 'cluster.json'), JSON.stringify({ ...state, dataDir: other, processes: [], auth }));
      const r = await pushctl(['token', '--user', 'alice', '--data-dir', other]);
      assert.equal(r.code, 1, r.out);
      assert.match(r.stderr, why);
      assert.equal(r.stdout, '');
    }
    const nowhere = await pushctl(['token', '--user', 'alice', '--data-dir', join(dir, 'no-cluster')]);
    assert.equal(nowhere.code, 1);
    assert.match(nowhere.stderr, /no cluster is recorded/);
  });
});

test('pushctl up refuses bad --auth values before starting anything', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-auth-bad-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'private.json'), JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'd' }] }));
  for (const [value, why] of [
    ['bogus', /use hs256, jwks:/],
    ['jwks:/does/not/exist.json', /no such file/],
    [`jwks:${join(dir, 'private.json')}`, /private key/],
    ['jwks:http://idp.example/jwks.json', /plain http is accepted on loopback only/],
  ] as const) {
    const r = await pushctl(['up', '--detach', ...SMALL, '--auth', value, '--data-dir', dir]);
    assert.equal(r.code, 2, `${value}: ${r.out}`);
    assert.match(r.stderr, why);
    assert.ok(!existsSync(join(dir, 'cluster.json')), 'nothing started');
  }
  const r = await pushctl(['up', '--detach', ...SMALL, '--auth', 'none', '--auth-issuer', 'x', '--data-dir', dir]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--auth none checks no tokens/);
});

test('pushctl up --auth jwks:FILE: the gateways check ES256/EdDSA tokens from the file and follow its rotation', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-jwks-'));
  t.after(async () => {
    if (existsSync(join(dir, 'cluster.json'))) await pushctl(['down', '--data-dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const key = async (alg: 'ES256' | 'EdDSA', kid: string) => {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    return { alg, kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg } };
  };
  const [k1, k2] = await Promise.all([key('ES256', 'k1'), key('EdDSA', 'k2')]);
  const file = join(dir, 'jwks.json');
  const publish = (...keys: Array<{ jwk: object }>) => {
    writeFileSync(`${file}.tmp`, JSON.stringify({ keys: keys.map((k) => k.jwk) }));
    renameSync(`${file}.tmp`, file);
  };
  publish(k1);
  const sign = (k: Awaited<ReturnType<typeof key>>) =>
    new SignJWT({}).setProtectedHeader({ alg: k.alg, kid: k.kid }).setSubject('carol').setIssuer('https://idp.example').setExpirationTime(Math.floor(Date.now() / 1000) + 600).sign(k.privateKey);
  // Embedded: one process is enough to see the gateways' token checks.
  const up = await pushctl(['up', '--detach', '--json', '--embedded', ...SMALL, '--auth', `jwks:${file}`, '--auth-issuer', 'https://idp.example', '--data-dir', dir], { timeoutMs: 120_000 });
  assert.equal(up.code, 0, `up failed:\n${up.out}`);
  const out = JSON.parse(up.stdout.trim().split('\n').at(-1)!) as { gateways: Array<{ ws: string }>; auth: Record<string, unknown> };
  assert.deepEqual(out.auth, { mode: 'jwks', jwksFile: file, issuer: 'https://idp.example', allowNoExp: false });
  const gw = out.gateways[0]!.ws;

  const ok = await open(`${gw}/ws?token=${await sign(k1)}`);
  assert.ok(ok.ws, `k1 refused: ${ok.status} ${ok.body}`);
  ok.ws!.terminate();
  const early = await open(`${gw}/ws?token=${await sign(k2)}`);
  assert.equal(early.status, 401);
  assert.match(early.body!, /no key matches the token/);
  // Rotation: k2 published, k1 retired.
  publish(k2);
  const rotated = await open(`${gw}/ws?token=${await sign(k2)}`);
  assert.ok(rotated.ws, `k2 refused after rotation: ${rotated.status} ${rotated.body}`);
  rotated.ws!.terminate();
  await waitFor(async () => (await open(`${gw}/ws?token=${await sign(k1)}`)).status === 401, 15_000, 'the retired key to be refused');
  const wrongIss = await new SignJWT({}).setProtectedHeader({ alg: 'EdDSA', kid: 'k2' }).setSubject('carol').setIssuer('elsewhere').setExpirationTime(Math.floor(Date.now() / 1000) + 600).sign(k2.privateKey);
  const w = await open(`${gw}/ws?token=${wrongIss}`);
  assert.equal(w.status, 401);
  assert.match(w.body!, /iss claim is not accepted/);
  // pushctl has no key to mint with: the identity provider does.
  const tok = await pushctl(['token', '--user', 'carol', '--data-dir', dir]);
  assert.equal(tok.code, 1);
  assert.match(tok.stderr, /identity provider/);
});
