// `pushctl up --auth …` parsing and the gateway config it plans; the API key
// file (format shared with the userDataStream endpoint) and its refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayAuth, parseAuthFlags } from '../../cli/lib/auth-plan.ts';
import { planCluster, portsFromBase } from '../../cli/lib/cluster-plan.ts';
import { ensureApiKey, newApiKey, readApiKeys, userOfApiKey, writeApiKeys } from '../../system/common/api-keys.ts';
import { parseTtl } from '../../cli/commands/token.ts';

const flags = (auth: string, more: Partial<{ issuer: string; audience: string; allowNoExp: boolean }> = {}) => parseAuthFlags({ auth, allowNoExp: false, ...more });

test('--auth values: hs256 from the secrets file, jwks URL or file, none; bad ones refused with the reason', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mp-authplan-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.deepEqual(gatewayAuth(flags('hs256', { issuer: 'idp', audience: 'push' })), { hs256FromSecrets: true, issuer: 'idp', audience: 'push' });
  assert.deepEqual(gatewayAuth(flags('hs256', { allowNoExp: true })), { hs256FromSecrets: true, allowNoExp: true });
  assert.deepEqual(gatewayAuth(flags('jwks:https://idp.example/jwks.json')), { jwksUrl: 'https://idp.example/jwks.json' });
  assert.deepEqual(gatewayAuth(flags('jwks:http://127.0.0.1:8080/jwks')), { jwksUrl: 'http://127.0.0.1:8080/jwks' });
  const file = join(dir, 'jwks.json');
  writeFileSync(file, JSON.stringify({ keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'AAAA', kid: 'k' }] }));
  assert.deepEqual(gatewayAuth(flags(`jwks:${file}`)), { jwksFile: file });
  assert.deepEqual(gatewayAuth(flags('none')), {});
  assert.throws(() => flags('HS512'), /use hs256, jwks:/);
  assert.throws(() => flags('jwks:'), /use hs256, jwks:/);
  assert.throws(() => flags('jwks:ftp://idp/jwks'), /https/);
  assert.throws(() => flags('jwks:http://idp.example/jwks'), /loopback only/);
  assert.throws(() => flags(`jwks:${join(dir, 'missing.json')}`), /no such file/);
  writeFileSync(join(dir, 'bad.json'), '{"keys":');
  assert.throws(() => flags(`jwks:${join(dir, 'bad.json')}`), /not valid JSON/);
  assert.throws(() => flags('none', { audience: 'x' }), /--auth none checks no tokens/);
});

test('the plan hands gateways (only) the auth config; the key itself is not in it', () => {
  const input = {
    routers: 1, gateways: 2, servers: 1, symbols: 2, rate: 1, host: '127.0.0.1', dataDir: '/tmp/d',
    bus: { kind: 'spawn' as const, bin: '/usr/bin/nats-server' }, cache: { kind: 'none' as const },
    ports: portsFromBase(7100, { routers: 1, gateways: 2, servers: 1 }), secretsFile: '/tmp/d/secrets.json',
    clientAuth: flags('hs256', { issuer: 'me' }),
  };
  const plan = planCluster(input);
  assert.deepEqual(plan.clientAuth, { mode: 'hs256', issuer: 'me', allowNoExp: false });
  for (const r of plan.roles) {
    if (r.role === 'gateway') assert.deepEqual(r.config.auth, { hs256FromSecrets: true, issuer: 'me' });
    else assert.equal(r.config.auth, undefined, r.id);
  }
});

test('pushctl token --ttl values', () => {
  assert.equal(parseTtl('90s'), 90);
  assert.equal(parseTtl('30m'), 1800);
  assert.equal(parseTtl('1h'), 3600);
  assert.equal(parseTtl('7d'), 604_800);
  assert.equal(parseTtl('45'), 45);
  for (const bad of ['', 'h', '1.5h', '-1h', 'forever', '1w']) assert.equal(parseTtl(bad), undefined, bad);
});

