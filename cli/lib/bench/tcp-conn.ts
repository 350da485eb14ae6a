// A replayed session's connection over the gateway's protobuf-over-TCP API
// (4-byte big-endian length before each ClientFrame / ServerFrame), shaped
// like the subset of a `ws` WebSocket that ReplaySession uses (a BenchConn):
// 'open' once the gateway answered the initial subscribe, 'message' per
// ServerFrame, 'refused' for an admission refusal (error 503 before anything
// else), 'close' with the code of the gateway's last error frame. Heartbeats
// are answered with a Ping, as the protocol requires, and reported
// ('heartbeat') for the session's liveness watchdog. A gateway that accepts
// the connection but never answers the initial subscribe is an error after
// the timeout, like a connect that never completes.
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { HEARTBEAT_TAG, clientFrame, closeCodeOf, type ClientRequest } from './proto-frames.ts';

export const OPEN = 1;

/** A ClientFrame with its length prefix. */
export function frameClient(kind: ClientRequest, id: number, topics: string[] = []): Buffer {
  const body = clientFrame(kind, id, topics);
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
    // tls://host:port: the gateway's TCP port in TLS (it advertises that scheme when it has a certificate).
    const secure = url.protocol === 'tls:';
    const where = { host: url.hostname, port: Number(url.port), noDelay: true, timeout: timeoutMs };
    this.#socket = secure ? connectTls(where) : connect(where);
    // The idle timeout stays on until the gateway's first reply (open).
    this.#socket.once(secure ? 'secureConnect' : 'connect', () => {
      if (initialTopics.length) this.#socket.write(frameClient('subscribe', 0, initialTopics));
      else this.#open();
    });
    this.#socket.once('timeout', () => this.#socket.destroy(new Error(this.#socket.connecting ? 'connect timeout' : 'no answer to the initial subscribe')));
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
    this.#socket.setTimeout(0);
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
      this.emit('heartbeat');
      return;
    }
    // Close codes (≥1000) and admission refusals travel as a last error frame.
    const code = closeCodeOf(frame);
    if (code !== undefined) {
      if (this.readyState !== OPEN && code === 503) {
        this.#gotFrame = true;
        this.emit('refused', 503);
        this.#socket.destroy();
        return;
      }
      this.#closeCode = code;
      return;
    }
    this.#gotFrame = true;
    this.#open();
    this.emit('message', frame, true);
  }

  request(kind: 'subscribe' | 'unsubscribe', id: number, topics: string[]): void {
    this.#socket.write(frameClient(kind, id, topics));
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
