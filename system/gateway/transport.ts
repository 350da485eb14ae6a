// How bytes reach one client, whatever the protocol. The subscription core
// (TopicHub, ClientConn) only sees this interface, so WebSocket, raw TCP and
// gRPC streams share one implementation of queues, conflation, resync and
// heartbeats.
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import type WebSocket from 'ws';

export interface ClientTransport {
  readonly remote: string;
  /** Bytes accepted but not yet handed to the peer (the transport's own buffer). */
  readonly writableLength: number;
  /** True after a write found the buffer over its high-water mark: 'drain' will follow. */
  readonly writableNeedDrain: boolean;
  readonly writable: boolean;
  write(chunk: Buffer): void;
  onceDrain(cb: () => void): void;
  /** Liveness probe (WebSocket ping, or a heartbeat frame for protocols without one). */
  ping(): void;
  /** Orderly close with a reason the client can read. */
  close(code: number, reason: string): void;
  /** Cut at once. */
  terminate(): void;
}

export class WsTransport implements ClientTransport {
  readonly ws: WebSocket;
  readonly socket: Socket;
  #remote: string | undefined;

  constructor(ws: WebSocket, socket: Socket) {
    this.ws = ws;
    this.socket = socket;
  }
  /** Built when first asked for (a log line about this client): ~150 bytes an idle connection need not hold. */
  get remote(): string {
    return (this.#remote ??= `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? '?'}`);
  }
  get writableLength(): number {
    return this.socket.writableLength;
  }
  get writableNeedDrain(): boolean {
    return this.socket.writableNeedDrain;
  }
  get writable(): boolean {
    return !this.socket.destroyed && this.socket.writable;
  }
  // Frames are pre-built WebSocket frames: written to the socket directly, bypassing ws's sender.
  write(chunk: Buffer): void {
    this.socket.write(chunk);
  }
  onceDrain(cb: () => void): void {
    this.socket.once('drain', cb);
  }
  ping(): void {
    this.ws.ping();
  }
  close(code: number, reason: string): void {
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.terminate();
    }
  }
  terminate(): void {
    this.ws.terminate();
  }
}

/**
 * A byte stream whose frames carry their own framing (length-prefixed TCP,
 * or a gRPC call whose messages are pre-encoded). Closing sends a last frame
 * built by `closeFrame` (an error naming the reason), then ends the stream.
 */
export class StreamTransport implements ClientTransport {
  readonly stream: Writable;
  readonly remote: string;
  #heartbeat: () => Buffer;
  #closeFrame: (code: number, reason: string) => Buffer | undefined;
  #end: (code: number, reason: string) => void;
  #destroy: () => void;

  constructor(o: {
    stream: Writable;
    remote: string;
    heartbeat: () => Buffer;
    closeFrame: (code: number, reason: string) => Buffer | undefined;
    end: (code: number, reason: string) => void;
    destroy: () => void;
  }) {
    this.stream = o.stream;
    this.remote = o.remote;
    this.#heartbeat = o.heartbeat;
    this.#closeFrame = o.closeFrame;
    this.#end = o.end;
    this.#destroy = o.destroy;
  }
  get writableLength(): number {
    return this.stream.writableLength;
  }
  get writableNeedDrain(): boolean {
    return this.stream.writableNeedDrain;
  }
  get writable(): boolean {
    return !this.stream.destroyed && this.stream.writable;
  }
  write(chunk: Buffer): void {
    this.stream.write(chunk);
  }
  onceDrain(cb: () => void): void {
    this.stream.once('drain', cb);
  }
  ping(): void {
    if (this.writable) this.stream.write(this.#heartbeat());
  }
  close(code: number, reason: string): void {
    const last = this.#closeFrame(code, reason);
    if (last && this.writable) this.stream.write(last);
    this.#end(code, reason);
  }
  terminate(): void {
    this.#destroy();
  }
}
