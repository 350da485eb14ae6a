// JWT checks for private channels (and for everything when the gateway is
// configured to require a token). HS256 with a shared secret (given, or the
// cluster secrets file's `jwtHs256`), RS256/ES256/EdDSA (and their siblings)
// with keys from a JWKS URL or a JWKS file. The user is the token's `sub`;
// `exp` is required (unless allowNoExp: a token without it would be valid
// forever) and enforced for the whole life of the connection, not only when it
// starts. Refusals say why in words of our own: jose's and JSON.parse's
// messages (parser internals) never reach a client.
//
// Key rotation: a JWKS URL is fetched with a timeout and cached; a token whose
// `kid` is not in the cached set makes it refetch (at most once per cooldown),
// and the whole set is refetched once it is older than the cache age, so a key
// removed from the set stops being accepted within that age. A JWKS file is
// re-read when it changes (checked at most every jwksFileCheckMs, and at once
// when a token names an unknown kid); a file that becomes unreadable or
// invalid keeps the last good keys (bad input loses nothing) and is reported.
import { readFileSync, statSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { ClusterSecrets } from '../common/secrets.ts';

export type { AuthConfig } from '../common/config.ts';
import type { AuthConfig } from '../common/config.ts';

/** Asymmetric algorithms a JWKS key may sign with; anything else (HS* through a JWKS, `none`) is refused. */
export const JWKS_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

export interface Identity {
  user: string;
  /** ms since the epoch; Infinity when the token has no exp */
  expiresAt: number;
}

/** The config with `hs256FromSecrets` resolved against the role's secrets (a clear error when it has none). */
export function resolveAuthConfig(config: AuthConfig, secrets: ClusterSecrets | undefined): AuthConfig {
  if (!config.hs256FromSecrets) return config;
  if (!secrets) throw new Error('auth.hs256FromSecrets is set but this gateway has no secretsFile to take the HS256 key (jwtHs256) from');
  return { ...config, hs256Secret: secrets.jwtHs256 };
}

/** Short description of the key source, for logs and `pushctl up` (never the key). */
export function describeAuth(config: AuthConfig): string {
  const parts: string[] = [];
  if (config.hs256FromSecrets) parts.push('hs256 (cluster secrets file)');
  else if (config.hs256Secret) parts.push('hs256');
  if (config.jwksUrl) parts.push(`jwks ${config.jwksUrl}`);
  if (config.jwksFile) parts.push(`jwks file ${config.jwksFile}`);
  return parts.length ? parts.join(' + ') : 'none (no key: private streams refused)';
}

/** Parses a JWKS document, or throws a short reason (no parser text). */
export function parseJwks(text: string, where: string): JSONWebKeySet {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`${where} is not valid JSON`);
  }
  const keys = (v as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new Error(`${where} is not a JWKS: expected {"keys":[…]} with at least one key`);
  for (const k of keys) {
    if (typeof k !== 'object' || k === null || typeof (k as { kty?: unknown }).kty !== 'string') throw new Error(`${where}: every key needs a "kty"`);
    if ('d' in k) throw new Error(`${where} holds a private key ("d"): publish only public keys`);
  }
  return v as JSONWebKeySet;
}

/** A JWKS file, re-read when it changes; the last good set stays in use when the new content is bad. */
class JwksFile {
  #path: string;
  #checkMs: number;
  #onWarning: (msg: string) => void;
  #stamp = '';
  #lastCheck = 0;
  #local!: JWTVerifyGetKey;

  constructor(path: string, checkMs: number, onWarning: (msg: string) => void) {
    this.#path = path;
    this.#checkMs = checkMs;
    this.#onWarning = onWarning;
    this.#load(true);
  }

  #stampOf(): string {
    const s = statSync(this.#path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  }

  /** Reads the file when its stamp changed; the first read must succeed (the gateway does not start without keys). */
  #load(first: boolean): void {
    try {
      const stamp = this.#stampOf();
      if (stamp === this.#stamp) return;
      this.#local = createLocalJWKSet(parseJwks(readFileSync(this.#path, 'utf8'), `JWKS file ${this.#path}`));
      this.#stamp = stamp;
      if (!first) this.#onWarning(`JWKS file ${this.#path} changed: keys reloaded`);
    } catch (err) {
      const msg = err instanceof errors.JOSEError ? `JWKS file ${this.#path} is not a valid key set` : (err as Error).message;
      if (first) throw new Error(msg);
      this.#onWarning(`${msg}; keeping the keys read before`);
    }
  }

  #check(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.#lastCheck < this.#checkMs) return;
    this.#lastCheck = now;
    this.#load(false);
  }

  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    this.#check(false);
    try {
      return await this.#local(header, token);
    } catch (err) {
      // A kid we do not know may have been published a moment ago: look once more.
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      this.#check(true);
      return await this.#local(header, token);
    }
  };
}

