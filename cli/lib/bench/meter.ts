// The measuring core of an agent: reads each received frame just enough to
// find its topic, seq, epoch and intended publish time (pt), checks the
// per-topic sequence, and records receive time − pt (µs) into an HDR
// histogram. No full JSON parse on the hot path.
import { build, type Histogram } from 'hdr-histogram-js';
import { fromBinary } from '@bufbuild/protobuf';
import { ServerFrameSchema } from '../../../proto/gen/client_pb.js';
import { readEventHeader, PAYLOAD_DEPTH_SNAPSHOT } from '../../../system/common/event-header.ts';
import { topicOfStreamName } from '../../../system/common/topics.ts';
import { jsonPublishTimeUs } from '../../../bench/lib/frame-time.ts';
import { zeroCounters, type Counters } from './wire.ts';

export const newHistogram = (): Histogram => build({ numberOfSignificantValueDigits: 3 });

/**
 * Per connection: topic → last (seq, epoch) (a missing topic is fresh: its next frame is the base), and
 * when each topic was asked for. Events published before that (the snapshot and the catch-up a server
 * sends on subscribe) were never late to this client: they are counted as catch-up, not latency samples.
 */
export class TopicTrack {
  readonly last = new Map<string, { seq: number; ep: number }>();
  readonly since = new Map<string, number>();

  /** Keyed by topic (btcusdt@aggtrade), whether a name comes as a session wrote it or as Binance spells it in frames. */
  subscribed(topics: Iterable<string>, atUs: number): void {
    for (const name of topics) {
      const t = topicOfStreamName(name);
      this.since.set(t, atUs);
      this.last.delete(t);
    }
  }

  forget(name: string): void {
    const topic = topicOfStreamName(name);
    this.last.delete(topic);
    this.since.delete(topic);
  }
}

const STREAM_PREFIX = Buffer.from('{"stream":"');
const SEQ = Buffer.from('"seq":');
const EP = Buffer.from('"ep":');
const SNAPSHOT = Buffer.from('"e":"depthSnapshot"');
const RESYNC = Buffer.from('"e":"resync"');
const ERROR = Buffer.from('{"error"');

function numberAfter(buf: Buffer, key: Buffer): number {
  const at = buf.lastIndexOf(key);
  if (at < 0) return -1;
  let v = 0;
  let digits = 0;
  for (let i = at + key.length; i < buf.length; i++) {
    const c = buf[i]!;
    if (c < 48 || c > 57) break;
    v = v * 10 + (c - 48);
    digits++;
  }
  return digits ? v : -1;
}

export class Meter {
  counters: Counters = zeroCounters();
  latency: Histogram = newHistogram();
  connect: Histogram = newHistogram();
  errorSamples: string[] = [];
  /** Added to the local clock to read it as the controller's (remote agents). */
  offsetUs = 0;
  readonly #clock: () => number;

  constructor(clockUs: () => number) {
    this.#clock = clockUs;
  }

  error(msg: string): void {
    this.counters.errors++;
    if (this.errorSamples.length < 20) this.errorSamples.push(msg.slice(0, 200));
  }

  /** Takes the interval's counters and histograms and starts fresh ones. */
  take(): { counters: Counters; latency: Histogram; connect: Histogram; errorSamples: string[] } {
    const out = { counters: this.counters, latency: this.latency, connect: this.connect, errorSamples: this.errorSamples };
    this.counters = zeroCounters();
    this.latency = newHistogram();
    this.connect = newHistogram();
    this.errorSamples = [];
    return out;
  }

  /** The local clock read as the controller's, µs. */
  nowUs(): number {
    return this.#clock() + this.offsetUs;
  }

  #event(track: TopicTrack, topic: string, seq: number, ep: number, pt: number, snapshot: boolean, bytes: number): void {
    const c = this.counters;
    c.msgs++;
    c.bytes += bytes;
    const last = track.last.get(topic);
    if (snapshot) {
      // A depth snapshot is state, not an event: it (re)sets the base of the sequence.
      c.snapshots++;
      track.last.set(topic, { seq, ep });
      return;
    }
    if (!last) {
      track.last.set(topic, { seq, ep });
    } else if (ep !== last.ep) {
      c.epochChanges++;
    } else if (seq === last.seq + 1) {
      // in order
    } else if (seq > last.seq + 1) {
      c.gaps += seq - last.seq - 1;
      c.gapEvents++;
    } else {
      c.outOfOrder++;
      return;
    }
    if (last) {
      last.seq = seq;
      last.ep = ep;
    }
    if (pt > 0 && pt < (track.since.get(topic) ?? 0)) {
      c.catchup++;
      return;
    }
    if (pt > 0) {
      let lat = this.#clock() + this.offsetUs - pt;
      if (lat < 0) {
        c.negative++;
        lat = 0;
      }
      this.latency.recordValue(lat);
    }
  }

  onJson(buf: Buffer, track: TopicTrack): void {
    if (buf.length > STREAM_PREFIX.length && buf.compare(STREAM_PREFIX, 0, STREAM_PREFIX.length, 0, STREAM_PREFIX.length) === 0) {
      const end = buf.indexOf(0x22, STREAM_PREFIX.length);
      const topic = topicOfStreamName(buf.toString('latin1', STREAM_PREFIX.length, end));
      // `","data":{` then `"e":"<type>"`
      const eAt = end + 10;
      const snapshot = buf.compare(SNAPSHOT, 0, SNAPSHOT.length, eAt, eAt + SNAPSHOT.length) === 0;
      this.#event(track, topic, numberAfter(buf, SEQ), numberAfter(buf, EP), jsonPublishTimeUs(buf), snapshot, buf.length);
      return;
    }
    if (buf.indexOf(RESYNC) >= 0) {
      this.counters.resyncs++;
      try {
        const stream = (JSON.parse(buf.toString('utf8')) as { stream?: string }).stream;
        if (stream) track.last.delete(topicOfStreamName(stream));
      } catch {
        track.last.clear();
      }
      return;
    }
    if (buf.compare(ERROR, 0, ERROR.length, 0, ERROR.length) === 0) this.error(`server error: ${buf.toString('utf8', 0, 200)}`);
  }

  onProtobuf(buf: Buffer, track: TopicTrack): void {
    const tag = buf[0];
    if (tag === 0x0a) {
      let pos = 1;
      let len = 0;
      let mul = 1;
      for (;;) {
        const b = buf[pos++];
        if (b === undefined) return this.error('truncated protobuf frame');
        len += (b & 0x7f) * mul;
        if (b < 0x80) break;
        mul *= 128;
      }
      let h;
      try {
        h = readEventHeader(buf.subarray(pos, pos + len));
      } catch (err) {
        return this.error(`bad protobuf event: ${(err as Error).message}`);
      }
      this.#event(track, h.topic, h.seq, h.epoch, h.publishTimeUs, h.payloadField === PAYLOAD_DEPTH_SNAPSHOT, buf.length);
      return;
    }
    if (tag === 0x22) {
      this.counters.resyncs++;
      try {
        const f = fromBinary(ServerFrameSchema, buf);
        if (f.kind.case === 'resync' && f.kind.value.topic) track.last.delete(f.kind.value.topic);
        else track.last.clear();
      } catch {
        track.last.clear();
      }
      return;
    }
    if (tag === 0x1a) {
      try {
        const f = fromBinary(ServerFrameSchema, buf);
        this.error(`server error: ${f.kind.case === 'error' ? `${f.kind.value.code} ${f.kind.value.msg}` : '?'}`);
      } catch {
        this.error('server error (undecodable)');
      }
    }
  }
}
