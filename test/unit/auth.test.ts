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
  assert.deepEqual(await a.verify(await hs({ sub: 'alice', exp: now() + 60 })), { user: 'alice', expiresAt: (now() + 60) * 1000 });
  assert.match(String(await a.verify(await hs({ sub: 'alice' }, 'other-secret-0123456789abcdef012'))), /bad token signature/);
  assert.match(String(await a.verify(await hs({ sub: 'alice', exp: now() - 5 }))), /expired/);
  assert.match(String(await a.verify(await hs({}))), /no subject/);
  assert.match(String(await a.verify(undefined)), /token is required/);
  assert.match(String(await a.verify('not.a.jwt')), /invalid token/);
});

test('issuer and audience are checked when configured', async () => {
  const a = new Authenticator({ hs256Secret: secret, issuer: 'exchange', audience: 'push' });
  assert.equal(typeof (await a.verify(await hs({ sub: 'bob', iss: 'exchange', aud: 'push' }))), 'object');
  assert.match(String(await a.verify(await hs({ sub: 'bob', iss: 'elsewhere', aud: 'push' }))), /Unauthorized/);
  assert.match(String(await a.verify(await hs({ sub: 'bob', iss: 'exchange', aud: 'other' }))), /Unauthorized/);
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
