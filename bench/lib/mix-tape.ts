// The raw baseline's frames for `bench:fanout --mix`: the feed's own
// simulator (system/feed/simulator.ts, with the cadences the pipeline's feed
// runs) advanced in virtual time at the measured trade rate, its events for
// the subscribed topics encoded by the gateway's own codec. So the raw server
// sends the kinds, counts and sizes of frames the pipeline delivers at that
// rate (depth diffs grow with the rate), built before the measurement; only
// pt is stamped at send time (JSON: kept apart as head + digits + tail;
// protobuf: the Event re-encoded, as the trade-only baseline does).
import { toBinary } from '@bufbuild/protobuf';
import { EventSchema, type Event } from '../../proto/gen/market_pb.js';
import { eventJson } from '../../system/gateway/codec.ts';
import { binanceStreamName, topicOfStreamName } from '../../system/common/topics.ts';
import { frameField1 } from '../../system/common/link-codec.ts';
import { MarketSimulator } from '../../system/feed/simulator.ts';

export interface TapeOptions {
  symbols: string[];
  /** Subscribed client stream names (any case); only their events are kept. */
  streams: string[];
  rate: number;
  tickerMs: number;
  klineMs: number;
  depthSnapshotMs: number;
  /** Virtual seconds to record (bounded by maxEntries). */
  seconds: number;
  maxEntries: number;
  /** What the entries keep: the JSON text around pt, or the Event to re-encode. */
  format: 'json' | 'protobuf';
}

export interface TapeEntry {
  /** Topic as the simulator names it (lower case): the key of the subscriber lists. */
  topic: string;
  /** Virtual offset from the tape's start, µs. */
  offsetUs: number;
  /** protobuf tapes only. */
  event: Event | undefined;
  /** Combined JSON up to and including `"pt":`, and what follows pt's digits. */
  head: Buffer;
  tail: Buffer;
}

export interface Tape {
  entries: TapeEntry[];
  /** Virtual length, µs: a paced replay loops with this period. */
  lengthUs: number;
}

const PT = '"pt":';
const EMPTY = Buffer.alloc(0);

export function recordTape(o: TapeOptions): Tape {
  const wanted = new Set(o.streams.map(topicOfStreamName));
  const start = 1_700_000_000_000;
  const sim = new MarketSimulator({
    symbols: o.symbols, rate: o.rate, tickerMs: o.tickerMs, klineMs: o.klineMs, depthSnapshotMs: o.depthSnapshotMs,
    depthLevels: 20, seed: 0, epoch: start, startTimeMs: start,
  });
  const entries: TapeEntry[] = [];
  // Warm-up: the 1 s and 1 m cadences start at their phases; skip the first second so every kind is in steady state.
  sim.advanceTo(start + 1000, () => {});
  const from = start + 1000;
  let end = from;
  const emit = (_subject: string, ev: Event) => {
    // Book snapshots (md.depthsnap) carry the depth topics too, but only seed the servers' books: no client frame.
    if (!wanted.has(ev.topic) || ev.payload.case === 'depthSnapshot') return;
    if (o.format === 'protobuf') {
      entries.push({ topic: ev.topic, offsetUs: Number(ev.publishTimeUs) - from * 1000, event: ev, head: EMPTY, tail: EMPTY });
      return;
    }
    const json = `{"stream":${JSON.stringify(binanceStreamName(ev.topic))},"data":${JSON.stringify(eventJson(ev))}}`;
    const at = json.lastIndexOf(PT) + PT.length;
    let digitsEnd = at;
    while (digitsEnd < json.length && json.charCodeAt(digitsEnd) >= 48 && json.charCodeAt(digitsEnd) <= 57) digitsEnd++;
    entries.push({
      topic: ev.topic, offsetUs: Number(ev.publishTimeUs) - from * 1000, event: undefined,
      head: Buffer.from(json.slice(0, at)), tail: Buffer.from(json.slice(digitsEnd)),
    });
  };
  // 10 ms steps so the bound on entries stops the recording close to it.
  for (let t = from + 10; t <= from + o.seconds * 1000 && entries.length < o.maxEntries; t += 10) {
    sim.advanceTo(t, emit);
    end = t;
  }
  if (entries.length === 0) throw new Error(`the mix tape is empty: no subscribed stream had an event in ${o.seconds} s at ${o.rate} trades/s/sym`);
  return { entries, lengthUs: (end - from) * 1000 };
}

/** The entry's payload stamped with pt (µs): combined JSON text, or a protobuf ServerFrame. */
export function stampPayload(e: TapeEntry, ptUs: number): Buffer {
  if (e.event) {
    e.event.publishTimeUs = BigInt(ptUs);
    const bytes = frameField1(toBinary(EventSchema, e.event));
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  return Buffer.concat([e.head, Buffer.from(String(ptUs)), e.tail]);
}
