// Reads the intended publish time (pt, µs) out of a received frame without
// decoding it: JSON events end with `"pt":<digits>` (gateway codec), and a
// protobuf ServerFrame carries the Event as field 1, whose header holds
// publish_time_us. Returns -1 for frames without one (results, notices).
import { readEventHeader } from '../../system/common/event-header.ts';

const PT = Buffer.from('"pt":');

export function jsonPublishTimeUs(data: Buffer): number {
  // pt is the last field of `data`: search from the end.
  const at = data.lastIndexOf(PT);
  if (at < 0) return -1;
  let v = 0;
  let digits = 0;
  for (let i = at + PT.length; i < data.length; i++) {
    const c = data[i]!;
    if (c < 48 || c > 57) break;
    v = v * 10 + (c - 48);
    digits++;
  }
  return digits > 0 ? v : -1;
}

export function protobufPublishTimeUs(data: Buffer): number {
  // ServerFrame.event: tag 0x0a, varint length, Event bytes.
  if (data.length < 2 || data[0] !== 0x0a) return -1;
  let pos = 1;
  let len = 0;
  let mul = 1;
  for (;;) {
    if (pos >= data.length || mul > 2 ** 35) return -1;
    const b = data[pos++]!;
    len += (b & 0x7f) * mul;
    if (b < 0x80) break;
    mul *= 128;
  }
  if (pos + len > data.length) return -1;
  try {
    const t = readEventHeader(data.subarray(pos, pos + len)).publishTimeUs;
    return t > 0 ? t : -1;
  } catch {
    return -1;
  }
}
