// Reads Event fields 1-4 (topic, seq, epoch, publish_time_us) straight off the
// wire without decoding the payload. push-server handles every bus message
// but never needs its payload, so this keeps a full decode off its hot path.

export interface EventHeader {
  topic: string;
  seq: number;
  epoch: number;
  publishTimeUs: number;
  /** Field number of the payload (10 ticker … 15 order), 0 when absent. */
  payloadField: number;
}

export const PAYLOAD_DEPTH_SNAPSHOT = 13;

const decoder = new TextDecoder();

export function readEventHeader(buf: Uint8Array): EventHeader {
  let pos = 0;
  let topic = '';
  let seq = 0;
  let epoch = 0;
  let publishTimeUs = 0;
  let payloadField = 0;
  const varint = (): number => {
    // Values stay below 2^53 (µs timestamps, sequence numbers): plain arithmetic is exact.
    let result = 0;
    let mul = 1;
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated varint in event header');
      const b = buf[pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
      if (mul > 2 ** 63) throw new Error('varint too long in event header');
    }
  };
  while (pos < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field > 4) {
      payloadField = field;
      break;
    }
    if (field === 1 && wire === 2) {
      const len = varint();
      if (pos + len > buf.length) throw new Error('truncated topic in event header');
      topic = decoder.decode(buf.subarray(pos, pos + len));
      pos += len;
    } else if (wire === 0) {
      const v = varint();
      if (field === 2) seq = v;
      else if (field === 3) epoch = v;
      else if (field === 4) publishTimeUs = v;
    } else {
      throw new Error(`unexpected wire type ${wire} for field ${field} in event header`);
    }
  }
  return { topic, seq, epoch, publishTimeUs, payloadField };
}
