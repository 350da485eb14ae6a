// LinkBatch is the hot message between push-server and push-gateway: a list
// of already-encoded Events. Writing it by hand frames the event bytes as
// they are (tag, length, bytes) with one copy, instead of building message
// objects for the generic encoder.
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { LinkNoticeSchema, type LinkNotice } from '../../proto/gen/internal_pb.js';

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** Field 1 (length-delimited) around bytes: an Event inside a ServerFrame or a LinkBatch. */
export function frameField1(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + varintSize(bytes.length) + bytes.length);
  out[0] = 0x0a;
  out.set(bytes, writeVarint(out, 1, bytes.length));
  return out;
}

/** What a LinkBatch carries, in order: an encoded Event, or a notice about one topic. */
export type LinkItem = Uint8Array | LinkNotice;

/**
 * Events and notices in the order they were queued (fields 1 and 2
 * interleaved), so a notice about a topic lands exactly between the events
 * before and after it.
 */
export function encodeLinkItems(items: readonly LinkItem[]): Uint8Array {
  let size = 0;
  const encoded: (Uint8Array | undefined)[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    const bytes = it instanceof Uint8Array ? it : (encoded[i] = toBinary(LinkNoticeSchema, it));
    size += 1 + varintSize(bytes.length) + bytes.length;
  }
  const out = new Uint8Array(size);
  let pos = 0;
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    const bytes = it instanceof Uint8Array ? it : encoded[i]!;
    out[pos++] = it instanceof Uint8Array ? 0x0a : 0x12;
    pos = writeVarint(out, pos, bytes.length);
    out.set(bytes, pos);
    pos += bytes.length;
  }
  return out;
}

export function encodeLinkBatch(events: readonly Uint8Array[], notices: LinkNotice[] = []): Uint8Array {
  return encodeLinkItems(notices.length ? [...events, ...notices] : events);
}

/** Decodes a LinkBatch in order; event bytes are views into buf (no copy). */
export function decodeLinkItems(buf: Uint8Array): LinkItem[] {
  const items: LinkItem[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const key = buf[pos++]!;
    if (key !== 0x0a && key !== 0x12) throw new Error(`unexpected field key ${key} in LinkBatch`);
    let len = 0;
    let mul = 1;
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated LinkBatch');
      const b = buf[pos++]!;
      len += (b & 0x7f) * mul;
      if (b < 0x80) break;
      mul *= 128;
    }
    if (pos + len > buf.length) throw new Error(`truncated ${key === 0x0a ? 'event' : 'notice'} in LinkBatch`);
    const bytes = buf.subarray(pos, pos + len);
    items.push(key === 0x0a ? bytes : fromBinary(LinkNoticeSchema, bytes));
    pos += len;
  }
  return items;
}

/** Decodes a LinkBatch into its events and its notices (order between the two lists is lost). */
export function decodeLinkBatch(buf: Uint8Array): { events: Uint8Array[]; notices: LinkNotice[] } {
  const events: Uint8Array[] = [];
  const notices: LinkNotice[] = [];
  for (const it of decodeLinkItems(buf)) {
    if (it instanceof Uint8Array) events.push(it);
    else notices.push(it);
  }
  return { events, notices };
}
