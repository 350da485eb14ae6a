// `pushctl up --auth …`: how the gateways check client tokens, what the
// state file records (so `pushctl token` and `status` know), and what `up`
// prints. hs256 (the default) uses the key generated into the cluster's
// secrets file; gateways read it from that file, never from argv.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseJwks } from '../../system/gateway/auth.ts';
import type { GatewayConfig } from '../../system/common/config.ts';

export const AUTH_MODES = ['hs256', 'jwks:URL', 'jwks:FILE', 'none'] as const;

/** What the state file records about client auth. */
export interface ClusterAuth {
  mode: 'hs256' | 'jwks' | 'none';
  jwksUrl?: string;
  jwksFile?: string;
  issuer?: string;
  audience?: string;
  allowNoExp: boolean;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** Parses --auth and its companions, or throws a message for the operator. */
export function parseAuthFlags(f: { auth: string; issuer?: string | undefined; audience?: string | undefined; allowNoExp: boolean }): ClusterAuth {
  const common = { ...(f.issuer ? { issuer: f.issuer } : {}), ...(f.audience ? { audience: f.audience } : {}), allowNoExp: f.allowNoExp };
  if (f.auth === 'hs256') return { mode: 'hs256', ...common };
  if (f.auth === 'none') {
    if (f.issuer || f.audience || f.allowNoExp) throw new Error('--auth none checks no tokens: --auth-issuer, --auth-audience and --auth-allow-no-exp need --auth hs256 or jwks:…');
    return { mode: 'none', allowNoExp: false };
  }
  if (!f.auth.startsWith('jwks:') || f.auth.length === 5) throw new Error(`--auth ${f.auth}: use hs256, jwks:https://idp/.well-known/jwks.json, jwks:/path/to/jwks.json, or none`);
  const target = f.auth.slice(5);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      throw new Error(`--auth jwks:${target}: not a valid URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`--auth jwks:${target}: the key set is fetched over https (or http on loopback)`);
    // Keys fetched in clear text over a network could be swapped by anyone on the path.
    if (url.protocol === 'http:' && !LOOPBACK_HOSTS.has(url.hostname)) throw new Error(`--auth jwks:${target}: plain http is accepted on loopback only; use https`);
    return { mode: 'jwks', jwksUrl: url.href, ...common };
  }
  const file = resolve(target);
  if (!existsSync(file)) throw new Error(`--auth jwks:${target}: no such file (${file})`);
  parseJwks(readFileSync(file, 'utf8'), `JWKS file ${file}`); // a bad file fails now, not in every gateway
  return { mode: 'jwks', jwksFile: file, ...common };
}

/** The gateways' `auth` config for a choice. */
export function gatewayAuth(a: ClusterAuth): GatewayConfig['auth'] {
  const claims = { ...(a.issuer ? { issuer: a.issuer } : {}), ...(a.audience ? { audience: a.audience } : {}), ...(a.allowNoExp ? { allowNoExp: true } : {}) };
  if (a.mode === 'hs256') return { hs256FromSecrets: true, ...claims };
  if (a.mode === 'jwks') return { ...(a.jwksUrl ? { jwksUrl: a.jwksUrl } : { jwksFile: a.jwksFile! }), ...claims };
  return {};
}

/** Lines `pushctl up` prints: where the key lives and how to get a token. */
export function authLines(a: ClusterAuth, o: { dataDir: string; secretsFile?: string | undefined }): string[] {
  const checks = [a.issuer ? `iss=${a.issuer}` : '', a.audience ? `aud=${a.audience}` : '', a.allowNoExp ? 'tokens without exp accepted' : 'exp required'].filter(Boolean).join(', ');
  const pad = (s: string) => s.padEnd(10);
  if (a.mode === 'hs256')
    return [
      `${pad('auth')}hs256: private streams (orders) take JWTs signed with the cluster's key, jwtHs256 in ${o.secretsFile ?? 'the secrets file'} (${checks})`,
      `${pad('')}a development token: pushctl token --user alice --data-dir ${o.dataDir}`,
    ];
  if (a.mode === 'jwks')
    return [`${pad('auth')}jwks: JWTs (RS256/ES256/EdDSA…) checked against ${a.jwksUrl ?? a.jwksFile} (${checks}); your identity provider mints them`];
  return [`${pad('auth')}none: gateways hold no key, so private streams (orders) are refused; public market data needs no token`];
}
