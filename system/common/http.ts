// Small JSON-over-HTTP helpers shared by the roles' admin and public APIs.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';

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
        const status = err instanceof HttpError ? err.status : 500;
        if (!res.headersSent) sendJson(res, status, { error: err instanceof Error ? err.message : String(err) });
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

export function createJsonServer(routes: Routes): Server {
  const server = createServer(routeRequest(routes));
  server.keepAliveTimeout = 5_000;
  return server;
}

/** Closes a server and every connection it still holds. */
export async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function fetchJson<T>(url: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<T> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(init.timeoutMs ?? 3_000) });
  const text = await res.text();
  if (!res.ok) throw new HttpError(res.status, `${init.method ?? 'GET'} ${url}: ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}
