// Small JSON-over-HTTP helpers shared by the roles' admin and public APIs.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { TLS_HANDSHAKE_TIMEOUT_MS, type TlsMaterial } from './tls.ts';
import { httpCall, type CallOptions } from './http-client.ts';

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;
export type Routes = Record<string, Handler>; // key: "GET /v1/path"

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...headers });
  res.end(data);
}

const MAX_BODY = 1024 * 1024;

export async function readJson<T = unknown>(req: IncomingMessage): Promise<T> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, 'request body too large');
    chunks.push(c as Buffer);
  }
  if (size === 0) return {} as T;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
}

export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Dispatches "METHOD /path" routes; a route ending in "/*" matches the prefix. */
export function routeRequest(routes: Routes): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const key = `${req.method} ${url.pathname}`;
    let handler = routes[key];
    if (!handler) {
      for (const [k, h] of Object.entries(routes)) {
        if (k.endsWith('/*') && key.startsWith(k.slice(0, -1))) {
          handler = h;
          break;
        }
      }
    }
    if (!handler) return sendJson(res, 404, { error: `no route ${key}` });
    Promise.resolve()
      .then(() => handler(req, res, url))
      .catch((err: unknown) => {
        // Only an HttpError's message is meant for the caller; anything else stays in the role (no internals in bodies).
        const known = err instanceof HttpError;
        if (!res.headersSent) sendJson(res, known ? err.status : 500, { error: known ? err.message : 'internal error' });
        else res.destroy();
      });
  };
}

export async function listen(server: NetServer, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** A plain HTTP server, or HTTPS when given a certificate (system/common/tls.ts). */
export function createJsonServer(routes: Routes): Server;
export function createJsonServer(routes: Routes, tls: TlsMaterial | undefined): Server | HttpsServer;
export function createJsonServer(routes: Routes, tls?: TlsMaterial): Server | HttpsServer {
  const server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key, handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS }, routeRequest(routes)) : createServer(routeRequest(routes));
  server.keepAliveTimeout = 5_000;
  return server;
}

/** Closes a server and every connection it still holds. */
export async function closeServer(server: Server | HttpsServer): Promise<void> {
  if (!server.listening) return;
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * A JSON call to another role, on a kept-alive connection (http-client.ts:
 * cheaper than fetch for the polls every role makes while idle).
 */
export async function fetchJson<T>(url: string, init: CallOptions = {}): Promise<T> {
  const res = await httpCall(url, init);
  if (res.status < 200 || res.status > 299) throw new HttpError(res.status, `${init.method ?? 'GET'} ${url}: ${res.status} ${res.text.slice(0, 200)}`);
  return JSON.parse(res.text) as T;
}
