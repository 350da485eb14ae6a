// A replayed session's connection over the gateway's protobuf-over-TCP API
// (4-byte big-endian length before each ClientFrame / ServerFrame), shaped
// like the subset of a `ws` WebSocket that ReplaySession uses: 'open' once
// the gateway answered the initial subscribe, 'message' per ServerFrame,
// 'refused' for an admission refusal (error 503 before anything else),
// 'close' with the code of the gateway's last error frame. Heartbeats are
// answered with a Ping, as the protocol requires.
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ClientFrameSchema, ServerFrameSchema } from '../../../proto/gen/client_pb.js';

const HEARTBEAT_TAG = 0x32; // ServerFrame.heartbeat, field 6
const ERROR_TAG = 0x1a; // ServerFrame.error, field 3

export const OPEN = 1;

export function frameClient(kind: 'subscribe' | 'unsubscribe' | 'ping', id: number, topics: string[] = []): Buffer {
  const body = toBinary(
    ClientFrameSchema,
    create(ClientFrameSchema, {
      id: BigInt(id),
      kind: kind === 'ping' ? { case: 'ping', value: { clientTimeUs: BigInt(Date.now() * 1000) } } : { case: kind, value: { topics } },
    }),
  );
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

export class TcpConn extends EventEmitter {
  readyState = 0;
  #socket: Socket;
  #buf: Buffer = Buffer.alloc(0);
  #closeCode = 1006;
  #gotFrame = false;

  constructor(hostPort: string, initialTopics: string[], timeoutMs = 10_000) {
    super();
    const url = new URL(hostPort.includes('://') ? hostPort : `tcp://${hostPort}`);
    this.#socket = connect({ host: url.hostname, port: Number(url.port), noDelay: true, timeout: timeoutMs });
    this.#socket.once('connect', () => {
      this.#socket.setTimeout(0);
      if (initialTopics.length) this.#socket.write(frameClient('subscribe', 0, initialTopics));
      else this.#open();
    });
    this.#socket.once('timeout', () => this.#socket.destroy(new Error('connect timeout')));
    this.#socket.on('error', (err) => {
      if (this.readyState !== OPEN) this.emit('error', err);
    });
    this.#socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#socket.once('close', () => {
      const wasOpen = this.readyState === OPEN;
      this.readyState = 3;
      if (wasOpen) this.emit('close', this.#closeCode);
      else if (!this.listenerCount('refused') || this.#gotFrame) this.emit('error', new Error('connection closed before the first reply'));
    });
  }

  #open(): void {
    if (this.readyState === OPEN) return;
    this.readyState = OPEN;
    this.emit('open');
  }

  #onData(chunk: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    while (this.#buf.length >= 4) {
      const len = this.#buf.readUInt32BE(0);
      if (this.#buf.length < 4 + len) return;
      const frame = this.#buf.subarray(4, 4 + len);
      this.#buf = this.#buf.subarray(4 + len);
      this.#onFrame(frame);
    }
  }

  #onFrame(frame: Buffer): void {
    if (frame[0] === HEARTBEAT_TAG) {
      this.#socket.write(frameClient('ping', 0));
      return;
    }
    if (frame[0] === ERROR_TAG) {
      // Close codes (≥1000) and admission refusals travel as a last error frame.
      try {
        const f = fromBinary(ServerFrameSchema, frame);
        if (f.kind.case === 'error' && (f.kind.value.code >= 1000 || f.kind.value.code === 503)) {
          if (this.readyState !== OPEN && f.kind.value.code === 503) {
            this.#gotFrame = true;
            this.emit('refused', 503);
            this.#socket.destroy();
            return;
          }
          this.#closeCode = f.kind.value.code;
          return;
        }
      } catch {
        // passed on as a frame
      }
    }
    this.#gotFrame = true;
    this.#open();
    this.emit('message', frame, true);
  }

  send(data: Uint8Array): void {
    this.#socket.write(data);
  }

  close(): void {
    this.readyState = 2;
    this.#socket.end();
  }

  terminate(): void {
    this.readyState = 3;
    this.#socket.destroy();
  }
}
