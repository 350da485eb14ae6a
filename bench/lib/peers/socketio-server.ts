// The Socket.IO 4 peer: one server process with rooms (one per
// `<sym>@trade` topic), the Redis adapter so a separate publisher process
// (publisher.ts, @socket.io/redis-emitter) reaches its rooms. A client emits
// `subscribe` with its topics and joins those rooms. WebSocket transport
// only, no compression, no polling: the options users pick for a push feed.
import { createServer } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { guardChild, reply, type IpcMessage } from '../child.ts';

export interface SocketIoServerOptions {
  redisUrl: string;
  maxMs: number;
}

export const SOCKET_IO_SERVER_OPTIONS = {
  transports: ['websocket'],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
  pingInterval: 25_000,
  pingTimeout: 20_000,
} as const;

// The heap figure needs a full GC on demand; this process is a benchmark peer, not a role.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

function main(): void {
  const o = JSON.parse(process.argv[2] ?? '{}') as SocketIoServerOptions;
  const pub = new Redis(o.redisUrl);
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on('error', () => {});
  const http = createServer((_req, res) => res.writeHead(404).end());
  const io = new Server(http, { ...SOCKET_IO_SERVER_OPTIONS, transports: [...SOCKET_IO_SERVER_OPTIONS.transports], adapter: createAdapter(pub, sub) });
  io.on('connection', (socket) => {
    socket.on('subscribe', (topics: unknown) => {
      if (Array.isArray(topics)) void socket.join(topics.filter((t): t is string => typeof t === 'string').slice(0, 1024));
    });
  });
  process.on('message', (m: IpcMessage) => {
    if (m.type === 'mem') {
      // Live heap only: collect garbage first, or before/after differ by whatever was not yet collected.
      collectGarbage();
      const u = process.memoryUsage();
      reply(m, { type: 'mem', rss: u.rss, heapUsed: u.heapUsed, connections: io.engine.clientsCount });
    }
  });
  guardChild(o.maxMs, () => {
    void io.close();
    pub.disconnect();
    sub.disconnect();
  });
  http.listen(0, '127.0.0.1', () => {
    process.send?.({ type: 'ready', port: (http.address() as { port: number }).port });
  });
}

main();
