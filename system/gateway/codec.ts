// Turns one event into the bytes each kind of client gets. Every encoding is
// built at most once per event and the same bytes go to every subscriber
// (see EncodedEvent). JSON follows Binance's public stream shapes; the extra
// fields `seq` (per-topic sequence), `ep` (epoch) and `pt` (intended publish
// time, µs) let clients detect gaps and measure latency.
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import * as wsModule from 'ws';
import { EventSchema, type Event, type PriceLevel } from '../../proto/gen/market_pb.js';
import { ServerFrameSchema } from '../../proto/gen/client_pb.js';
import { frameField1 } from '../common/link-codec.ts';

/**
 * raw / combined: Binance JSON in WebSocket text frames; protobuf: a
 * ServerFrame per WebSocket binary frame; tcp: ServerFrames each behind a
 * 4-byte big-endian length; grpc: ServerBatch pieces (field 1 around a
 * ServerFrame), so concatenated pieces are one valid ServerBatch message.
 */
export type ClientFormat = 'raw' | 'combined' | 'protobuf' | 'tcp' | 'grpc';

/** Formats whose frames are protobuf ServerFrames (not JSON). */
export const isProtobufFormat = (f: ClientFormat) => f === 'protobuf' || f === 'tcp' || f === 'grpc';

/** Wraps encoded ServerFrame bytes for a protobuf format. */
export function wrapServerFrame(format: 'protobuf' | 'tcp' | 'grpc', frame: Uint8Array): Buffer {
  switch (format) {
    case 'protobuf':
      return prepareFrame(frame, true);
    case 'tcp': {
      const out = Buffer.allocUnsafe(4 + frame.length);
      out.writeUInt32BE(frame.length, 0);
      out.set(frame, 4);
      return out;
    }
    case 'grpc': {
      const f = frameField1(frame);
      return Buffer.from(f.buffer, f.byteOffset, f.byteLength);
    }
  }
}

// ws documents Sender.frame as public; @types/ws does not declare it.
const Sender = (wsModule as unknown as {
  Sender: { frame(data: Buffer, o: { fin: boolean; rsv1: boolean; opcode: number; mask: boolean; readOnly: boolean }): Buffer[] };
}).Sender;

const levels = (ls: PriceLevel[]) => ls.map((l) => [l.price, l.qty]);
const n = (v: bigint) => Number(v);

/** The Binance-shaped `data` object of an event. */
export function eventData(ev: Event): Record<string, unknown> {
  const E = Math.floor(n(ev.publishTimeUs) / 1000);
  const tail = { seq: n(ev.seq), ep: n(ev.epoch), pt: n(ev.publishTimeUs) };
  const p = ev.payload;
  switch (p.case) {
    case 'ticker': {
      const t = p.value;
      return {
        e: '24hrTicker', E, s: t.symbol.toUpperCase(), p: t.priceChange, P: t.priceChangePercent,
        w: t.weightedAvgPrice, x: t.openPrice, c: t.lastPrice, Q: t.lastQty, b: t.bestBid, B: t.bestBidQty,
        a: t.bestAsk, A: t.bestAskQty, o: t.openPrice, h: t.highPrice, l: t.lowPrice, v: t.volume,
        q: t.quoteVolume, O: n(t.openTime), C: n(t.closeTime), F: n(t.firstTradeId), L: n(t.lastTradeId),
        n: n(t.tradeCount), ...tail,
      };
    }
    case 'kline': {
      const k = p.value;
      const s = k.symbol.toUpperCase();
      return {
        e: 'kline', E, s,
        k: {
          t: n(k.openTime), T: n(k.closeTime), s, i: k.interval, f: n(k.firstTradeId), L: n(k.lastTradeId),
          o: k.open, c: k.close, h: k.high, l: k.low, v: k.volume, n: n(k.tradeCount), x: k.closed,
          q: k.quoteVolume, V: k.takerBuyBaseVolume, Q: k.takerBuyQuoteVolume, B: '0',
        },
        ...tail,
      };
    }
    case 'depthUpdate': {
      const d = p.value;
      return {
        e: 'depthUpdate', E, s: d.symbol.toUpperCase(), U: n(d.firstUpdateId), u: n(d.finalUpdateId),
        b: levels(d.bids), a: levels(d.asks), ...tail,
      };
    }
    case 'depthSnapshot': {
      const d = p.value;
      return {
        e: 'depthSnapshot', E, s: d.symbol.toUpperCase(), lastUpdateId: n(d.lastUpdateId),
        bids: levels(d.bids), asks: levels(d.asks), ...tail,
      };
    }
    case 'trade': {
      const t = p.value;
      return {
        e: 'trade', E, s: t.symbol.toUpperCase(), t: n(t.tradeId), p: t.price, q: t.qty, T: n(t.tradeTime),
        m: t.buyerIsMaker, M: true, ...tail,
      };
    }
    case 'order': {
      const o = p.value;
      return {
        e: 'executionReport', E, s: o.symbol.toUpperCase(), c: o.clientOrderId, S: o.side, o: o.type,
        X: o.status, p: o.price, q: o.qty, z: o.filledQty, T: n(o.updateTime), i: o.id, ...tail,
      };
    }
    default:
      return { e: 'unknown', E, ...tail };
  }
}

/** A WebSocket frame (header + payload) built once, written as-is to many sockets. */
export function prepareFrame(payload: Buffer | Uint8Array | string, binary: boolean): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const parts = Sender.frame(data, {
    fin: true,
    rsv1: false,
    opcode: binary ? 2 : 1,
    mask: false,
    readOnly: true,
  });
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** One event with its encodings built lazily, each at most once. */
export class EncodedEvent {
  readonly bytes: Uint8Array;
  readonly topic: string;
  readonly seq: number;
  #event: Event | undefined;
  #raw: Buffer | undefined;
  #combined: Buffer | undefined;
  #proto: Buffer | undefined;
  #tcp: Buffer | undefined;
  #grpc: Buffer | undefined;

  constructor(topic: string, seq: number, bytes: Uint8Array, event?: Event) {
    this.topic = topic;
    this.seq = seq;
    this.bytes = bytes;
    this.#event = event;
  }

  get event(): Event {
    return (this.#event ??= fromBinary(EventSchema, this.bytes));
  }

  frame(format: ClientFormat): Buffer {
    switch (format) {
      case 'raw':
        return (this.#raw ??= prepareFrame(JSON.stringify(eventData(this.event)), false));
      case 'combined':
        return (this.#combined ??= prepareFrame(`{"stream":${JSON.stringify(this.topic)},"data":${JSON.stringify(eventData(this.event))}}`, false));
      // ServerFrame.event is field 1: the event's own bytes framed, not re-encoded.
      case 'protobuf':
        return (this.#proto ??= wrapServerFrame('protobuf', frameField1(this.bytes)));
      case 'tcp':
        return (this.#tcp ??= wrapServerFrame('tcp', frameField1(this.bytes)));
      case 'grpc':
        return (this.#grpc ??= wrapServerFrame('grpc', frameField1(this.bytes)));
    }
  }
}

/** Control messages (results, errors, resync notices) for one client. */
export function controlFrame(format: ClientFormat, json: object, proto: MessageInitShape<typeof ServerFrameSchema>['kind']): Buffer {
  if (isProtobufFormat(format)) return wrapServerFrame(format as 'protobuf' | 'tcp' | 'grpc', toBinary(ServerFrameSchema, create(ServerFrameSchema, { kind: proto })));
  return prepareFrame(JSON.stringify(json), false);
}

export function decodeEvent(bytes: Uint8Array): Event {
  return fromBinary(EventSchema, bytes);
}
