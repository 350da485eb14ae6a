// LinkBatch is the hot message between push-server and push-gateway: a list
// of already-encoded Events. Writing it by hand frames the event bytes as
// they are (tag, length, bytes) with one copy, instead of building message
// objects for the generic encoder.
import { fromBinary, toBinary, create } from '@bufbuild/protobuf';
import { LinkBatchSchema, type LinkNotice } from '../../proto/gen/internal_pb.js';

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

export function encodeLinkBatch(events: readonly Uint8Array[], notices: LinkNotice[] = []): Uint8Array {
  let size = 0;
  for (const e of events) size += 1 + varintSize(e.length) + e.length;
  const tail = notices.length ? toBinary(LinkBatchSchema, create(LinkBatchSchema, { notices })) : undefined;
  const out = new Uint8Array(size + (tail?.length ?? 0));
  let pos = 0;
  for (const e of events) {
    out[pos++] = 0x0a;
    pos = writeVarint(out, pos, e.length);
    out.set(e, pos);
    pos += e.length;
  }
  if (tail) out.set(tail, pos);
  return out;
}

/** Decodes a LinkBatch; event bytes are views into buf (no copy). */
export function decodeLinkBatch(buf: Uint8Array): { events: Uint8Array[]; notices: LinkNotice[] } {
  const events: Uint8Array[] = [];
  let pos = 0;
  let noticesFrom = -1;
  while (pos < buf.length) {
    const key = buf[pos]!;
    if (key !== 0x0a) {
      noticesFrom = pos; // notices (field 2) follow the events
      break;
    }
    pos++;
    let len = 0;
    let mul = 1;
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated LinkBatch');
      const b = buf[pos++]!;
      len += (b & 0x7f) * mul;
      if (b < 0x80) break;
      mul *= 128;
    }
    if (pos + len > buf.length) throw new Error('truncated event in LinkBatch');
    events.push(buf.subarray(pos, pos + len));
    pos += len;
  }
  const notices = noticesFrom >= 0 ? fromBinary(LinkBatchSchema, buf.subarray(noticesFrom)).notices : [];
  return { events, notices };
}
