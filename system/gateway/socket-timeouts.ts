// Deadlines for the phases of a client socket before it becomes a session,
// so a slow or silent peer cannot hold a socket (slowloris):
//   HTTP: the request headers (also of a WebSocket upgrade) within
//         httpHeadersTimeoutMs, the whole request within httpRequestTimeoutMs.
//         Node checks both only every connectionsCheckingInterval (30 s by
//         default, so a 60 s timeout used to fire after up to 90 s): the
//         interval is set to httpCheckIntervalMs, which must happen before
//         the server starts listening (Node arms its timer on 'listening').
//   raw TCP: the first complete frame (the hello) within tcpHelloTimeoutMs
//         (tcp-api.ts arms the deadline with helloDeadline below).
// After these phases the session's heartbeats and idle timeout take over.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { GatewayConfig } from '../common/config.ts';
import type { ProcessStats } from '../common/process-stats.ts';

type TimeoutConfig = Pick<GatewayConfig, 'httpHeadersTimeoutMs' | 'httpRequestTimeoutMs' | 'httpCheckIntervalMs'>;

const REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 413: 'Payload Too Large', 431: 'Request Header Fields Too Large' };

/** Status for a request Node could not read; the parser's own message never reaches the peer. */
function statusOf(err: NodeJS.ErrnoException): number {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  if (err.code === 'HPE_HEADER_OVERFLOW') return 431;
  if (err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return 413;
  return 400;
}

/** Applies the HTTP deadlines to a gateway's client server (call before listen). */
export function applyHttpTimeouts(server: Server, config: TimeoutConfig, stats: ProcessStats): void {
  // Node requires requestTimeout ≥ headersTimeout (0 disables the request timeout).
  const requestTimeout = config.httpRequestTimeoutMs > 0 ? Math.max(config.httpRequestTimeoutMs, config.httpHeadersTimeoutMs) : 0;
  server.headersTimeout = config.httpHeadersTimeoutMs;
  server.requestTimeout = requestTimeout;
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = config.httpCheckIntervalMs;
  // With a listener Node no longer answers by itself: answer as it would, count, and never echo parser text.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const status = statusOf(err);
    stats.count(status === 408 ? 'http_timeouts' : 'http_bad_requests');
    if (err.code === 'ECONNRESET' || !socket.writable || (socket as Socket & { _httpMessage?: unknown })._httpMessage) {
      socket.destroy();
      return;
    }
    const body = JSON.stringify({ error: { code: status, msg: status === 408 ? 'request not received in time' : 'malformed HTTP request' } });
    socket.end(`HTTP/1.1 ${status} ${REASONS[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    // A peer that does not read our answer must not keep the socket either.
    setTimeout(() => socket.destroy(), 1_000).unref();
  });
}

/**
 * Cuts `socket` unless `hello()` is called within `ms` (0: no deadline).
 * Returns hello, which disarms it; the deadline is also disarmed when the socket closes.
 */
export function helloDeadline(socket: Socket, ms: number, onTimeout: () => void): () => void {
  if (ms <= 0) return () => {};
  const timer = setTimeout(() => {
    onTimeout();
    socket.destroy();
  }, ms);
  timer.unref();
  const disarm = () => clearTimeout(timer);
  socket.once('close', disarm);
  return disarm;
}
