// Certificate renewal on a live TLS server: a good pair is served to new
// handshakes at once, a bad one is logged and the old pair stays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { ensureSelfSignedCert } from '../../cli/lib/self-signed-cert.ts';
import { createLogger } from '../../system/common/logger.ts';
import { loadTlsFiles } from '../../system/common/tls.ts';
import { setPair, watchTlsFiles, type SecureContextHolder } from '../../system/common/tls-reload.ts';

const presented = (port: number) =>
  new Promise<string>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.destroy();
    });
    s.once('error', reject);
  });

test('reload: a bad pair keeps the old certificate and says why; a good one is served to the next handshake', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'push-reload-'));
  const logFile = join(dir, 'role.log');
  const log = createLogger('reload-test', logFile);
  const a = ensureSelfSignedCert(join(dir, 'a'));
  const b = ensureSelfSignedCert(join(dir, 'b'));
  const files = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') };
  copyFileSync(a.certFile, files.certFile);
  copyFileSync(a.keyFile, files.keyFile);
  const loaded = loadTlsFiles(files);
  const server = createServer({ cert: loaded.cert, key: loaded.key }, (_q, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const reloader = watchTlsFiles(files, loaded, [setPair(server as SecureContextHolder)], log, 60_000);
  try {
    assert.equal(await presented(port), a.fingerprint256);
    // The new certificate with the old key: refused as a pair, the old one stays.
    copyFileSync(b.certFile, files.certFile);
    assert.equal(reloader.reload(), false);
    assert.equal(await presented(port), a.fingerprint256);
    writeFileSync(files.keyFile, 'garbage');
    assert.equal(reloader.reload(), false);
    copyFileSync(b.keyFile, files.keyFile);
    assert.equal(reloader.reload(), true);
    assert.equal(await presented(port), b.fingerprint256);
  } finally {
    reloader.stop();
    server.close();
    server.closeAllConnections();
    await log.close();
  }
  const logged = readFileSync(logFile, 'utf8');
  assert.match(logged, /TLS certificate not reloaded; the current one stays/);
  assert.match(logged, /does not belong to the certificate/);
  assert.ok(logged.includes(b.fingerprint256), 'the new fingerprint is logged');
  rmSync(dir, { recursive: true, force: true });
});
