// SIGNED requests of Binance's WebSocket API (binance-spot-api-docs,
// web-socket-api.md "SIGNED request security", "Timing security"): every
// param but `signature`, sorted by name, as `name=value` joined by `&`,
// signed with HMAC-SHA256 under the API key's secret, hex (either case).
// `timestamp` in ms or µs must be less than 1 s ahead of the server and no
// older than `recvWindow` (default 5000 ms, at most 60000, 3 decimals).
// Only HMAC keys exist here: an Ed25519/RSA signature simply fails (-1022).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { entryOfApiKey, type ApiKeyEntry } from '../common/api-keys.ts';

export interface WsApiError {
  status: number;
  code: number;
  msg: string;
}

export const err = (status: number, code: number, msg: string): WsApiError => ({ status, code, msg });
export const mandatory = (name: string) => err(400, -1102, `Mandatory parameter '${name}' was not sent, was empty/null, or malformed.`);
export const invalidParam = (name: string, why = '') => err(400, -1130, `Data sent for parameter '${name}' is not valid.${why ? ` ${why}` : ''}`);
export const BAD_KEY_FORMAT = err(401, -2014, 'API-key format invalid.');
export const REJECTED_KEY = err(401, -2015, 'Invalid API-key, IP, or permissions for action.');
export const BAD_SIGNATURE = err(400, -1022, 'Signature for this request is not valid.');

const SIGNED = new Set(['apiKey', 'timestamp', 'recvWindow', 'signature']);
const API_KEY = /^[A-Za-z0-9]{16,128}$/;
const MAX_RECV_WINDOW = 60_000;

/** The string that is signed: every param except `signature`, sorted by name. */
export function signaturePayload(params: Record<string, unknown>): string {
  return Object.keys(params)
    .filter((k) => k !== 'signature')
    .sort()
    .map((k) => `${k}=${String(params[k])}`)
    .join('&');
}

export const hmacHex = (secret: string, payload: string) => createHmac('sha256', secret).update(payload, 'utf8').digest('hex');

/** The request time in ms from `timestamp` (ms, or µs when it has 16 digits), or the error. */
function timestampMs(v: unknown): number | WsApiError {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,17}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) return mandatory('timestamp');
  return n >= 1e14 ? n / 1000 : n;
}

function recvWindowMs(v: unknown): number | WsApiError {
  if (v === undefined) return 5_000;
  const text = typeof v === 'number' ? String(v) : v;
  if (typeof text !== 'string' || !/^\d{1,5}(\.\d{1,3})?$/.test(text)) return invalidParam('recvWindow', 'Milliseconds, up to three decimals.');
  const n = Number(text);
  if (!(n > 0 && n <= MAX_RECV_WINDOW)) return invalidParam('recvWindow', `The value cannot be greater than ${MAX_RECV_WINDOW}.`);
  return n;
}

/**
 * Checks a SIGNED request's params (besides `extra`, the method's own) and
 * returns the API-key entry it was signed with, or Binance's error. Order:
 * params, key, time, signature — a request from nobody learns nothing about
 * time or signatures.
 */
export function verifySigned(params: Record<string, unknown>, keys: readonly ApiKeyEntry[] | undefined, now: number, extra: readonly string[] = []): ApiKeyEntry | WsApiError {
  for (const [k, v] of Object.entries(params)) {
    if (!SIGNED.has(k) && !extra.includes(k)) return err(400, -1103, `An unknown parameter was sent: '${k}'.`);
    if (v === null || (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')) return invalidParam(k);
  }
  const apiKey = params.apiKey;
  if (apiKey === undefined || apiKey === '') return mandatory('apiKey');
  if (typeof apiKey !== 'string' || !API_KEY.test(apiKey)) return BAD_KEY_FORMAT;
  if (params.timestamp === undefined) return mandatory('timestamp');
  if (typeof params.signature !== 'string' || params.signature === '') return mandatory('signature');
  const entry = keys ? entryOfApiKey(keys, apiKey) : undefined;
  // A key without a secret (an older file) cannot sign anything.
  if (!entry?.secret) return REJECTED_KEY;
  const ts = timestampMs(params.timestamp);
  if (typeof ts !== 'number') return ts;
  const window = recvWindowMs(params.recvWindow);
  if (typeof window !== 'number') return window;
  if (ts >= now + 1_000) return err(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.");
  if (now - ts > window) return err(400, -1021, 'Timestamp for this request is outside of the recvWindow.');
  const want = Buffer.from(hmacHex(entry.secret, signaturePayload(params)), 'latin1');
  const got = Buffer.from(params.signature.toLowerCase(), 'latin1');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return BAD_SIGNATURE;
  return entry;
}