test('API key file: made once per user, 0600, constant-time lookup; malformed or world-readable files refused', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mp-apikeys-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'api-keys.json');
  assert.deepEqual(readApiKeys(file), [], 'no file yet: no keys');
  const a = ensureApiKey(file, 'alice');
  assert.equal(a.created, true);
  assert.match(a.entry.apiKey, /^[A-Za-z0-9]{64}$/);
  assert.equal(ensureApiKey(file, 'alice').entry.apiKey, a.entry.apiKey);
  const b = ensureApiKey(file, 'bob');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const keys = readApiKeys(file);
  assert.deepEqual(keys.map((k) => k.user), ['alice', 'bob']);
  assert.equal(userOfApiKey(keys, a.entry.apiKey), 'alice');
  assert.equal(userOfApiKey(keys, b.entry.apiKey), 'bob');
  assert.equal(userOfApiKey(keys, newApiKey()), undefined);
  assert.equal(userOfApiKey(keys, undefined), undefined);
  assert.throws(() => ensureApiKey(file, 'a.b'), /not a valid user id/);

  chmodSync(file, 0o644);
  assert.throws(() => readApiKeys(file), /readable by others.*chmod 600/);
  const bad = (text: string, why: RegExp) => {
    writeFileSync(file, text, { mode: 0o600 });
    chmodSync(file, 0o600);
    assert.throws(() => readApiKeys(file), why);
  };
  bad('{"keys":', /not valid JSON/);
  bad('[]', /expected \{"keys"/);
  bad(JSON.stringify({ keys: [{ apiKey: 'short', user: 'alice', created: new Date().toISOString() }] }), /keys\[0\]\.apiKey/);
  bad(JSON.stringify({ keys: [{ apiKey: newApiKey(), user: 'al ice', created: new Date().toISOString() }] }), /keys\[0\]\.user/);
  bad(JSON.stringify({ keys: [{ apiKey: newApiKey(), user: 'alice', created: 'yesterday' }] }), /keys\[0\]\.created/);
  const dup = newApiKey();
  bad(JSON.stringify({ keys: [{ apiKey: dup, user: 'a', created: new Date().toISOString() }, { apiKey: dup, user: 'b', created: new Date().toISOString() }] }), /listed twice/);
  // Rewriting keeps 0600 and the documented shape.
  writeApiKeys(file, keys);
  assert.deepEqual(Object.keys(JSON.parse(readFileSync(file, 'utf8'))), ['keys']);
});


test('API key secrets: made with the key and shown once; an older entry without one stays valid and gets one', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mp-apikeys-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'api-keys.json');
  const a = ensureApiKey(file, 'alice');
  assert.match(a.newSecret ?? '', /^[A-Za-z0-9]{64}$/);
  assert.equal(a.entry.secret, a.newSecret);
  assert.notEqual(a.entry.secret, a.entry.apiKey);
  assert.equal(ensureApiKey(file, 'alice').newSecret, undefined, 'the secret is not handed out again');
  // A file from before secrets existed: read as is; the next ensureApiKey keeps the key and adds a secret.
  const old = { apiKey: newApiKey(), user: 'bob', created: new Date().toISOString() };
  writeApiKeys(file, [...readApiKeys(file), old]);
  assert.equal(readApiKeys(file).find((k) => k.user === 'bob')!.secret, undefined);
  const b = ensureApiKey(file, 'bob');
  assert.equal(b.created, false);
  assert.equal(b.entry.apiKey, old.apiKey);
  assert.match(b.newSecret ?? '', /^[A-Za-z0-9]{64}$/);
  assert.equal(readApiKeys(file).find((k) => k.user === 'bob')!.secret, b.newSecret);
  assert.equal(readApiKeys(file).find((k) => k.user === 'alice')!.secret, a.newSecret, 'other entries untouched');
  writeFileSync(file, JSON.stringify({ keys: [{ ...old, secret: 'short' }] }), { mode: 0o600 });
  assert.throws(() => readApiKeys(file), /keys\[0\]\.secret/);
});
