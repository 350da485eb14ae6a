// `pushctl up --tls`: a self-signed certificate for local use, generated once
// into <data dir>/tls with Debian's `openssl` CLI (Node's crypto makes keys
// but cannot sign an X.509 certificate without a new dependency) and reused
// across restarts, so clients trust it once. Its SAN lists 127.0.0.1,
// localhost and every address the cluster advertises (--isolate namespaces).
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

export interface SelfSignedCert {
  certFile: string;
  keyFile: string;
  /** SHA-256 of the certificate (DER), AA:BB:…: what `openssl x509 -fingerprint -sha256` and browsers show. */
  fingerprint256: string;
  /** DNS names and IP addresses the certificate is valid for. */
  names: string[];
  /** False when an existing certificate was reused. */
  created: boolean;
}

export const tlsDir = (dataDir: string) => join(dataDir, 'tls');
export const selfSignedPaths = (dataDir: string) => ({ certFile: join(tlsDir(dataDir), 'cert.pem'), keyFile: join(tlsDir(dataDir), 'key.pem') });

const DAYS = 825;
// Reissued this long before it expires, so a cluster started today does not break next week.
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

/** The names every local certificate covers, plus the given addresses, deduplicated. */
export function certificateNames(addresses: readonly string[] = []): string[] {
  return [...new Set(['127.0.0.1', 'localhost', ...addresses])];
}

const sanOf = (names: string[]) => names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');

/** Does this certificate cover every name, and stay valid long enough? */
function stillGood(x509: X509Certificate, names: string[], now: number): boolean {
  if (Date.parse(x509.validTo) - now < RENEW_BEFORE_MS) return false;
  return names.every((n) => (isIP(n) ? x509.checkIP(n) !== undefined : x509.checkHost(n) !== undefined));
}

/**
 * The data dir's certificate and key: reused when present, covering `names`
 * and not near expiry; generated otherwise (key mode 0600, directory 0700).
 */
export function ensureSelfSignedCert(dataDir: string, addresses: readonly string[] = [], now = Date.now()): SelfSignedCert {
  const { certFile, keyFile } = selfSignedPaths(dataDir);
  const names = certificateNames(addresses);
  if (existsSync(certFile) && existsSync(keyFile)) {
    try {
      const x509 = new X509Certificate(readFileSync(certFile));
      if (stillGood(x509, names, now)) return { certFile, keyFile, fingerprint256: x509.fingerprint256, names, created: false };
    } catch {
      // unreadable: made again below
    }
  }
  const dir = tlsDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  // Written beside the real files and renamed, so a failed run never leaves a half pair.
  const tmpCert = `${certFile}.${process.pid}.tmp`;
  const tmpKey = `${keyFile}.${process.pid}.tmp`;
  const args = [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', tmpKey, '-out', tmpCert, '-days', String(DAYS),
    '-subj', '/CN=market-push local cluster',
    '-addext', `subjectAltName=${sanOf(names)}`,
    // A server certificate, not a CA: browsers refuse a CA certificate as a site's own.
    '-addext', 'basicConstraints=critical,CA:FALSE',
    '-addext', 'keyUsage=critical,digitalSignature',
    '-addext', 'extendedKeyUsage=serverAuth',
  ];
  // openssl writes the key 0600 itself, and the directory is 0700 anyway.
  const run = spawnSync('openssl', args, { encoding: 'utf8' });
  try {
    if (run.error) {
      const missing = (run.error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new Error(missing ? 'generating a self-signed certificate needs the `openssl` CLI (Debian package openssl); or pass --tls-cert FILE --tls-key FILE' : `openssl could not be run: ${run.error.message}`);
    }
    if (run.status !== 0) throw new Error(`openssl could not create the certificate (exit ${run.status}): ${String(run.stderr).trim().split('\n').slice(-2).join(' ')}`);
    chmodSync(tmpKey, 0o600);
    renameSync(tmpKey, keyFile);
    renameSync(tmpCert, certFile);
  } finally {
    rmSync(tmpKey, { force: true });
    rmSync(tmpCert, { force: true });
  }
  const x509 = new X509Certificate(readFileSync(certFile));
  return { certFile, keyFile, fingerprint256: x509.fingerprint256, names, created: true };
}
