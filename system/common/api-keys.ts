// Binance-style API keys, each mapped to a user: DATA_DIR/api-keys.json
// (mode 0600), written by `pushctl token --user U --api-key` or by the
// operator, read by the gateway's `POST /api/v3/userDataStream`
// (X-MBX-APIKEY → user → listenKey). The format (docs/operations.md):
//   {"keys":[{"apiKey":"...","secret":"...","user":"alice","created":"2026-01-01T00:00:00.000Z"}]}
// An API key is a bearer credential: whoever holds it reads that user's
// private stream, so the file must not be readable by others. `secret`
// (optional: files written before it existed stay valid) is the HMAC-SHA256
// key of signed WebSocket-API requests (ws-api-sign.ts); the gateway must
// hold it to check signatures, as Binance does.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface ApiKeyEntry {
  apiKey: string;
  user: string;
  /** ISO 8601 time it was made. */
  created: string;
  /** HMAC secret for signed requests; absent in older files (the key then only works for listenKeys). */
  secret?: string;
}

export const apiKeysPath = (dataDir: string) => join(dataDir, 'api-keys.json');

/** Users as the gateways accept them in a token's `sub` (and in NATS subjects `orders.<user>`). */
export const USER_ID = /^[-_=a-zA-Z0-9]{1,64}$/;
/** Binance's keys are 64 letters and digits; at least 16 here, so operator keys of other shapes fit. */
const API_KEY = /^[A-Za-z0-9]{16,128}$/;

/**
 * The keys in an api-keys file: [] when it does not exist (no keys issued
 * yet); an Error saying exactly what is wrong when it cannot be read, others
 * may read it, or an entry is malformed.
 */
export function readApiKeys(path: string): ApiKeyEntry[] {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`cannot read the API key file ${path}: ${(err as Error).message}`);
  }
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) throw new Error(`API key file ${path} is readable by others (mode ${mode.toString(8)}): chmod 600 it`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error(`API key file ${path} is not valid JSON`);
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new Error(`API key file ${path}: expected {"keys":[{"apiKey","user","created"}…]}`);
  const seen = new Set<string>();
  return keys.map((k: unknown, i) => {
    const e = k as Partial<ApiKeyEntry> | null;
    if (typeof e?.apiKey !== 'string' || !API_KEY.test(e.apiKey)) throw new Error(`API key file ${path}: keys[${i}].apiKey must be 16–128 letters and digits`);
    if (typeof e.user !== 'string' || !USER_ID.test(e.user)) throw new Error(`API key file ${path}: keys[${i}].user must be 1–64 of A-Z a-z 0-9 - _ =`);
    if (typeof e.created !== 'string' || Number.isNaN(Date.parse(e.created))) throw new Error(`API key file ${path}: keys[${i}].created must be an ISO time`);
    if (e.secret !== undefined && (typeof e.secret !== 'string' || !API_KEY.test(e.secret))) throw new Error(`API key file ${path}: keys[${i}].secret must be 16–128 letters and digits`);
    if (seen.has(e.apiKey)) throw new Error(`API key file ${path}: keys[${i}].apiKey is listed twice`);
    seen.add(e.apiKey);
    return { apiKey: e.apiKey, user: e.user, created: e.created, ...(e.secret !== undefined ? { secret: e.secret } : {}) };
  });
}

/** The user an API key belongs to, compared in constant time; undefined when no entry matches. */
export function userOfApiKey(keys: readonly ApiKeyEntry[], presented: string | undefined): string | undefined {
  return entryOfApiKey(keys, presented)?.user;
}

/** The entry of an API key (with its secret), compared in constant time. */
export function entryOfApiKey(keys: readonly ApiKeyEntry[], presented: string | undefined): ApiKeyEntry | undefined {
  if (!presented) return undefined;
  const p = Buffer.from(presented);
  let found: ApiKeyEntry | undefined;
  for (const k of keys) {
    const b = Buffer.from(k.apiKey);
    if (b.length === p.length && timingSafeEqual(b, p)) found = k;
  }
  return found;
}

/** A new key in Binance's shape: 64 letters and digits. */
export function newApiKey(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let out = '';
  // Rejection sampling keeps every character equally likely (256 is not a multiple of 62).
  while (out.length < 64) for (const b of randomBytes(96)) if (b < 248 && out.length < 64) out += alphabet[b % 62];
  return out;
}

/** Writes the file atomically (a reader never sees half of it) with mode 0600. */
export function writeApiKeys(path: string, keys: readonly ApiKeyEntry[]): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ keys }, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/**
 * The user's API key: the one already in the file, else a new one added to
 * it. An entry without a secret (an older file) gets one. `newSecret` is set
 * only when a secret was made now: it is shown once, never again.
 */
export function ensureApiKey(path: string, user: string): { entry: ApiKeyEntry; created: boolean; newSecret?: string } {
  if (!USER_ID.test(user)) throw new Error(`user "${user}" is not a valid user id (1–64 of A-Z a-z 0-9 - _ =)`);
  const keys = readApiKeys(path);
  const have = keys.find((k) => k.user === user);
  if (have?.secret) return { entry: have, created: false };
  const secret = newApiKey();
  const entry = have ? { ...have, secret } : { apiKey: newApiKey(), secret, user, created: new Date().toISOString() };
  writeApiKeys(path, have ? keys.map((k) => (k === have ? entry : k)) : [...keys, entry]);
  return { entry, created: !have, newSecret: secret };
}
