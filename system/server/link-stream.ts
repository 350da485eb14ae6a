// One gateway's Attach stream as the server sees it: the topics bound to it
// and the events waiting for the next write. Writes are batched (one
// LinkBatch per stream per fan-out slice); a gateway that stops reading is
// cut off past a byte cap and told to resync, never allowed to grow memory
// without bound or slow other streams.
import { create } from '@bufbuild/protobuf';
import { LinkNoticeSchema } from '../../proto/gen/internal_pb.js';
import { encodeLinkItems, type LinkItem } from '../common/link-codec.ts';
import type { AttachCall } from '../common/link-service.ts';

export class LinkStream {
  readonly call: AttachCall;
  readonly topics = new Set<string>();
  gatewayId = '';
  closed = false;
  /** Events and notices in the order they happened: a notice sits exactly where it applies. */
  #pending: LinkItem[] = [];
  #pendingEvents = 0;
  #pendingBytes = 0;
  #waitingDrain = false;
  #capBytes: number;
  #onDirty: (s: LinkStream) => void;
  overflows = 0;
  eventsOut = 0;

  constructor(call: AttachCall, capBytes: number, onDirty: (s: LinkStream) => void) {
    this.call = call;
    this.#capBytes = capBytes;
    this.#onDirty = onDirty;
  }

  /** Bytes waiting for this gateway: queued here plus what the stream has not handed to the socket yet. */
  get queuedBytes(): number {
    return this.#pendingBytes + (this.call.writableLength ?? 0);
  }

  enqueue(bytes: Uint8Array): void {
    if (this.closed) return;
    if (this.#pendingBytes + bytes.length > this.#capBytes) return this.#overflow();
    if (this.#pending.length === 0) this.#onDirty(this);
    this.#pending.push(bytes);
    this.#pendingEvents++;
    this.#pendingBytes += bytes.length;
  }

  notice(topic: string, kind: string, detail = ''): void {
    if (this.closed) return;
    if (this.#pending.length === 0) this.#onDirty(this);
    this.#pending.push(create(LinkNoticeSchema, { topic, kind, detail }));
  }

  /** The gateway stopped reading: drop what is queued and ask it to resync every topic of this stream. */
  #overflow(): void {
    this.overflows++;
    this.#pending = [];
    this.#pendingEvents = 0;
    this.#pendingBytes = 0;
    for (const t of this.topics) this.#pending.push(create(LinkNoticeSchema, { topic: t, kind: 'resync', detail: 'server queue for this gateway stream overflowed' }));
    this.#onDirty(this);
  }

  /** Writes what is queued as one LinkBatch, unless the stream is still draining. */
  flush(): void {
    if (this.closed || this.#waitingDrain) return;
    if (this.#pending.length === 0) return;
    const batch = encodeLinkItems(this.#pending);
    this.eventsOut += this.#pendingEvents;
    this.#pending = [];
    this.#pendingEvents = 0;
    this.#pendingBytes = 0;
    if (!this.call.write(batch)) {
      this.#waitingDrain = true;
      this.call.once('drain', () => {
        this.#waitingDrain = false;
        this.#onDirty(this);
      });
    }
  }
}
