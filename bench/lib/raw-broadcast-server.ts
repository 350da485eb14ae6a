// Baseline (a): a plain `ws` server with no cluster behind it. Per symbol
// and tick it builds one trade message shaped like the gateway's (same
// fields, similar size), frames it once with Sender.frame, and writes the
// same Buffer to every subscriber, each socket corked for the whole tick.
// It sends as fast as the clients keep up. Node's writableLength does not
// see the kernel's socket buffers (megabytes per loopback socket), so the
// clients grant credit instead: one tiny frame per ackEvery messages, and a
// socket with more than `window` unacknowledged messages (or highWaterBytes
// queued in Node) is skipped that tick. When most sockets are skipped the
// loop paces itself instead of spinning.
// Paced mode ('start' with a rate): the same server emits each symbol's trades
// at evenly spaced intended times (pt = that time, as the feed stamps it), so
// its latency at a given rate is the floor a pipeline at that rate compares to.
// Mix mode (`mix` in the options, bench:fanout --mix): instead of trades it
// plays a tape of the pipeline's own frames for the subscribed streams
// (mix-tape.ts), in tape order when saturated, at the tape's times when paced.
import { createServer, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import * as wsModule from 'ws';
import { WebSocketServer } from 'ws';
import { create, toBinary } from '@bufbuild/protobuf';
import { EventSchema } from '../../proto/gen/market_pb.js';
import { frameField1 } from '../../system/common/link-codec.ts';
import { guardChild, reply, type IpcMessage } from './child.ts';
import { nowUs } from './clock.ts';
import { recordTape, stampPayload, type TapeOptions } from './mix-tape.ts';
import { topicOfStreamName } from '../../system/common/topics.ts';

interface FrameOptions { fin: boolean; rsv1: boolean; opcode: number; mask: boolean; readOnly: boolean }
// ws exports Sender as an ESM named export; @types/ws does not declare it.
const Sender = (wsModule as unknown as { Sender: { frame(data: Buffer, o: FrameOptions): Buffer[] } }).Sender;

export interface RawServerOptions {
  symbols: string[];
  format: 'json' | 'protobuf';
  maxMs: number;
  highWaterBytes: number;
  /** Clients acknowledge every ackEvery messages; at most `window` may be unacknowledged. */
  ackEvery: number;
  window: number;
  /** Mix mode: the tape to record (symbols come from the top-level option). */
  mix?: Omit<TapeOptions, 'symbols' | 'format'>;
}

export interface RawStopReply extends IpcMessage {
  type: 'stopped';
  ticks: number;
  frames: number;
  writes: number;
  skipped: number;
  acks: number;
  connections: number;
  frameBytes: number;
}

function frame(payload: Buffer, binary: boolean): Buffer {
  const parts = Sender.frame(payload, { fin: true, rsv1: false, opcode: binary ? 2 : 1, mask: false, readOnly: true });
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

interface SymbolState {
  symbol: string;
  upper: string;
  topic: string;
  seq: number;
  tradeId: number;
  priceCents: number;
  subscribers: Peer[];
}

interface Peer {
  socket: Socket;
  sent: number;
  acked: number;
}

function main(): void {
  const o = JSON.parse(process.argv[2] ?? '{}') as RawServerOptions;
  const epoch = Date.now();
  const states = o.symbols.map((symbol, i): SymbolState => ({
    symbol, upper: symbol.toUpperCase(), topic: `${symbol}@trade`, seq: 0, tradeId: 0,
    priceCents: 100_000 + i * 3_217, subscribers: [],
  }));
  const bySymbol = new Map(states.map((s) => [s.symbol, s]));
  // Mix mode: the tape, built before 'ready', and one subscriber list per taped topic.
  const tape = o.mix ? recordTape({ ...o.mix, symbols: o.symbols, format: o.format }) : undefined;
  const tapeSubs = new Map<string, { subscribers: Peer[] }>();
  for (const e of tape?.entries ?? []) if (!tapeSubs.has(e.topic)) tapeSubs.set(e.topic, { subscribers: [] });
  const tapeLists = tape?.entries.map((e) => tapeSubs.get(e.topic)!) ?? [];
  const sockets = new Set<Socket>();
  let acks = 0;

  /** One trade of a symbol, encoded like the gateway encodes it, stamped with pt (default now). */
  const nextFrame = (s: SymbolState, pt = nowUs()): Buffer => {
    s.seq++;
    s.tradeId++;
    s.priceCents += Math.random() < 0.5 ? -1 : 1;
    const ms = Math.floor(pt / 1000);
    const price = `${Math.floor(s.priceCents / 100)}.${String(s.priceCents % 100).padStart(2, '0')}`;
    const qty = `0.${String(100 + (s.tradeId % 900)).padStart(5, '0')}`;
    const maker = (s.tradeId & 1) === 1;
    if (o.format === 'protobuf') {
      const ev = create(EventSchema, {
        topic: s.topic, seq: BigInt(s.seq), epoch: BigInt(epoch), publishTimeUs: BigInt(pt),
        payload: { case: 'trade', value: { symbol: s.upper, tradeId: BigInt(s.tradeId), price, qty, tradeTime: BigInt(ms), buyerIsMaker: maker } },
      });
      const bytes = frameField1(toBinary(EventSchema, ev));
      return frame(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), true);
    }
    // Field order and names as system/gateway/codec.ts writes a combined trade event.
    const json =
      `{"stream":"${s.topic}","data":{"e":"trade","E":${ms},"s":"${s.upper}","t":${s.tradeId},"p":"${price}","q":"${qty}",` +
      `"T":${ms},"m":${maker},"M":true,"seq":${s.seq},"ep":${epoch},"pt":${pt}}}`;
    return frame(Buffer.from(json), false);
  };

  const http = createServer((_req, res) => {
    res.writeHead(404).end();
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
  http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://raw');
    const streams = (url.searchParams.get('streams') ?? '').split('/').filter(Boolean);
    const subs: Array<{ subscribers: Peer[] }> = [];
    for (const t of streams) {
      if (tape) {
        const list = tapeSubs.get(topicOfStreamName(t));
        if (!list) {
          socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
          return;
        }
        subs.push(list);
        continue;
      }
      const s = bySymbol.get(t.slice(0, t.indexOf('@')));
      if (!s || !t.endsWith('@trade')) {
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
        return;
      }
      subs.push(s);
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      socket.setNoDelay(true);
      sockets.add(socket);
      const peer: Peer = { socket, sent: 0, acked: 0 };
      for (const s of subs) s.subscribers.push(peer);
      ws.on('message', () => {
        peer.acked += o.ackEvery;
        acks++;
      });
      ws.on('error', () => {});
      ws.on('close', () => {
        sockets.delete(socket);
        for (const s of subs) s.subscribers = s.subscribers.filter((x) => x !== peer);
      });
    });
  });

  let running = false;
  let ticks = 0;
  let frames = 0;
  let writes = 0;
  let skipped = 0;
  let frameBytes = 0;
  let timer: NodeJS.Timeout | NodeJS.Immediate | undefined;

  const tick = () => {
    timer = undefined;
    if (!running) return;
    ticks++;
    let tickWrites = 0;
    let tickSkips = 0;
    for (const sock of sockets) sock.cork();
    for (const s of states) {
      if (s.subscribers.length === 0) continue;
      const f = nextFrame(s);
      frames++;
      frameBytes = f.length;
      for (const p of s.subscribers) {
        if (p.sent - p.acked >= o.window || p.socket.writableLength > o.highWaterBytes || !p.socket.writable) {
          tickSkips++;
          continue;
        }
        p.socket.write(f);
        p.sent++;
        tickWrites++;
      }
    }
    for (const sock of sockets) sock.uncork();
    writes += tickWrites;
    skipped += tickSkips;
    // Mostly backed up: give the clients a moment instead of building frames nobody takes.
    if (tickSkips > tickWrites) timer = setTimeout(tick, 1);
    else timer = setImmediate(tick);
  };

  // Paced: every due trade of every symbol goes out in the turn it falls due, one corked write per socket.
  let pacedIntervalUs = 0;
  const dueUs = new Map<SymbolState, number>();
  const pacedTick = () => {
    timer = undefined;
    if (!running) return;
    ticks++;
    const now = nowUs();
    let next = Infinity;
    let tickWrites = 0;
    let tickSkips = 0;
    for (const sock of sockets) sock.cork();
    for (const s of states) {
      if (s.subscribers.length === 0) continue;
      let due = dueUs.get(s)!;
      while (due <= now) {
        const f = nextFrame(s, due);
        frames++;
        frameBytes = f.length;
        for (const p of s.subscribers) {
          if (p.sent - p.acked >= o.window || !p.socket.writable) {
            tickSkips++;
            continue;
          }
          p.socket.write(f);
          p.sent++;
          tickWrites++;
        }
        due += pacedIntervalUs;
      }
      dueUs.set(s, due);
      if (due < next) next = due;
    }
    for (const sock of sockets) sock.uncork();
    writes += tickWrites;
    skipped += tickSkips;
    timer = setTimeout(pacedTick, Math.max(1, Math.ceil((next - nowUs()) / 1000)));
  };

  // Mix mode, saturated: the next entries of the tape (as many per turn as there are symbols), stamped now.
  let tapeAt = 0;
  const write = (list: { subscribers: Peer[] }, f: Buffer, highWater: boolean): [number, number] => {
    let w = 0;
    let k = 0;
    for (const p of list.subscribers) {
      if (p.sent - p.acked >= o.window || (highWater && p.socket.writableLength > o.highWaterBytes) || !p.socket.writable) {
        k++;
        continue;
      }
      p.socket.write(f);
      p.sent++;
      w++;
    }
    return [w, k];
  };
  const tapeTick = () => {
    timer = undefined;
    if (!running || !tape) return;
    ticks++;
    let tickWrites = 0;
    let tickSkips = 0;
    const now = nowUs();
    for (const sock of sockets) sock.cork();
    for (let n = 0; n < states.length; n++) {
      const i = tapeAt;
      tapeAt = (tapeAt + 1) % tape.entries.length;
      const list = tapeLists[i]!;
      if (list.subscribers.length === 0) continue;
      const f = frame(stampPayload(tape.entries[i]!, now), o.format === 'protobuf');
      frames++;
      frameBytes = f.length;
      const [w, k] = write(list, f, true);
      tickWrites += w;
      tickSkips += k;
    }
    for (const sock of sockets) sock.uncork();
    writes += tickWrites;
    skipped += tickSkips;
    if (tickSkips > tickWrites) timer = setTimeout(tapeTick, 1);
    else timer = setImmediate(tapeTick);
  };

  // Mix mode, paced: each entry at its tape time (looping), pt = that time.
  let tapeT0 = 0;
  let tapeLoop = 0;
  const tapePacedTick = () => {
    timer = undefined;
    if (!running || !tape) return;
    ticks++;
    const now = nowUs();
    let tickWrites = 0;
    let tickSkips = 0;
    for (const sock of sockets) sock.cork();
    // Bounded: at most one pass over the tape per turn.
    for (let n = 0; n < tape.entries.length; n++) {
      const e = tape.entries[tapeAt]!;
      const due = tapeT0 + tapeLoop * tape.lengthUs + e.offsetUs;
      if (due > now) break;
      const list = tapeLists[tapeAt]!;
      tapeAt++;
      if (tapeAt === tape.entries.length) {
        tapeAt = 0;
        tapeLoop++;
      }
      if (list.subscribers.length === 0) continue;
      const f = frame(stampPayload(e, Math.round(due)), o.format === 'protobuf');
      frames++;
      frameBytes = f.length;
      const [w, k] = write(list, f, false);
      tickWrites += w;
      tickSkips += k;
    }
    for (const sock of sockets) sock.uncork();
    writes += tickWrites;
    skipped += tickSkips;
    const next = tapeT0 + tapeLoop * tape.lengthUs + tape.entries[tapeAt]!.offsetUs;
    timer = setTimeout(tapePacedTick, Math.max(1, Math.ceil((next - nowUs()) / 1000)));
  };

  const stopLoop = () => {
    running = false;
    if (timer) {
      clearTimeout(timer as NodeJS.Timeout);
      clearImmediate(timer as NodeJS.Immediate);
    }
    timer = undefined;
  };

  process.on('message', (m: IpcMessage) => {
    if (m.type === 'start') {
      if (!running) {
        running = true;
        const rate = Number(m.rate ?? 0);
        if (tape && rate > 0) {
          // The tape was recorded at this rate: play it in real time.
          tapeT0 = nowUs();
          timer = setTimeout(tapePacedTick, 1);
        } else if (tape) timer = setImmediate(tapeTick);
        else if (rate > 0) {
          // Symbols' schedules are staggered over one interval, as the feed staggers them.
          pacedIntervalUs = 1e6 / rate;
          const t0 = nowUs();
          states.forEach((s, i) => dueUs.set(s, t0 + (pacedIntervalUs * i) / states.length));
          timer = setTimeout(pacedTick, 1);
        } else timer = setImmediate(tick);
      }
      reply(m, { type: 'started', connections: sockets.size });
    } else if (m.type === 'stop') {
      stopLoop();
      reply(m, { type: 'stopped', ticks, frames, writes, skipped, acks, connections: sockets.size, frameBytes } satisfies Omit<RawStopReply, 'id'>);
    }
  });
  guardChild(o.maxMs, () => {
    stopLoop();
    for (const s of sockets) s.destroy();
    http.close();
  });
  http.listen(0, '127.0.0.1', () => {
    const port = (http.address() as { port: number }).port;
    process.send?.({ type: 'ready', port });
  });
}

main();
