// Client requests, decoded from either wire format into one shape, with
// Binance-style errors for anything malformed. Error codes (JSON `error.code`):
//   1 invalid value type · 2 invalid request (unknown method, bad params,
//   unknown topic) · 3 invalid JSON / undecodable frame · 4 too many streams ·
//   5 rate limited · 6 binary/text frame of the wrong kind for the format ·
//   7 unauthorized (missing, bad or expired token for a private channel).
import { fromBinary } from '@bufbuild/protobuf';
import { ClientFrameSchema } from '../../proto/gen/client_pb.js';

export type RequestId = number | string | null;

export type Command =
  | { kind: 'subscribe'; id: RequestId; topics: string[]; ordersAfter?: number }
  | { kind: 'unsubscribe'; id: RequestId; topics: string[] }
  | { kind: 'list'; id: RequestId }
  | { kind: 'setProperty'; id: RequestId; name: 'combined'; value: boolean }
  | { kind: 'getProperty'; id: RequestId; name: 'combined' }
  | { kind: 'ping'; id: RequestId; clientTimeUs: number }
  | { kind: 'ack'; id: RequestId; upTo: number }
  | { kind: 'auth'; id: RequestId; token: string };

export interface RequestError {
  kind: 'error';
  id: RequestId;
  code: number;
  msg: string;
}

const METHODS = ['SUBSCRIBE', 'UNSUBSCRIBE', 'LIST_SUBSCRIPTIONS', 'SET_PROPERTY', 'GET_PROPERTY', 'AUTH', 'ACK'];
/** Binance's only connection property: whether events come wrapped as {stream, data}. */
const PROPERTY_NAMES = ['combined'];
const PROPERTIES = new Set(['method', 'params', 'id', 'after']);

/**
 * The streams named in a `/ws/…` path. Binance accepts any name there: ccxt
 * connects to `/ws/<connection number>` and then SUBSCRIBEs. A segment with
 * an `@` is a stream (and must be valid); any other is a connection name that
 * carries nothing.
 */
export function wsPathStreams(pathname: string): string[] {
  return pathname.slice(4).split('/').filter((p) => p.includes('@'));
}

/** A listenKey as the gateway issues them (user-data-keys.ts): 64 letters and digits. */
export const LISTEN_KEY_RE = /^[A-Za-z0-9]{64}$/;

/**
 * The one place that tells a Binance user-data-stream listenKey in `/ws/<key>`
 * from a connection name or a stream: a listenKey is a long opaque token
 * (64 letters and digits, as the gateway issues them) with no `@`. undefined: not one.
 */
export function wsPathListenKey(pathname: string): string | undefined {
  const segments = pathname.slice(4).split('/').filter(Boolean);
  if (segments.length !== 1) return undefined;
  const s = segments[0]!;
  return LISTEN_KEY_RE.test(s) ? s : undefined;
}

/**
 * Binance's `timeUnit` connect parameter: true for microseconds, false for
 * milliseconds (the default), or an error message for any other value.
 */
export function timeUnitMicros(url: URL): boolean | string {
  const v = url.searchParams.get('timeUnit');
  if (v === null) return false;
  const u = v.toUpperCase();
  if (u === 'MICROSECOND') return true;
  if (u === 'MILLISECOND') return false;
  return `Invalid timeUnit "${v.slice(0, 40)}": MILLISECOND or MICROSECOND`;
}

/**
 * The streams of `/stream?streams=a/b`. Read from the raw query: clients
 * write `kline_1d@+08:00` unescaped, and a form decoder would turn its `+`
 * into a space (no stream name has a space, so one is always a plus).
 */
export function combinedStreams(url: URL): string[] {
  return (url.searchParams.get('streams') ?? '').replaceAll(' ', '+').split('/').filter(Boolean);
}

