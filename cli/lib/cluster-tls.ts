// Which certificate a `pushctl up` cluster's client ports use, and how
// pushctl's own clients come to trust it. --tls-cert/--tls-key: the
// operator's pair; --tls: the data dir's self-signed one (self-signed-cert.ts).
import { loadTlsFiles, trustCaFile } from '../../system/common/tls.ts';
import { ensureSelfSignedCert, selfSignedPaths } from './self-signed-cert.ts';
import { existsSync } from 'node:fs';

export interface TlsFlags {
  tls?: boolean;
  'tls-cert'?: string;
  'tls-key'?: string;
}

export interface ClusterTls {
  certFile: string;
  keyFile: string;
  /** What every role (and pushctl) adds to the CAs it trusts: the certificate itself. */
  caFile: string;
  fingerprint256: string;
  selfSigned: boolean;
  /** A new self-signed certificate was made on this run (clients must trust it again). */
  created: boolean;
}

/**
 * The cluster's TLS pair from the flags, or undefined for plain text.
 * `addresses`: every address the roles advertise, for the self-signed SAN.
 * Throws a clear message for half-given or unusable flags.
 */
export function resolveClusterTls(flags: TlsFlags, dataDir: string, addresses: readonly string[]): ClusterTls | undefined {
  const cert = flags['tls-cert'];
  const key = flags['tls-key'];
  if ((cert === undefined) !== (key === undefined)) throw new Error('--tls-cert and --tls-key go together: give both (PEM files), or --tls for a self-signed pair');
  if (cert !== undefined && key !== undefined) {
    if (flags.tls) throw new Error('--tls makes a self-signed certificate; it cannot be combined with --tls-cert/--tls-key');
    const { fingerprint256 } = loadTlsFiles({ certFile: cert, keyFile: key });
    // Trusting the leaf itself is what a self-signed operator pair needs, and harmless for a CA-issued one.
    return { certFile: cert, keyFile: key, caFile: cert, fingerprint256, selfSigned: false, created: false };
  }
  if (!flags.tls) return undefined;
  const made = ensureSelfSignedCert(dataDir, addresses);
  loadTlsFiles(made); // the pair must load as the roles will load it
  return { certFile: made.certFile, keyFile: made.keyFile, caFile: made.certFile, fingerprint256: made.fingerprint256, selfSigned: true, created: made.created };
}

/**
 * pushctl's own clients (status, bench, up's health checks) trust the data
 * dir's self-signed certificate when it has one. Returns the file, if any.
 * An operator's own pair is trusted the usual way (system CAs, NODE_EXTRA_CA_CERTS).
 */
export function trustClusterCert(dataDir: string): string | undefined {
  const { certFile } = selfSignedPaths(dataDir);
  if (!existsSync(certFile)) return undefined;
  trustCaFile(certFile);
  return certFile;
}

/** Env var naming the CA file (PEM) a local bench agent trusts: how `bench` hands the cluster's certificate down. */
export const AGENT_CA_ENV = 'PUSHCTL_TLS_CA';

/** What `up` prints so an operator can check and trust the certificate. */
export function trustHints(t: ClusterTls): string[] {
  return [
    `tls       client ports over TLS (wss://, https://, gRPC and raw TCP in TLS) with ${t.selfSigned ? `a self-signed certificate${t.created ? ' (new)' : ' (reused)'}` : 'the given certificate'}`,
    `          certificate ${t.certFile}`,
    `          SHA-256 fingerprint ${t.fingerprint256}`,
    `          trust it: NODE_EXTRA_CA_CERTS=${t.caFile} node …   curl --cacert ${t.caFile} …   grpcurl -cacert ${t.caFile} …`,
  ];
}
