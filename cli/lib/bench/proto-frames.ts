// The protobuf pieces every non-WebSocket bench connection (TCP, gRPC,
// gRPC-web) shares: ClientFrame requests, a look at a ServerFrame's first
// byte (heartbeat? close reason?), and ServerBatch → ServerFrames without a
// decode. Frames stay bytes on the hot path; the meter reads what it needs.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ClientFrameSchema, ServerFrameSchema } from '../../../proto/gen/client_pb.js';

export const HEARTBEAT_TAG = 0x32; // ServerFrame.heartbeat, field 6
export const ERROR_TAG = 0x1a; // ServerFrame.error, field 3

export type ClientRequest = 'subscribe' | 'unsubscribe' | 'ping';

/** ClientFrame bytes (no length prefix): subscribe / unsubscribe topics, or a ping answering a heartbeat. */
export function clientFrame(kind: ClientRequest, id: number, topics: string[] = []): Uint8Array {
  return toBinary(
    ClientFrameSchema,
    create(ClientFrameSchema, {
      id: BigInt(id),
      kind: kind === 'ping' ? { case: 'ping', value: { clientTimeUs: BigInt(Date.now() * 1000) } } : { case: kind, value: { topics } },
    }),
  );
}

/**
 * The code of a ServerFrame error that ends the connection — a close code
 * (≥ 1000) or an admission refusal (503) — else undefined (request errors,
 * every other frame). Only error frames are decoded.
 */
export function closeCodeOf(frame: Uint8Array): number | undefined {
  if (frame[0] !== ERROR_TAG) return undefined;
  try {
    const f = fromBinary(ServerFrameSchema, frame);
    if (f.kind.case === 'error' && (f.kind.value.code >= 1000 || f.kind.value.code === 503)) return f.kind.value.code;
  } catch {
    // not ours to judge: passed on as a frame
  }
  return undefined;
}

/**
 * Calls `each` with every ServerFrame of a ServerBatch (field 1,
 * length-delimited), as views into `batch`: no copy, no decode. Other fields
 * (session_id) are skipped. Throws on a truncated or malformed batch.
 */
export function forEachBatchFrame(batch: Buffer, each: (frame: Buffer) => void): void {
  let pos = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = batch[pos++];
      if (b === undefined) throw new Error('truncated ServerBatch (varint)');
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
      if (mul > 2 ** 56) throw new Error('malformed ServerBatch (varint too long)');
    }
  };
  while (pos < batch.length) {
    const key = varint();
    const wire = key & 7;
    if (wire === 2) {
      const len = varint();
      if (pos + len > batch.length) throw new Error('truncated ServerBatch (field longer than the message)');
      if (key >>> 3 === 1) each(batch.subarray(pos, pos + len));
      pos += len;
    } else if (wire === 0) varint();
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw new Error(`malformed ServerBatch (wire type ${wire})`);
  }
  if (pos > batch.length) throw new Error('truncated ServerBatch (fixed-width field)');
}
