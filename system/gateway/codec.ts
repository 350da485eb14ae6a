// Turns one event into the bytes each kind of client gets. Every encoding is
// built at most once per event and the same bytes go to every subscriber
// (see EncodedEvent). JSON follows Binance's public stream shapes; the extra
// fields `seq` (per-topic sequence), `ep` (epoch) and `pt` (intended publish
// time, µs) let clients detect gaps and measure latency.
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import * as wsModule from 'ws';
import { EventSchema, type Event, type PriceLevel, type Ticker } from '../../proto/gen/market_pb.js';
import { ServerFrameSchema } from '../../proto/gen/client_pb.js';
import { frameField1 } from '../common/link-codec.ts';
import { binanceStreamName } from '../common/topics.ts';

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

/** Binance's `24hrTicker` / `24hrMiniTicker` object of one ticker. */
function tickerData(t: Ticker, mini: boolean, E: number, ts: (ms: bigint) => number): Record<string, unknown> {
  if (mini) return { e: '24hrMiniTicker', E, s: t.symbol.toUpperCase(), c: t.lastPrice, o: t.openPrice, h: t.highPrice, l: t.lowPrice, v: t.volume, q: t.quoteVolume };
  return {
    e: '24hrTicker', E, s: t.symbol.toUpperCase(), p: t.priceChange, P: t.priceChangePercent,
    w: t.weightedAvgPrice, x: t.openPrice, c: t.lastPrice, Q: t.lastQty, b: t.bestBid, B: t.bestBidQty,
    a: t.bestAsk, A: t.bestAskQty, o: t.openPrice, h: t.highPrice, l: t.lowPrice, v: t.volume,
    q: t.quoteVolume, O: ts(t.openTime), C: ts(t.closeTime), F: n(t.firstTradeId), L: n(t.lastTradeId),
    n: n(t.tradeCount),
  };
}

const ROLLING_TOPIC_RE = /(?:@|^!)ticker_(1h|4h|1d)(?:@arr)?$/;

/** Binance's rolling-window ticker (`1hTicker`, `4hTicker`, `1dTicker`); a window without trades has F = L = -1. */
function rollingData(t: Ticker, window: string, E: number, ts: (ms: bigint) => number): Record<string, unknown> {
  const any = t.tradeCount > 0n;
  return {
    e: `${window}Ticker`, E, s: t.symbol.toUpperCase(), p: t.priceChange, P: t.priceChangePercent,
    o: t.openPrice, h: t.highPrice, l: t.lowPrice, c: t.lastPrice, w: t.weightedAvgPrice, v: t.volume, q: t.quoteVolume,
    O: ts(t.openTime), C: ts(t.closeTime), F: any ? n(t.firstTradeId) : -1, L: any ? n(t.lastTradeId) : -1, n: n(t.tradeCount),
  };
}

/** An event's JSON: Binance's all-market streams are an array (no room for seq there), every other event an object. */
export function eventJson(ev: Event, micros = false): Record<string, unknown> | Array<Record<string, unknown>> {
  const p = ev.payload;
  if (p.case !== 'tickerArray') return eventData(ev, micros);
  const E = micros ? n(ev.publishTimeUs) : Math.floor(n(ev.publishTimeUs) / 1000);
  const mini = ev.topic.startsWith('!miniticker');
  const ts = micros ? (ms: bigint) => n(ms) * 1000 : n;
  const rolling = ROLLING_TOPIC_RE.exec(ev.topic)?.[1];
  if (rolling) return p.value.tickers.map((t) => rollingData(t, rolling, E, ts));
  return p.value.tickers.map((t) => tickerData(t, mini, E, ts));
}

