// A peer's separate publisher process: paced trades (trade-source.ts) handed
// to the peer the way its users publish. Socket.IO: @socket.io/redis-emitter
// through Redis to the server's rooms. nchan: an HTTP POST per message to
// /pub/<channel> over keep-alive connections. The parent sets the rate over
// IPC ('rate'); 'stats' reports what was published and what failed.
import { Agent, request } from 'node:http';
import { Redis } from 'ioredis';
import { Emitter } from '@socket.io/redis-emitter';
import { guardChild, reply, type IpcMessage } from '../child.ts';
import { nowUs } from '../clock.ts';
import { TradeSource, type DueTrade } from './trade-source.ts';
import { nchanPublishUrl } from './nchan-config.ts';

export interface PublisherOptions {
  kind: 'socketio' | 'nchan';
  symbols: string[];
  /** Socket.IO: redis://host:port. nchan: http://host:port. */
  target: string;
  maxMs: number;
}

type Sink = { send(t: DueTrade): void; close(): Promise<void> };

let failures = 0;
let lastError = '';
const failed = (why: string) => {
  failures++;
  lastError = why;
};

function socketIoSink(redisUrl: string): Sink {
  const redis = new Redis(redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 });
  redis.on('error', (e: Error) => failed(e.message));
  const emitter = new Emitter(redis);
  return {
    send: (t) => emitter.to(t.topic).emit('trade', JSON.parse(t.json) as object),
    close: async () => void (await redis.quit().catch(() => redis.disconnect())),
  };
}

function nchanSink(base: string): Sink {
  // Bounded in-flight POSTs; a message that finds no socket waits in the agent's queue.
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  return {
    send: (t) => {
      const req = request(nchanPublishUrl(base, t.topic), { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(t.json) } }, (res) => {
        if ((res.statusCode ?? 0) >= 300) failed(`HTTP ${res.statusCode}`);
        res.resume();
      });
      req.on('error', (e) => failed(e.message));
      req.end(t.json);
    },
    close: async () => agent.destroy(),
  };
}

function main(): void {
  const o = JSON.parse(process.argv[2] ?? '{}') as PublisherOptions;
  const source = new TradeSource(o.symbols);
  const sink = o.kind === 'socketio' ? socketIoSink(o.target) : nchanSink(o.target);
  let published = 0;
  let timer: NodeJS.Timeout | undefined;

  const tick = () => {
    timer = undefined;
    const { trades, nextUs } = source.due();
    for (const t of trades) sink.send(t);
    published += trades.length;
    if (nextUs !== Infinity) timer = setTimeout(tick, Math.max(1, Math.ceil((nextUs - nowUs()) / 1000)));
  };

  process.on('message', (m: IpcMessage) => {
    if (m.type === 'rate') {
      if (timer) clearTimeout(timer);
      timer = undefined;
      source.setRate(Number(m.rate ?? 0));
      if (Number(m.rate) > 0) timer = setTimeout(tick, 1);
      reply(m, { type: 'rate-set' });
    } else if (m.type === 'stats') {
      reply(m, { type: 'stats', published, failures, lastError });
    }
  });
  guardChild(o.maxMs, () => {
    if (timer) clearTimeout(timer);
    void sink.close();
  });
  process.send?.({ type: 'ready' });
}

main();
