// Protobuf over raw TCP for internal quant clients: each ClientFrame and
// ServerFrame is preceded by its length as a 4-byte big-endian integer. Same
// sessions, semantics and heartbeats as the WebSocket API; a heartbeat frame
// must be answered with a Ping within the idle timeout.
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { TLS_HANDSHAKE_TIMEOUT_MS, type TlsMaterial } from '../common/tls.ts';
import { create, toBinary } from '@bufbuild/protobuf';
import { ServerFrameSchema } from '../../proto/gen/client_pb.js';
import { wrapServerFrame } from './codec.ts';
import { parseProtobufRequest } from './protocol.ts';
import type { Sessions } from './sessions.ts';
import { StreamTransport } from './transport.ts';
import type { ClientConn } from './client-conn.ts';
import { helloDeadline } from './socket-timeouts.ts';

export function tcpFrame(kind: Parameters<typeof create<typeof ServerFrameSchema>>[1]): Buffer {
  return wrapServerFrame('tcp', toBinary(ServerFrameSchema, create(ServerFrameSchema, kind)));
}

const errorFrame = (code: number, msg: string) => tcpFrame({ kind: { case: 'error', value: { id: 0n, code, msg } } });

export interface TcpApi {
  server: Server;
  /** Stops listening and cuts every connection still open (clients were told first by Sessions.closeAll). */
  close(): Promise<void>;
}

export function createTcpApi(o: {
  sessions: Sessions;
  maxFrameBytes: number;
  isDraining: () => boolean;
  onError: (err: Error) => void;
  /** Same framing inside TLS: a client connects with tls.connect instead of net.connect. */
  tls?: TlsMaterial | undefined;
  /** A connection whose first complete frame has not arrived by then is cut (0: never). */
  helloTimeoutMs?: number;
  onHelloTimeout?: () => void;
}): TcpApi {
  const sockets = new Set<Socket>();
  const onConnection = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.setNoDelay(true);
    socket.on('error', (err) => o.onError(err));
    const refused = o.isDraining() ? 'gateway draining: ask the router for another gateway' : o.sessions.admit();
    if (refused) {
      socket.end(errorFrame(503, refused));
      return;
    }
    const transport = new StreamTransport({
      stream: socket,
      remote: `${socket.remoteAddress}:${socket.remotePort}`,
      heartbeat: () => tcpFrame({ kind: { case: 'heartbeat', value: { serverTimeUs: BigInt(Date.now() * 1000) } } }),
      // The close code travels as the error code of a last frame, then the socket ends.
      closeFrame: (code, reason) => errorFrame(code, reason),
      end: () => socket.end(),
      destroy: () => socket.destroy(),
    });
    const c: ClientConn = o.sessions.open(transport, 'tcp');
    // A silent peer (or one sending a byte at a time) would otherwise hold the socket until the idle timeout.
    const hello = helloDeadline(socket, o.helloTimeoutMs ?? 0, () => {
      o.onHelloTimeout?.();
      c.markClosed();
    });
    let buf: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 4) {
        const len = buf.readUInt32BE(0);
        if (len > o.maxFrameBytes) {
          // As WebSocket's 1009: the frame is refused and the connection closed, nothing else affected.
          c.close(1009, `frame of ${len} bytes exceeds the maximum of ${o.maxFrameBytes}`);
          socket.destroySoon();
          buf = Buffer.alloc(0);
          return;
        }
        if (buf.length < 4 + len) break;
        const frame = buf.subarray(4, 4 + len);
        buf = buf.subarray(4 + len);
        hello();
        o.sessions.receive(c, () => parseProtobufRequest(frame));
      }
    });
    socket.once('end', () => c.markClosed());
    socket.once('close', () => c.markClosed());
  };
  const server: Server = o.tls
    ? createTlsServer({ cert: o.tls.cert, key: o.tls.key, handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS }, onConnection)
    : createServer(onConnection);
  // A failed handshake (wrong CA, plain text on the TLS port) is the client's problem: counted, never fatal.
  server.on('tlsClientError', (err: Error) => o.onError(err));
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
