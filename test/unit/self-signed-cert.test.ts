// The self-signed certificate `pushctl up --tls` makes (openssl CLI), the
// checks every role runs on a cert/key pair, and the flag rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSelfSignedCert } from '../../cli/lib/self-signed-cert.ts';
import { resolveClusterTls, trustHints } from '../../cli/lib/cluster-tls.ts';
import { loadTlsFiles } from '../../system/common/tls.ts';

const withDir = (f: (dir: string) => void) => {
  const dir = mkdtempSync(join(tmpdir(), 'push-cert-'));
  try {
    f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

test('the generated certificate names 127.0.0.1, localhost and the given addresses; its fingerprint is the one printed', () =>
  withDir((dir) => {
    const made = ensureSelfSignedCert(dir, ['10.201.0.7']);
    assert.equal(made.created, true);
    const x509 = new X509Certificate(readFileSync(made.certFile));
    assert.ok(x509.subjectAltName?.includes('IP Address:127.0.0.1'), x509.subjectAltName);
    assert.ok(x509.subjectAltName?.includes('DNS:localhost'), x509.subjectAltName);
    assert.equal(x509.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(x509.checkIP('10.201.0.7'), '10.201.0.7');
    assert.equal(x509.checkIP('10.201.0.8'), undefined);
    assert.equal(x509.ca, false, 'a server certificate, not a CA');
    assert.ok(x509.checkPrivateKey(createPrivateKey(readFileSync(made.keyFile))));
    assert.equal(made.fingerprint256, x509.fingerprint256);
    // What `up` prints, and what openssl itself says of the file.
    const printed = trustHints({ ...made, caFile: made.certFile, selfSigned: true }).join('\n');
    assert.ok(printed.includes(`SHA-256 fingerprint ${x509.fingerprint256}`), printed);
    assert.ok(printed.includes(made.certFile));
    const openssl = spawnSync('openssl', ['x509', '-in', made.certFile, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' });
    assert.equal(openssl.stdout.trim().split('=')[1], made.fingerprint256);
    assert.equal(statSync(made.keyFile).mode & 0o777, 0o600, 'key readable by its owner only');
    assert.equal(statSync(join(dir, 'tls')).mode & 0o777, 0o700);
  }));

test('made once and reused across restarts; made again when an address is missing or it nears expiry', () =>
  withDir((dir) => {
    const first = ensureSelfSignedCert(dir);
    const again = ensureSelfSignedCert(dir);
    assert.equal(again.created, false);
    assert.equal(again.fingerprint256, first.fingerprint256);
    const wider = ensureSelfSignedCert(dir, ['10.201.0.9']);
    assert.equal(wider.created, true);
    assert.notEqual(wider.fingerprint256, first.fingerprint256);
    const validTo = Date.parse(new X509Certificate(readFileSync(wider.certFile)).validTo);
    const late = ensureSelfSignedCert(dir, ['10.201.0.9'], validTo - 24 * 3600 * 1000);
    assert.equal(late.created, true, 'reissued a day before it expires');
  }));

test('a role refuses a missing file, a non-certificate and a key of another certificate, with a clear message', () =>
  withDir((dir) => {
    const a = ensureSelfSignedCert(join(dir, 'a'));
    const b = ensureSelfSignedCert(join(dir, 'b'));
    assert.equal(loadTlsFiles(a).fingerprint256, a.fingerprint256);
    assert.throws(() => loadTlsFiles({ certFile: join(dir, 'none.pem'), keyFile: a.keyFile }), /cannot read the TLS certificate file .*none\.pem \(ENOENT\)/);
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    assert.throws(() => loadTlsFiles({ certFile: junk, keyFile: a.keyFile }), /holds no PEM certificate/);
    assert.throws(() => loadTlsFiles({ certFile: a.certFile, keyFile: junk }), /holds no \(unencrypted\) PEM private key/);
    assert.throws(() => loadTlsFiles({ certFile: a.certFile, keyFile: b.keyFile }), /does not belong to the certificate/);
    assert.throws(() => loadTlsFiles({ certFile: a.certFile } as never), /tls needs "certFile" and "keyFile"/);
  }));

test('--tls-cert and --tls-key go together and exclude --tls; --tls makes the data dir pair; no flag: plain text', () =>
  withDir((dir) => {
    assert.equal(resolveClusterTls({}, dir, ['127.0.0.1']), undefined);
    assert.throws(() => resolveClusterTls({ 'tls-cert': '/x.pem' }, dir, []), /--tls-cert and --tls-key go together/);
    const own = ensureSelfSignedCert(join(dir, 'own'));
    assert.throws(() => resolveClusterTls({ tls: true, 'tls-cert': own.certFile, 'tls-key': own.keyFile }, dir, []), /cannot be combined/);
    const given = resolveClusterTls({ 'tls-cert': own.certFile, 'tls-key': own.keyFile }, dir, []);
    assert.deepEqual(given, { certFile: own.certFile, keyFile: own.keyFile, caFile: own.certFile, fingerprint256: own.fingerprint256, selfSigned: false, created: false });
    const self = resolveClusterTls({ tls: true }, dir, ['127.0.0.1'])!;
    assert.equal(self.certFile, join(dir, 'tls', 'cert.pem'));
    assert.equal(self.selfSigned, true);
  }));
