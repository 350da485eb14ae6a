// GET /admin/tap: streams the gateway's client session events as NDJSON —
// connect (streams, format), subscribe, unsubscribe, close — with wall-clock
// times, for `pushctl record`. No payloads, no tokens, no addresses. A tap
// reader that falls behind is cut off: the tap never slows the gateway.
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface TapEvent {
  ev: 'connect' | 'subscribe' | 'unsubscribe' | 'close';
  /** Session id, unique per gateway process. */
  s: string;
  streams?: string[];
  format?: 'json' | 'protobuf' | 'tcp' | 'grpc';
}

const MAX_BUFFERED = 1024 * 1024;

export class SessionTap {
  readonly #readers = new Set<ServerResponse>();
  readonly #source: string;
  dropped = 0;

  constructor(source: string) {
    this.#source = source;
  }

  get active(): boolean {
    return this.#readers.size > 0;
  }

  emit(e: TapEvent): void {
    if (!this.#readers.size) return;
    const line = JSON.stringify({ at: Date.now(), ...e }) + '\n';
    for (const res of this.#readers) {
      if (res.writableLength > MAX_BUFFERED) {
        this.dropped++;
        this.#readers.delete(res);
        res.destroy();
        continue;
      }
      res.write(line);
    }
  }

  handle = (req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    res.write(JSON.stringify({ tap: 1, source: this.#source, at: Date.now() }) + '\n');
    this.#readers.add(res);
    const off = () => this.#readers.delete(res);
    req.on('close', off);
    res.on('close', off);
  };

  stop(): void {
    for (const res of this.#readers) res.end();
    this.#readers.clear();
  }
}