/** The Binance-shaped `data` object of an event; `micros`: times in µs (Binance's timeUnit=MICROSECOND). */
export function eventData(ev: Event, micros = false): Record<string, unknown> {
  const E = micros ? n(ev.publishTimeUs) : Math.floor(n(ev.publishTimeUs) / 1000);
  // Times other than E are kept in ms: in µs they are the same instant × 1000.
  const ts = micros ? (ms: bigint) => n(ms) * 1000 : n;
  const tail = { seq: n(ev.seq), ep: n(ev.epoch), pt: n(ev.publishTimeUs) };
  const p = ev.payload;
  switch (p.case) {
    case 'ticker': {
      const t = p.value;
      const rolling = ROLLING_TOPIC_RE.exec(ev.topic)?.[1];
      if (rolling) return { ...rollingData(t, rolling, E, ts), ...tail };
      if (ev.topic.endsWith('@avgprice')) return { e: 'avgPrice', E, s: t.symbol.toUpperCase(), i: '5m', w: t.weightedAvgPrice, T: ts(t.closeTime), ...tail };
      if (ev.topic.endsWith('@miniticker')) {
        return { e: '24hrMiniTicker', E, s: t.symbol.toUpperCase(), c: t.lastPrice, o: t.openPrice, h: t.highPrice, l: t.lowPrice, v: t.volume, q: t.quoteVolume, ...tail };
      }
      return {
        e: '24hrTicker', E, s: t.symbol.toUpperCase(), p: t.priceChange, P: t.priceChangePercent,
        w: t.weightedAvgPrice, x: t.openPrice, c: t.lastPrice, Q: t.lastQty, b: t.bestBid, B: t.bestBidQty,
        a: t.bestAsk, A: t.bestAskQty, o: t.openPrice, h: t.highPrice, l: t.lowPrice, v: t.volume,
        q: t.quoteVolume, O: ts(t.openTime), C: ts(t.closeTime), F: n(t.firstTradeId), L: n(t.lastTradeId),
        n: n(t.tradeCount), ...tail,
      };
    }
    case 'kline': {
      const k = p.value;
      const s = k.symbol.toUpperCase();
      return {
        e: 'kline', E, s,
        k: {
          t: ts(k.openTime), T: ts(k.closeTime), s, i: k.interval, f: n(k.firstTradeId), L: n(k.lastTradeId),
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
      // Partial book depth (`@depth5|10|20[@100ms]`): Binance sends only these three fields.
      if (!ev.topic.endsWith('@depth') && !ev.topic.endsWith('@depth@100ms')) return { lastUpdateId: n(d.lastUpdateId), bids: levels(d.bids), asks: levels(d.asks), ...tail };
      return {
        e: 'depthSnapshot', E, s: d.symbol.toUpperCase(), lastUpdateId: n(d.lastUpdateId),
        bids: levels(d.bids), asks: levels(d.asks), ...tail,
      };
    }
    case 'bookTicker': {
      // Binance's spot bookTicker has no event type or time: ccxt and others recognise it by u/b/a.
      const b = p.value;
      return { u: n(b.updateId), s: b.symbol.toUpperCase(), b: b.bidPrice, B: b.bidQty, a: b.askPrice, A: b.askQty, ...tail };
    }
    case 'trade': {
      const t = p.value;
      if (ev.topic.endsWith('@aggtrade')) {
        // One taker order filling one level: the aggregate is that one trade (a = f = l), unless it names its trades (a replayed aggTrade).
        const id = n(t.tradeId);
        return { e: 'aggTrade', E, s: t.symbol.toUpperCase(), a: id, p: t.price, q: t.qty, f: t.firstTradeId ? n(t.firstTradeId) : id, l: t.lastTradeId ? n(t.lastTradeId) : id, T: ts(t.tradeTime), m: t.buyerIsMaker, M: true, ...tail };
      }
      return {
        e: 'trade', E, s: t.symbol.toUpperCase(), t: n(t.tradeId), p: t.price, q: t.qty, T: ts(t.tradeTime),
        m: t.buyerIsMaker, M: true, ...tail,
      };
    }
    case 'order': {
      const o = p.value;
      // Balances an engine attached (order-flow.ts): Binance's outboundAccountPosition B array, on the same event.
      const B = o.balances.length > 0 ? { B: o.balances.map((b) => ({ a: b.asset, f: b.free, l: b.locked })) } : {};
      if (o.balanceDelta) {
        return { e: 'balanceUpdate', E, a: o.balanceDelta.asset, d: o.balanceDelta.delta, T: ts(o.balanceDelta.clearTime), ...B, ...tail };
      }
      // An engine's execution fields, when it sent them (x: execution type, l/L: the fill, t: its public trade).
      const exec = o.execType ? { x: o.execType, l: o.lastQty, L: o.lastPrice, t: n(o.tradeId) } : {};
      return {
        e: 'executionReport', E, s: o.symbol.toUpperCase(), c: o.clientOrderId, S: o.side, o: o.type,
        X: o.status, p: o.price, q: o.qty, z: o.filledQty, T: ts(o.updateTime), i: o.id, ...exec, ...B, ...tail,
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
  #rawUs: Buffer | undefined;
  #combinedUs: Buffer | undefined;
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

  /** micros: JSON times in µs (timeUnit=MICROSECOND); protobuf carries µs anyway. */
  frame(format: ClientFormat, micros = false): Buffer {
    switch (format) {
      case 'raw':
        if (micros) return (this.#rawUs ??= prepareFrame(JSON.stringify(eventJson(this.event, true)), false));
        return (this.#raw ??= prepareFrame(JSON.stringify(eventJson(this.event)), false));
      case 'combined':
        // `stream` as Binance names it (btcusdt@aggTrade), whatever case the client subscribed in.
        if (micros) return (this.#combinedUs ??= prepareFrame(`{"stream":${JSON.stringify(binanceStreamName(this.topic))},"data":${JSON.stringify(eventJson(this.event, true))}}`, false));
        return (this.#combined ??= prepareFrame(`{"stream":${JSON.stringify(binanceStreamName(this.topic))},"data":${JSON.stringify(eventJson(this.event))}}`, false));
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
