// TLS for the client ports: one certificate + key pair (PEM files) serves the
// gateway's HTTP/WebSocket port, its gRPC port and its raw-TCP port, and the
// router's client port. Also the trust side: a role (or pushctl) that calls
// another role over https adds the cluster's certificate to the CAs it trusts.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';

/** A client that has not finished its TLS handshake by then is cut (Node's default is 120 s: slowloris room). */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Where a role finds its certificate chain and private key (PEM). */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** The loaded pair, ready for https/tls/grpc server options. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** SHA-256 fingerprint of the leaf certificate, AA:BB:… (logged so an operator can compare). */
  fingerprint256: string;
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new Error(`cannot read the TLS ${what} file ${path} (${code})`);
  }
}

/**
 * Reads and checks the pair: both parse, and the key belongs to the
 * certificate, so a wrong file fails at start with a clear message instead of
 * at every client's handshake.
 */
export function loadTlsFiles(files: TlsFiles): TlsMaterial {
  if (typeof files?.certFile !== 'string' || typeof files.keyFile !== 'string' || !files.certFile || !files.keyFile)
    throw new Error('tls needs "certFile" and "keyFile": the paths of a PEM certificate chain and its private key');
  const cert = readPem(files.certFile, 'certificate');
  const key = readPem(files.keyFile, 'key');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new Error(`the TLS certificate file ${files.certFile} holds no PEM certificate`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new Error(`the TLS key file ${files.keyFile} holds no (unencrypted) PEM private key`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new Error(`the TLS key ${files.keyFile} does not belong to the certificate ${files.certFile}`);
  return { cert, key, fingerprint256: x509.fingerprint256 };
}

/** The advertised scheme of a client port: ws/wss, http/https. */
export const wsScheme = (tls: unknown) => (tls ? 'wss' : 'ws');
export const httpScheme = (tls: unknown) => (tls ? 'https' : 'http');

/**
 * Adds the PEM certificate(s) in `caFile` to the CAs every TLS client of this
 * process trusts by default (fetch, https, ws, tls.connect): how a role reaches
 * a router or gateway that serves a self-signed certificate. Idempotent.
 */
export function trustCaFile(caFile: string): void {
  const pem = readPem(caFile, 'CA').toString('utf8');
  const current = getCACertificates('default');
  const added = splitPem(pem).filter((c) => !current.includes(c));
  if (added.length === 0) return;
  setDefaultCACertificates([...current, ...added]);
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates in a PEM bundle, each normalised the way getCACertificates returns them. */
function splitPem(pem: string): string[] {
  const certs = pem.match(PEM_CERT) ?? [];
  if (certs.length === 0) throw new Error('the CA file holds no PEM certificate');
  return certs.map((c) => c.trim() + '\n');
}
