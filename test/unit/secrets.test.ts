import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bearerOf, generateSecrets, readSecretsFile, sameSecret, writeSecretsFile } from '../../system/common/secrets.ts';
import { ensureClusterSecrets, loadClusterSecrets } from '../../cli/lib/cluster-secrets.ts';

test('secrets are generated once per data dir, mode 0600, and read back the same', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mp-secrets-'));
  try {
    assert.throws(() => loadClusterSecrets(dir), /no cluster secrets/);
    const a = ensureClusterSecrets(dir);
    assert.equal(a.created, true);
    assert.equal(statSync(a.path).mode & 0o777, 0o600);
    const b = ensureClusterSecrets(dir);
    assert.equal(b.created, false);
    assert.deepEqual(b.secrets, a.secrets);
    assert.deepEqual(loadClusterSecrets(dir), a.secrets);
    assert.notEqual(a.secrets.adminToken, a.secrets.clusterToken);
    assert.notEqual(a.secrets.nats.feed.password, a.secrets.nats.gateway.password);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a secrets file that others may read, or that lacks a credential, is refused with the reason', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mp-secrets-'));
  try {
    const path = join(dir, 's.json');
    writeSecretsFile(path, generateSecrets());
    chmodSync(path, 0o644);
    assert.throws(() => readSecretsFile(path), /readable by others/);
    const s = generateSecrets() as unknown as Record<string, unknown>;
    delete s.redis;
    writeFileSync(path, JSON.stringify(s), { mode: 0o600 });
    chmodSync(path, 0o600);
    assert.throws(() => readSecretsFile(path), /"redis"/);
    writeFileSync(path, 'nope');
    assert.throws(() => readSecretsFile(path), /not valid JSON/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('credentials compare in constant time and bearer headers parse strictly', () => {
  assert.equal(sameSecret('abc', 'abc'), true);
  assert.equal(sameSecret('abd', 'abc'), false);
  assert.equal(sameSecret('ab', 'abc'), false);
  assert.equal(sameSecret(undefined, 'abc'), false);
  assert.equal(bearerOf('Bearer xyz'), 'xyz');
  assert.equal(bearerOf('bearer xyz '), 'xyz');
  assert.equal(bearerOf('Basic xyz'), undefined);
  assert.equal(bearerOf(undefined), undefined);
});

test('a secrets file from before the history process\'s NATS user still loads, and `up` gives it one (others kept)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mp-secrets-'));
  try {
    const old = generateSecrets();
    delete (old.nats as Partial<typeof old.nats>).history;
    writeSecretsFile(join(dir, 'secrets.json'), old);
    assert.equal(readSecretsFile(join(dir, 'secrets.json')).nats.history, undefined);
    const made = ensureClusterSecrets(dir);
    assert.equal(made.created, false);
    assert.equal(made.secrets.nats.history.user, 'mp-history');
    assert.ok(made.secrets.nats.history.password.length >= 16);
    assert.deepEqual(made.secrets.nats.server, old.nats.server, 'the other users keep their passwords');
    assert.deepEqual(loadClusterSecrets(dir).nats.history, made.secrets.nats.history, 'written back');
    // A history user that is there but malformed is still refused.
    writeFileSync(join(dir, 'secrets.json'), JSON.stringify({ ...old, nats: { ...old.nats, history: { user: 'h', password: 'short' } } }), { mode: 0o600 });
    assert.throws(() => readSecretsFile(join(dir, 'secrets.json')), /nats\.history/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
