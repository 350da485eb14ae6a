// GET /api/v3/depth on a push-server: the current book of a symbol, built on
// demand from what the server already keeps for `<sym>@depth@100ms` (the
// latest snapshot and the diffs after it) with Binance's local-book rules, so
// its `lastUpdateId` is the `u` of the newest diff this server has seen. A
// client that subscribed to a diff stream before asking finds the event with
// `U ≤ lastUpdateId+1 ≤ u` in what it buffered. Built per request and cached
// until the topic moves on: nothing is decoded while nobody asks.
import { fromBinary } from '@bufbuild/protobuf';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EventSchema, type PriceLevel } from '../../proto/gen/market_pb.js';
import { sendJson } from '../common/http.ts';
import type { TopicHistory } from '../common/topic-history.ts';
import { depthBookTopic } from '../common/topics.ts';
import { binanceError, isBinanceError, parseDepthQuery, sendBinanceError } from '../history/binance-api.ts';

export interface DepthBook {
  lastUpdateId: number;
  bids: Array<[string, string]>; // best (highest) first
  asks: Array<[string, string]>; // best (lowest) first
}

/** The book at the newest diff after the topic's snapshot; undefined before the first snapshot. */
export function bookFromHistory(th: TopicHistory): DepthBook | undefined {
  const snap = th.depthSnapshot;
  if (!snap) return undefined;
  const ev = fromBinary(EventSchema, snap.bytes);
  if (ev.payload.case !== 'depthSnapshot') return undefined;
  const s = ev.payload.value;
  const bids = new Map(s.bids.map((l) => [l.price, l.qty]));
  const asks = new Map(s.asks.map((l) => [l.price, l.qty]));
  let lastUpdateId = s.lastUpdateId;
  // History that no longer reaches back to the snapshot: the snapshot alone is still a consistent book.
  for (const bytes of th.since(th.epoch, snap.seq) ?? []) {
    const d = fromBinary(EventSchema, bytes).payload;
    if (d.case !== 'depthUpdate' || d.value.finalUpdateId <= lastUpdateId) continue;
    // A hole (U past L+1) would make the book wrong: stop at the last consistent point.
    if (d.value.firstUpdateId > lastUpdateId + 1n) break;
    apply(bids, d.value.bids);
    apply(asks, d.value.asks);
    lastUpdateId = d.value.finalUpdateId;
  }
  return {
    lastUpdateId: Number(lastUpdateId),
    bids: [...bids].sort((a, b) => Number(b[0]) - Number(a[0])),
    asks: [...asks].sort((a, b) => Number(a[0]) - Number(b[0])),
  };
}

function apply(side: Map<string, string>, levels: PriceLevel[]): void {
  for (const l of levels) {
    if (Number(l.qty) === 0) side.delete(l.price);
    else side.set(l.price, l.qty);
  }
}

/** Answers /api/v3/depth from the server's topic histories, caching each book until its topic changes. */
export class DepthBooks {
  #topics: ReadonlyMap<string, TopicHistory>;
  #cache = new Map<string, { epoch: number; seq: number; snapSeq: number; book: DepthBook }>();

  constructor(topics: ReadonlyMap<string, TopicHistory>) {
    this.#topics = topics;
  }

  book(symbol: string): DepthBook | undefined {
    const topic = depthBookTopic(symbol);
    const th = this.#topics.get(topic);
    if (!th?.depthSnapshot) return undefined;
    const hit = this.#cache.get(topic);
    if (hit && hit.epoch === th.epoch && hit.seq === th.lastSeq && hit.snapSeq === th.depthSnapshot.seq) return hit.book;
    const book = bookFromHistory(th);
    if (book) this.#cache.set(topic, { epoch: th.epoch, seq: th.lastSeq, snapSeq: th.depthSnapshot.seq, book });
    return book;
  }

  handle = (_req: IncomingMessage, res: ServerResponse, url: URL): void => {
    const q = parseDepthQuery(url.searchParams, (s) => this.#topics.has(depthBookTopic(s.toLowerCase())));
    if (isBinanceError(q)) return sendBinanceError(res, q);
    const book = this.book(q.symbol.toLowerCase());
    if (!book) return sendBinanceError(res, binanceError(503, -1001, 'Internal error; the order book is not available yet. Please try again.'));
    sendJson(res, 200, { lastUpdateId: book.lastUpdateId, bids: book.bids.slice(0, q.limit), asks: book.asks.slice(0, q.limit) });
  };
}