export function parseJsonRequest(text: string): Command | RequestError {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch (err) {
    return { kind: 'error', id: null, code: 3, msg: `Invalid JSON: ${(err as Error).message}` };
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
    return { kind: 'error', id: null, code: 2, msg: 'Invalid request: expected a JSON object' };
  }
  const m = msg as Record<string, unknown>;
  const rawId = m.id ?? null;
  const id = rawId;
  if (!(rawId === null || (typeof rawId === 'number' && Number.isSafeInteger(rawId) && rawId >= 0) || (typeof rawId === 'string' && rawId.length <= 64))) {
    return { kind: 'error', id: null, code: 1, msg: 'Invalid value type: request ID must be an unsigned integer or a string of at most 64 characters' };
  }
  for (const k of Object.keys(m)) {
    if (!PROPERTIES.has(k)) return { kind: 'error', id: id as RequestId, code: 0, msg: `Unknown property "${k}"` };
  }
  const method = m.method;
  if (typeof method !== 'string') return { kind: 'error', id: id as RequestId, code: 2, msg: 'Invalid request: method must be a string' };
  if (!METHODS.includes(method)) {
    return { kind: 'error', id: id as RequestId, code: 2, msg: `Invalid request: unknown method "${method.slice(0, 40)}", expected one of ${METHODS.join(', ')}` };
  }
  if (method === 'LIST_SUBSCRIPTIONS') return { kind: 'list', id: id as RequestId };
  const params = m.params;
  if (method === 'SET_PROPERTY' || method === 'GET_PROPERTY') return parseProperty(method, id as RequestId, params);
  if (method === 'AUTH') {
    if (!Array.isArray(params) || params.length !== 1 || typeof params[0] !== 'string') {
      return { kind: 'error', id: id as RequestId, code: 2, msg: 'Invalid request: AUTH takes one parameter, the token' };
    }
    return { kind: 'auth', id: id as RequestId, token: params[0] };
  }
  if (method === 'ACK') {
    if (!Array.isArray(params) || params.length !== 1 || !Number.isSafeInteger(params[0]) || (params[0] as number) < 0) {
      return { kind: 'error', id: id as RequestId, code: 2, msg: 'Invalid request: ACK takes one parameter, the seq of the last order event handled' };
    }
    return { kind: 'ack', id: id as RequestId, upTo: params[0] as number };
  }
  const after = m.after;
  if (after !== undefined && !(typeof after === 'number' && Number.isSafeInteger(after) && after >= 0)) {
    return { kind: 'error', id: id as RequestId, code: 1, msg: 'Invalid value type: "after" must be an unsigned integer' };
  }
  if (!Array.isArray(params) || params.length === 0 || !params.every((p) => typeof p === 'string')) {
    return { kind: 'error', id: id as RequestId, code: 2, msg: 'Invalid request: params must be a non-empty array of stream names' };
  }
  if (method === 'SUBSCRIBE') return { kind: 'subscribe', id: id as RequestId, topics: params as string[], ...(after !== undefined ? { ordersAfter: after as number } : {}) };
  return { kind: 'unsubscribe', id: id as RequestId, topics: params as string[] };
}

/** SET_PROPERTY ["combined", bool] / GET_PROPERTY ["combined"], with Binance's error codes and messages. */
function parseProperty(method: 'SET_PROPERTY' | 'GET_PROPERTY', id: RequestId, params: unknown): Command | RequestError {
  const want = method === 'SET_PROPERTY' ? 2 : 1;
  if (!Array.isArray(params) || params.length === 0 || typeof params[0] !== 'string') return { kind: 'error', id, code: 2, msg: 'Invalid request: property name must be a string' };
  if (params.length > want) return { kind: 'error', id, code: 2, msg: 'Invalid request: too many parameters' };
  if (!PROPERTY_NAMES.includes(params[0])) return { kind: 'error', id, code: 0, msg: 'Unknown property' };
  if (method === 'GET_PROPERTY') return { kind: 'getProperty', id, name: 'combined' };
  if (typeof params[1] !== 'boolean') return { kind: 'error', id, code: 1, msg: 'Invalid value type: expected Boolean' };
  return { kind: 'setProperty', id, name: 'combined', value: params[1] };
}

export function parseProtobufRequest(bytes: Uint8Array): Command | RequestError {
  let f;
  try {
    f = fromBinary(ClientFrameSchema, bytes);
  } catch (err) {
    return { kind: 'error', id: null, code: 3, msg: `Invalid frame: not a ClientFrame (${(err as Error).message})` };
  }
  const id = Number(f.id);
  switch (f.kind.case) {
    case 'subscribe':
      if (f.kind.value.topics.length === 0) return { kind: 'error', id, code: 2, msg: 'Invalid request: no topics to subscribe' };
      return { kind: 'subscribe', id, topics: f.kind.value.topics, ...(f.kind.value.ordersAfter ? { ordersAfter: Number(f.kind.value.ordersAfter) } : {}) };
    case 'unsubscribe':
      if (f.kind.value.topics.length === 0) return { kind: 'error', id, code: 2, msg: 'Invalid request: no topics to unsubscribe' };
      return { kind: 'unsubscribe', id, topics: f.kind.value.topics };
    case 'listSubscriptions':
      return { kind: 'list', id };
    case 'ping':
      return { kind: 'ping', id, clientTimeUs: Number(f.kind.value.clientTimeUs) };
    case 'ack':
      return { kind: 'ack', id, upTo: Number(f.kind.value.upTo) };
    case 'auth':
      return { kind: 'auth', id, token: f.kind.value.token };
    default:
      return { kind: 'error', id, code: 2, msg: 'Invalid request: empty ClientFrame' };
  }
}
