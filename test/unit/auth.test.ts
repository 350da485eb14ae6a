import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, generateKeyPair, exportJWK } from 'jose';
import { Authenticator } from '../../system/gateway/auth.ts';

const secret = 'unit-secret-0123456789abcdef0123';
const hs = (claims: { sub?: string; exp?: number; iss?: string; aud?: string }, key = secret) => {
  let j = new SignJWT({}).setProtectedHeader({ alg: 'HS256' });
  if (claims.sub) j = j.setSubject(claims.sub);
  if (claims.exp !== undefined) j = j.setExpirationTime(claims.exp);
  if (claims.iss) j = j.setIssuer(claims.iss);
  if (claims.aud) j = j.setAudience(claims.aud);
  return j.sign(new TextEncoder().encode(key));
};
const now = () => Math.floor(Date.now() / 1000);

test('HS256: valid, wrong key, expired, no subject, missing token', async () => {
  const a = new Authenticator({ hs256Secret: secret });
  const exp = now() + 60; // once: two reads of the clock can straddle a second
  assert.deepEqual(await a.verify(await hs({ sub: 'alice', exp })), { user: 'alice', expiresAt: exp * 1000 });
  assert.match(String(await a.verify(await hs({ sub: 'alice' }, 'other-secret-0123456789abcdef012'))), /bad token signature/);
  assert.match(String(await a.verify(await hs({ sub: 'alice', exp: now() - 5 }))), /expired/);
  assert.match(String(await a.verify(await hs({}))), /no subject/);
  assert.match(String(await a.verify(undefined)), /token is required/);
  assert.match(String(await a.verify('not.a.jwt')), /invalid token/);
});

test('issuer and audience are checked when configured', async () => {
  const a = new Authenticator({ hs256Secret: secret, issuer: 'exchange', audience: 'push' });
  const exp = now() + 60;
  assert.equal(typeof (await a.verify(await hs({ sub: 'bob', iss: 'exchange', aud: 'push', exp }))), 'object');
  assert.equal(await a.verify(await hs({ sub: 'bob', iss: 'elsewhere', aud: 'push', exp })), "Unauthorized: the token's iss claim is not accepted here");
  assert.equal(await a.verify(await hs({ sub: 'bob', iss: 'exchange', aud: 'other', exp })), "Unauthorized: the token's aud claim is not accepted here");
});

test('RS256 with keys from a JWKS file; HS256 refused when no secret is configured', async () => {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const dir = mkdtempSync(join(tmpdir(), 'mp-jwks-'));
  try {
    const file = join(dir, 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [jwk] }));
    const a = new Authenticator({ jwksFile: file });
    const rs = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('carol').setExpirationTime(now() + 60).sign(privateKey);
    assert.equal(((await a.verify(rs)) as { user: string }).user, 'carol');
    assert.match(String(await a.verify(await hs({ sub: 'carol' }))), /HS256 tokens are not accepted/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a token without exp is refused unless allowNoExp; with it, it never expires', async () => {
  const token = await hs({ sub: 'dave' });
  assert.equal(await new Authenticator({ hs256Secret: secret }).verify(token), 'Unauthorized: the token has no expiry (exp)');
  assert.deepEqual(await new Authenticator({ hs256Secret: secret, allowNoExp: true }).verify(token), { user: 'dave', expiresAt: Infinity });
});

test('refusals are short reasons of our own: no parser or library text', async () => {
  const a = new Authenticator({ hs256Secret: secret });
  const b64 = (s: string) => Buffer.from(s).toString('base64url');
  const garbage = [
    'garbage',
    'a.b.c',
    `${b64('{"alg":')}.${b64('{}')}.sig`, // truncated JSON header
    `${b64('{"alg":"HS256"}')}.${b64('not json {')}.c2ln`, // payload is not JSON
    `${b64('{"alg":"HS256"}')}.${b64('[1,2')}.c2ln`,
    `${b64('"just a string"')}.${b64('{}')}.c2ln`,
    `${b64('{"alg":"RS256<script>"}')}.${b64('{}')}.c2ln`,
  ];
  for (const token of garbage) {
    const msg = await a.verify(token);
    assert.equal(typeof msg, 'string', token);
    assert.match(msg as string, /^Unauthorized: [a-zA-Z0-9 ():'(),.]+$/, `${token} → ${String(msg)}`);
    assert.doesNotMatch(msg as string, /JSON|Unexpected|position|undefined|at .*:\d+|<script>/i, `${token} → ${String(msg)}`);
  }
});
