// The cluster's secrets: one JSON file (mode 0600) that every role and every
// `pushctl` command reads. `pushctl up` generates it into its data dir; an
// operator in production writes their own and points roles at it
// (config.secretsFile). Secrets never travel on a command line (argv is
// readable by every local user through /proc), only as this file's path.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Role kinds that get a NATS user of their own (permissions: see the nats-server config pushctl writes). */
export const NATS_USERS = ['router', 'gateway', 'server', 'control', 'feed', 'operator', 'history'] as const;
export type NatsUserKind = (typeof NATS_USERS)[number];
/** Users added after secrets files were first written: a file without them still loads (`pushctl up` adds them, addMissingNatsUsers). */
const LATER_NATS_USERS: readonly NatsUserKind[] = ['history'];

export interface Credential {
  user: string;
  password: string;
}

export interface ClusterSecrets {
  version: 1;
  /** Operator credential: `pushctl` commands and operators, on every admin listener (Authorization: Bearer). */
  adminToken: string;
  /** Role credential: roles registering with routers, asking them for routes, and calling each other. */
  clusterToken: string;
  /**
   * Scrape credential: GET /metrics on every admin listener and nothing else
   * (Prometheus holds it). Optional so secrets files written before it still
   * load; without it only the admin token scrapes.
   */
  metricsToken?: string;
  /** One NATS user per role kind; `operator` is for pushctl's own tools (bench agents, status). */
  nats: Record<NatsUserKind, Credential>;
  /** The Redis ACL user every role uses (the default user is switched off). */
  redis: Credential;
  /** HS256 key for client JWTs when a cluster runs `--auth hs256`. */
  jwtHs256: string;
}

const token = (bytes = 32) => randomBytes(bytes).toString('base64url');

export function generateSecrets(): ClusterSecrets {
  const nats = Object.fromEntries(NATS_USERS.map((u) => [u, { user: `mp-${u}`, password: token(24) }])) as Record<NatsUserKind, Credential>;
  return {
    version: 1,
    adminToken: `mpa_${token()}`,
    clusterToken: `mpc_${token()}`,
    metricsToken: `mpm_${token()}`,
    nats,
    redis: { user: 'market-push', password: token(24) },
    jwtHs256: token(48),
  };
}

/** Checks a parsed secrets file, or throws saying exactly what is missing. */
export function validateSecrets(v: unknown, where: string): ClusterSecrets {
  const fail = (what: string): never => {
    throw new Error(`${where}: ${what}`);
  };
  if (typeof v !== 'object' || v === null) fail('not a JSON object');
  const s = v as Partial<ClusterSecrets>;
  if (s.version !== 1) fail('unknown version (expected 1)');
  for (const k of ['adminToken', 'clusterToken', 'jwtHs256'] as const)
    if (typeof s[k] !== 'string' || (s[k] as string).length < 16) fail(`"${k}" must be a string of at least 16 characters`);
  if (s.metricsToken !== undefined && (typeof s.metricsToken !== 'string' || s.metricsToken.length < 16))
    fail('"metricsToken" (optional) must be a string of at least 16 characters');
  const cred = (c: unknown, name: string) => {
    const x = c as Partial<Credential> | undefined;
    if (typeof x?.user !== 'string' || x.user === '' || typeof x.password !== 'string' || x.password.length < 16)
      fail(`"${name}" must be { user, password } with a password of at least 16 characters`);
  };
  for (const u of NATS_USERS) if (!(LATER_NATS_USERS.includes(u) && s.nats?.[u] === undefined)) cred(s.nats?.[u], `nats.${u}`);
  cred(s.redis, 'redis');
  return s as ClusterSecrets;
}

/** Gives a secrets file written before a NATS user existed that user (true when one was added). */
export function addMissingNatsUsers(secrets: ClusterSecrets): boolean {
  const fresh = generateSecrets().nats;
  let added = false;
  for (const u of NATS_USERS)
    if (secrets.nats[u] === undefined) {
      secrets.nats[u] = fresh[u];
      added = true;
    }
  return added;
}

/** Reads a secrets file; refuses one that others may read (it holds every credential of the cluster). */
export function readSecretsFile(path: string): ClusterSecrets {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the cluster's secrets file ${path}: ${(err as Error).message}`);
  }
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) throw new Error(`secrets file ${path} is readable by others (mode ${mode.toString(8)}): chmod 600 it`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error(`secrets file ${path} is not valid JSON`);
  }
  return validateSecrets(parsed, `secrets file ${path}`);
}

/** Writes a secrets file with mode 0600 (its folder 0700 when created here). */
export function writeSecretsFile(path: string, secrets: ClusterSecrets): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 });
  chmodSync(path, 0o600); // an existing file keeps its old mode through writeFileSync
}

/** Constant-time comparison of a presented credential with the expected one. */
export function sameSecret(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The bearer token of an Authorization header, if any. */
export function bearerOf(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
}
