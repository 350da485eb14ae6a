// A WebSocket client's events, bound to its session without a closure per
// connection. With tens of thousands of idle connections, per-connection
// listener closures were a measurable share of a connection's memory, and a
// closure created inside the upgrade handler kept that handler's whole scope
// alive for the connection's life (the upgrade request, its headers, the
// parsed URL: ~3 KiB each; docs/design.md, "Memory per connection"). Here the
// listeners are created once per gateway and find their session through
// `this`: the WebSocket (a SessionSocket, which carries its ClientConn) or
// the TCP socket (through a WeakMap).
import type { Socket } from 'node:net';
import WebSocket, { type RawData } from 'ws';
import type { ClientConn } from './client-conn.ts';
import type { Command, RequestError } from './protocol.ts';
import type { Sessions } from './sessions.ts';

/** The gateway's WebSocket class (WebSocketServer's `WebSocket` option): one more field, its session. */
export class SessionSocket extends WebSocket {
  conn: ClientConn | undefined;
}

/** Closes a socket that failed (shared by every socket: it holds nothing). */
export function destroyOnError(this: Socket): void {
  this.destroy();
}

// ws calls listeners with `this` typed as its own class; the gateway's server makes SessionSockets.
const connOf = (ws: WebSocket): ClientConn => (ws as SessionSocket).conn!;

export interface WsBinder {
  /** Routes ws's and the socket's events to c's session. */
  bind(ws: SessionSocket, socket: Socket, c: ClientConn): void;
}

export function wsBinder(o: {
  sessions: Sessions;
  /** A message turned into a request, parsed only once the rate limit let it through. */
  request(c: ClientConn, data: RawData, isBinary: boolean): () => Command | RequestError;
  onSocketError(c: ClientConn, err: Error): void;
}): WsBinder {
  const { sessions } = o;
  const bySocket = new WeakMap<Socket, ClientConn>();
  function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
    const c = connOf(this);
    sessions.receive(c, o.request(c, data, isBinary));
  }
  // Ping frames, and pongs nobody asked for, count against the inbound message limit as on Binance;
  // the answers to our own heartbeats do not (pingIntervalMs may be short).
  function onPong(this: WebSocket): void {
    const c = connOf(this);
    if (!c.awaitingPong) sessions.controlFrame(c);
    sessions.heartbeatAnswered(c);
  }
  function onPing(this: WebSocket): void {
    sessions.controlFrame(connOf(this));
  }
  function onError(this: WebSocket, err: Error): void {
    o.onSocketError(connOf(this), err);
  }
  function onWsClose(this: WebSocket): void {
    connOf(this).markClosed();
  }
  function onSocketEnd(this: Socket): void {
    bySocket.get(this)?.markClosed();
  }
  return {
    bind(ws, socket, c) {
      ws.conn = c;
      bySocket.set(socket, c);
      ws.on('message', onMessage);
      ws.on('pong', onPong);
      ws.on('ping', onPing);
      ws.on('error', onError);
      // Unbind on the first sign of the end, before anything else tries to write
      // (markClosed is idempotent: later events of the same end do nothing).
      socket.on('end', onSocketEnd);
      socket.on('close', onSocketEnd);
      ws.on('close', onWsClose);
    },
  };
}