export class Authenticator {
  #secret: Uint8Array | undefined;
  #jwks: JWTVerifyGetKey | undefined;
  #config: AuthConfig;

  /** `config.hs256FromSecrets` must be resolved first (resolveAuthConfig). */
  constructor(config: AuthConfig, o: { onWarning?: (msg: string) => void } = {}) {
    this.#config = config;
    if (config.hs256FromSecrets && !config.hs256Secret) throw new Error('auth.hs256FromSecrets is not resolved: use resolveAuthConfig with the cluster secrets');
    if (config.hs256Secret) this.#secret = new TextEncoder().encode(config.hs256Secret);
    if (config.jwksUrl && config.jwksFile) throw new Error('auth: give jwksUrl or jwksFile, not both');
    if (config.jwksUrl) {
      this.#jwks = createRemoteJWKSet(new URL(config.jwksUrl), {
        timeoutDuration: config.jwksTimeoutMs ?? 5_000,
        cooldownDuration: config.jwksCooldownMs ?? 10_000,
        cacheMaxAge: config.jwksCacheMaxAgeMs ?? 60_000,
      });
    } else if (config.jwksFile) {
      this.#jwks = new JwksFile(config.jwksFile, config.jwksFileCheckMs ?? 1_000, o.onWarning ?? (() => {})).getKey;
    }
  }

  get enabled(): boolean {
    return this.#secret !== undefined || this.#jwks !== undefined;
  }

  /** The identity in a valid token, or a message saying exactly why it is not. */
  async verify(token: string | undefined): Promise<Identity | string> {
    if (!token) return 'Unauthorized: a token is required (Authorization: Bearer <jwt>, ?token=, or an AUTH request)';
    if (!this.enabled) return 'Unauthorized: this gateway has no key to check tokens with';
    const opts = {
      ...(this.#config.issuer ? { issuer: this.#config.issuer } : {}),
      ...(this.#config.audience ? { audience: this.#config.audience } : {}),
    };
    const alg = algorithmOf(token);
    if (alg === undefined) return 'Unauthorized: invalid token (not a JWT)';
    const named = /^[A-Za-z0-9]{1,16}$/.test(alg) ? alg : 'these';
    if (alg === 'HS256' && !this.#secret) return 'Unauthorized: HS256 tokens are not accepted here';
    if (alg !== 'HS256' && !(this.#jwks && JWKS_ALGORITHMS.includes(alg))) return `Unauthorized: ${named} tokens are not accepted here`;
    try {
      const { payload } =
        alg === 'HS256'
          ? await jwtVerify(token, this.#secret!, { ...opts, algorithms: ['HS256'] })
          : await jwtVerify(token, this.#jwks!, { ...opts, algorithms: JWKS_ALGORITHMS });
      if (typeof payload.sub !== 'string' || payload.sub === '') return 'Unauthorized: the token has no subject (sub)';
      if (!/^[-_=a-zA-Z0-9]{1,64}$/.test(payload.sub)) return 'Unauthorized: the token subject is not a valid user id';
      if (typeof payload.exp !== 'number' && !this.#config.allowNoExp) return 'Unauthorized: the token has no expiry (exp)';
      return { user: payload.sub, expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : Infinity };
    } catch (err) {
      return `Unauthorized: ${reasonOf(err)}`;
    }
  }
}

/** The `alg` of a token's header, or undefined when it is not a JWT at all. */
function algorithmOf(token: string): string | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as unknown;
    if (typeof header !== 'object' || header === null) return undefined;
    const alg = (header as { alg?: unknown }).alg;
    return typeof alg === 'string' ? alg : 'unsigned';
  } catch {
    return undefined;
  }
}

/** A short reason for a refused token; only the claim's name is taken from jose. */
function reasonOf(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'the token has expired';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad token signature';
  if (err instanceof errors.JWTClaimValidationFailed) {
    const claim = /^[a-z]{2,5}$/.test(err.claim) ? err.claim : 'a claim';
    return `the token's ${claim} claim is not accepted here`;
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return 'the token algorithm is not accepted here';
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return 'no key matches the token';
  // A JWKS that cannot be fetched is our problem, not the token's.
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || !(err instanceof errors.JOSEError)) return 'the keys to check tokens with are unavailable right now';
  return 'invalid token';
}
