// JWT checks for private channels (and for everything when the gateway is
// configured to require a token). HS256 with a shared secret, RS256 (and the
// other asymmetric algorithms jose supports) with keys from a JWKS URL or a
// JWKS file. The user is the token's `sub`; `exp` is enforced for the whole
// life of the connection, not only when it starts.
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, errors, type JWTVerifyGetKey } from 'jose';

export interface AuthConfig {
  hs256Secret?: string;
  jwksUrl?: string;
  jwksFile?: string;
  issuer?: string;
  audience?: string;
}

export interface Identity {
  user: string;
  /** ms since the epoch; Infinity when the token has no exp */
  expiresAt: number;
}

export class Authenticator {
  #secret: Uint8Array | undefined;
  #jwks: JWTVerifyGetKey | undefined;
  #config: AuthConfig;

  constructor(config: AuthConfig) {
    this.#config = config;
    if (config.hs256Secret) this.#secret = new TextEncoder().encode(config.hs256Secret);
    if (config.jwksUrl) this.#jwks = createRemoteJWKSet(new URL(config.jwksUrl));
    else if (config.jwksFile) this.#jwks = createLocalJWKSet(JSON.parse(readFileSync(config.jwksFile, 'utf8')));
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
    try {
      const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as { alg?: string };
      const { payload } =
        header.alg === 'HS256'
          ? this.#secret
            ? await jwtVerify(token, this.#secret, { ...opts, algorithms: ['HS256'] })
            : (() => {
                throw new Error('HS256 tokens are not accepted here');
              })()
          : this.#jwks
            ? await jwtVerify(token, this.#jwks, opts)
            : (() => {
                throw new Error(`${header.alg ?? 'unsigned'} tokens are not accepted here`);
              })();
      if (typeof payload.sub !== 'string' || payload.sub === '') return 'Unauthorized: the token has no subject (sub)';
      if (!/^[-_=a-zA-Z0-9]{1,64}$/.test(payload.sub)) return 'Unauthorized: the token subject is not a valid user id';
      return { user: payload.sub, expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : Infinity };
    } catch (err) {
      if (err instanceof errors.JWTExpired) return 'Unauthorized: the token has expired';
      if (err instanceof errors.JWSSignatureVerificationFailed) return 'Unauthorized: bad token signature';
      if (err instanceof errors.JWTClaimValidationFailed) return `Unauthorized: ${err.message}`;
      return `Unauthorized: invalid token (${(err as Error).message})`;
    }
  }
}
