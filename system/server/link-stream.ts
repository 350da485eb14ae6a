// One gateway's Attach stream as the server sees it: the topics bound to it
// and the events waiting for the next write. Writes are batched (one
// LinkBatch per stream per fan-out slice); a gateway that stops reading is
// cut off past a byte cap and told to resync, never allowed to grow memory
// without bound or slow other streams.
import type { LinkNotice } from '../../proto/gen/internal_pb.js';
import { create } from '@bufbuild/protobuf';
import { LinkNoticeSchema } from '../../proto/gen/internal_pb.js';
import { encodeLinkBatch } from '../common/link-codec.ts';
import type { AttachCall } from '../common/link-service.ts';

export class LinkStream {
  readonly call: AttachCall;
  readonly topics = new Set<string>();
  gatewayId = '';
  closed = false;
  #pending: Uint8Array[] = [];
  #notices: LinkNotice[] = [];
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

  enqueue(bytes: Uint8Array): void {
    if (this.closed) return;
    if (this.#pendingBytes + bytes.length > this.#capBytes) return this.#overflow();
    if (this.#pending.length === 0 && this.#notices.length === 0) this.#onDirty(this);
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
  }

  notice(topic: string, kind: string, detail = ''): void {
    if (this.closed) return;
    if (this.#pending.length === 0 && this.#notices.length === 0) this.#onDirty(this);
    this.#notices.push(create(LinkNoticeSchema, { topic, kind, detail }));
  }

  /** The gateway stopped reading: drop what is queued and ask it to resync every topic of this stream. */
  #overflow(): void {
    this.overflows++;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#notices = [];
    for (const t of this.topics) this.#notices.push(create(LinkNoticeSchema, { topic: t, kind: 'resync', detail: 'server queue for this gateway stream overflowed' }));
    this.#onDirty(this);
  }

  /** Writes what is queued as one LinkBatch, unless the stream is still draining. */
  flush(): void {
    if (this.closed || this.#waitingDrain) return;
    if (this.#pending.length === 0 && this.#notices.length === 0) return;
    const batch = encodeLinkBatch(this.#pending, this.#notices);
    this.eventsOut += this.#pending.length;
    this.#pending = [];
    this.#notices = [];
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
