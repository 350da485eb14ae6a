// Small JSON calls between roles (heartbeats, registry lookups, stats) on
// node:http(s) over kept-alive connections. Every role makes several of these
// a second even when the cluster is idle, and WHATWG fetch (undici, web
// streams, an AbortSignal timer per call) costs about 3-4x the CPU of a plain
// request (bench:idle, docs/bench.md): the idle cluster's largest cost.
import http from 'node:http';
import https from 'node:https';

export interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Whole call, connect to last byte (default 3 s). */
  timeoutMs?: number;
}

export interface CallResult {
  status: number;
  text: string;
}

// Few sockets per peer: these calls are small and sequential. Idle sockets are
// closed after a while, so a peer that went away does not hold ours.
const AGENT_OPTIONS = { keepAlive: true, maxSockets: 4, maxFreeSockets: 2, timeout: 30_000 };
const httpAgent = new http.Agent(AGENT_OPTIONS);
const httpsAgent = new https.Agent(AGENT_OPTIONS);
// A response larger than this is not a role's JSON: refused rather than buffered.
const MAX_BODY_BYTES = 16 * 1024 * 1024;

/**
 * One HTTP call; resolves with the status and the whole body, rejects on a
 * network error or timeout. A kept-alive socket the peer closed just as it was
 * reused fails with ECONNRESET before anything was answered: that call is
 * made once more on a fresh socket (Node's documented pattern).
 */
export async function httpCall(url: string, o: CallOptions = {}): Promise<CallResult> {
  try {
    return await callOnce(url, o);
  } catch (err) {
    if ((err as { reusedSocket?: boolean }).reusedSocket && ['ECONNRESET', 'EPIPE'].includes((err as NodeJS.ErrnoException).code ?? '')) return callOnce(url, o);
    throw err;
  }
}

function callOnce(url: string, o: CallOptions): Promise<CallResult> {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  if (!secure && u.protocol !== 'http:') return Promise.reject(new Error(`${url}: only http and https URLs`));
  const timeoutMs = o.timeoutMs ?? 3_000;
  const headers: Record<string, string | number> = { ...o.headers };
  if (o.body !== undefined) headers['content-length'] = Buffer.byteLength(o.body);
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(u, { method: o.method ?? 'GET', headers, agent: secure ? httpsAgent : httpAgent }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_BODY_BYTES) req.destroy(new Error(`${url}: response over ${MAX_BODY_BYTES} bytes`));
        else chunks.push(d);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', fail);
    });
    function fail(err: Error): void {
      clearTimeout(timer);
      reject(Object.assign(err, { reusedSocket: req.reusedSocket }));
    }
    const timer = setTimeout(() => req.destroy(new Error(`${o.method ?? 'GET'} ${url}: no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', fail);
    req.end(o.body);
  });
}
