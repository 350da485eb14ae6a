// gRPC-web and Connect on the gateway's HTTP port, served by Connect's router
// and Node helpers (no envoy, no sidecar): PushService.Subscribe streams one session's
// frames to the client, PushService.Update carries that session's requests
// (browsers cannot stream client→server), ExchangeInfo answers one-off
// queries. Sessions are the same as every other protocol's (Sessions.open),
// so queues, conflation, resync, rate limits and heartbeats are shared.
// gRPC-web's text mode (Google's runtime's default) is translated to the
// binary mode around Connect's router (grpc-web-text.ts).
//
// Cost per message: Connect's streaming response is a chain of async
// iterables (serialize, envelope, compress, join, write), several promise
// hops per message — 2× the CPU of WebSocket for the same fan-out. So
// Subscribe's binary responses are spliced: Connect's router, protocol
// handlers and response writer (universalResponseToNodeResponse) serve the
// call as usual — headers, the first message, errors, status and trailers —
// but between the first message and the end, the writer is fed the session's
// batches as ready envelopes (5-byte prefix + the ServerBatch pieces already
// encoded), one per pull, without going through the chain. JSON responses
// take Connect's whole path.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Code, ConnectError, cors, createConnectRouter, createContextKey, createContextValues, type ConnectRouter } from '@connectrpc/connect';
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from '@connectrpc/connect-node';
import { encodeEnvelope, envelopeCompress, type Compression, type UniversalServerResponse } from '@connectrpc/connect/protocol';
import { ClientFrameSchema, PushService, ServerBatchSchema, ServerFrameSchema, type ServerBatch } from '../../proto/gen/client_pb.js';
import type { ClientConn } from './client-conn.ts';
import { wrapServerFrame } from './codec.ts';
import { binaryResponseAsText, isGrpcWebText, textRequestAsBinary } from './grpc-web-text.ts';
import { parseProtobufRequest } from './protocol.ts';
import type { Sessions } from './sessions.ts';
import type { ClientTransport } from './transport.ts';

/** URL path prefix of every PushService method (Connect, gRPC-web). */
export const PUSH_SERVICE_PATH = `/${PushService.typeName}/`;

const remoteKey = createContextKey('grpc-web', { description: 'peer address' });

/** Per call: the Subscribe implementation leaves its transport here for the response splice. */
interface SpliceSlot {
  transport: GrpcWebTransport | undefined;
}
const spliceKey = createContextKey<SpliceSlot | undefined>(undefined, { description: 'Subscribe response splice' });

// What connectNodeAdapter would use (its defaults), named here because the splice compresses alike.
const ACCEPT_COMPRESSION: Compression[] = [compressionGzip, compressionBrotli];
const COMPRESS_MIN_BYTES = 1024;

const batchPiece = (kind: Parameters<typeof create<typeof ServerFrameSchema>>[1]) =>
  wrapServerFrame('grpc', toBinary(ServerFrameSchema, create(ServerFrameSchema, kind)));

/** The call's status for a session close code (as gRPC's). */
const closeStatus = (code: number): Code =>
  code === 4003 ? Code.Unauthenticated : code === 4001 || code === 1008 ? Code.ResourceExhausted : Code.Unavailable;

/**
 * The response side of one Subscribe call as a ClientTransport. Bytes wait in
 * a queue until Connect's response writer pulls the next batch; it pulls only
 * after the previous one was written to the socket (below its high-water
 * mark, or after 'drain'), so the queue backs up exactly when the client (or
 * its network) does, and 'drain' fires when the writer asks for more and
 * nothing is left — the same contract as a Node socket.
 */
export class GrpcWebTransport implements ClientTransport {
  readonly remote: string;
  #queue: Buffer[] = [];
  #bytes = 0;
  #highWater: number;
  #needDrain = false;
  #drainCbs: Array<() => void> = [];
  #wake: (() => void) | undefined;
  #end: { error?: ConnectError } | undefined;

  constructor(remote: string, highWaterBytes = 64 * 1024) {
    this.remote = remote;
    this.#highWater = highWaterBytes;
  }
  get writableLength(): number {
    return this.#bytes;
  }
  get writableNeedDrain(): boolean {
    return this.#needDrain;
  }
  get writable(): boolean {
    return this.#end === undefined;
  }
  write(chunk: Buffer): void {
    if (this.#end) return;
    this.#queue.push(chunk);
    this.#bytes += chunk.length;
    if (this.#bytes >= this.#highWater) this.#needDrain = true;
    this.#kick();
  }
  onceDrain(cb: () => void): void {
    this.#drainCbs.push(cb);
  }
  ping(): void {
    this.write(batchPiece({ kind: { case: 'heartbeat', value: { serverTimeUs: BigInt(Date.now() * 1000) } } }));
  }
  close(code: number, reason: string): void {
    if (this.#end) return;
    // The reason travels as a last error frame, then the call ends with a status naming it.
    this.write(batchPiece({ kind: { case: 'error', value: { id: 0n, code, msg: reason } } }));
    this.#end = code === 1000 || code === 1001 ? {} : { error: new ConnectError(reason, closeStatus(code)) };
    this.#kick();
  }
  terminate(): void {
    if (this.#end && this.#queue.length === 0) return;
    this.#queue = [];
    this.#bytes = 0;
    this.#end ??= { error: new ConnectError('connection cut by the gateway', Code.Canceled) };
    this.#kick();
  }
  /** The call's deadline (grpc-timeout) passed: what is queued goes out, then the call ends with `error`. */
  expire(error: ConnectError): void {
    this.#end ??= { error };
    this.#kick();
  }
  /** The client went away: stop at once. */
  abandon(): void {
    this.#queue = [];
    this.#bytes = 0;
    this.#end ??= {};
    this.#kick();
  }

  #kick(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /**
   * Everything queued since the last pull (ServerBatch pieces: together one
   * ServerBatch), waiting for some if none is; undefined once closed and
   * emptied, or rejects with the close status. A pull that finds the queue
   * empty after it passed its high-water mark is the 'drain'.
   */
  take(): Promise<Buffer[] | undefined> {
    if (this.#queue.length === 0 && this.#needDrain) {
      this.#needDrain = false;
      const cbs = this.#drainCbs;
      this.#drainCbs = [];
      for (const cb of cbs) cb(); // may write again at once
    }
    if (this.#queue.length > 0) {
      const pieces = this.#queue;
      this.#queue = [];
      this.#bytes = 0;
      return Promise.resolve(pieces);
    }
    if (this.#end) return this.#end.error ? Promise.reject(this.#end.error) : Promise.resolve(undefined);
    return new Promise<void>((resolve) => (this.#wake = resolve)).then(() => this.take());
  }

  /**
   * The same batches as ServerBatch messages, for Connect's own path: JSON
   * responses, which need the frames decoded (rare; binary ones are spliced).
   */
  async *messages(): AsyncGenerator<ServerBatch> {
    for (let pieces = await this.take(); pieces; pieces = await this.take()) {
      yield fromBinary(ServerBatchSchema, pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces));
    }
  }
}

/** One envelope (flags 0: a message, uncompressed) around pieces that together are a ServerBatch. */
function batchEnvelope(pieces: Buffer[]): Buffer {
  let n = 0;
  for (const p of pieces) n += p.length;
  const out = Buffer.allocUnsafe(5 + n);
  out[0] = 0;
  out.writeUInt32BE(n, 1);
  let at = 5;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A big batch compressed as Connect would (over compressMinBytes, when the client accepts it). */
async function compressedBatchEnvelope(pieces: Buffer[], compression: Compression): Promise<Uint8Array> {
  const env = await envelopeCompress({ flags: 0, data: Buffer.concat(pieces) }, compression, COMPRESS_MIN_BYTES);
  return encodeEnvelope(env.flags, env.data);
}

/**
 * Connect's response for a Subscribe call, with the session's batches spliced
 * in after its first message (the session id, which commits the headers):
 * each pull of the writer takes what the transport queued since the previous
 * one, as one envelope — the gRPC-web and Connect streaming envelopes are the
 * same 5 bytes. Once the transport ended, pulls go back to Connect, whose
 * Subscribe generator finds it ended too and returns or throws: Connect writes
 * the status (trailers) and ends the response. Connect's pipeline is idle
 * (suspended at that first yield) while the batches flow, so nothing
 * interleaves; a write error or an early return goes to Connect, as before.
 */
function spliceBatches(uRes: UniversalServerResponse, transport: GrpcWebTransport): UniversalServerResponse {
  const body = uRes.body;
  if (!body) return uRes;
  // Connect names the response compression it negotiated; big batches get it too.
  const encoding = uRes.header?.get('grpc-encoding') ?? uRes.header?.get('connect-content-encoding');
  const compression = ACCEPT_COMPRESSION.find((c) => c.name === encoding);
  const connect = body[Symbol.asyncIterator]();
  let phase: 'first' | 'batches' | 'end' = 'first';
  const toConnect = () => {
    phase = 'end';
    return connect.next();
  };
  const onBatch = (pieces: Buffer[] | undefined): IteratorResult<Uint8Array> | Promise<IteratorResult<Uint8Array>> => {
    if (!pieces) return toConnect();
    let n = 0;
    if (compression) for (const p of pieces) n += p.length;
    if (compression && n >= COMPRESS_MIN_BYTES) return compressedBatchEnvelope(pieces, compression).then((value) => ({ done: false, value }));
    return { done: false, value: batchEnvelope(pieces) };
  };
  const it: AsyncIterator<Uint8Array> = {
    next: () => {
      if (phase === 'batches') return transport.take().then(onBatch, toConnect);
      if (phase === 'first') phase = 'batches';
      return connect.next();
    },
    throw: (e?: unknown) => (connect.throw ? connect.throw(e) : Promise.reject(e)),
    return: (v?: unknown) => (connect.return ? connect.return(v) : Promise.resolve({ done: true, value: v })),
  };
  return { ...uRes, body: { [Symbol.asyncIterator]: () => it } };
}

export interface GrpcWebApi {
  /** Serves a request under PUSH_SERVICE_PATH (POST, and CORS preflights). */
  handle(req: IncomingMessage, res: ServerResponse): void;
  readonly sessionCount: number;
}

export function createGrpcWebApi(o: {
  sessions: Sessions;
  maxFrameBytes: number;
  isDraining: () => boolean;
  symbols: () => ReadonlySet<string>;
}): GrpcWebApi {
  const live = new Map<string, ClientConn>();

  const routes = (router: ConnectRouter) =>
    router.service(PushService, {
      async *subscribe(req, ctx) {
        const refused = o.isDraining() ? 'gateway draining: ask the router for another gateway' : o.sessions.admit();
        if (refused) throw new ConnectError(refused, Code.Unavailable);
        const initial = req.topics.length ? o.sessions.checkTopics(req.topics) : [];
        if (typeof initial === 'string') throw new ConnectError(initial, Code.InvalidArgument);
        // A token on connect, as gRPC metadata: `Authorization: Bearer <jwt>` (or later, an Auth frame by Update).
        const bearer = /^Bearer\s+(.+)$/i.exec(ctx.requestHeader.get('authorization') ?? '')?.[1];
        const identity = await o.sessions.verifyAtConnect(bearer);
        if (typeof identity === 'string') throw new ConnectError(identity, Code.Unauthenticated);
        if (ctx.signal.aborted) return; // the client left while its token was checked
        const transport = new GrpcWebTransport(ctx.values.get(remoteKey));
        const sessionId = randomUUID();
        // Same bytes as gRPC (ServerBatch pieces): only the carrier differs.
        const c = o.sessions.open(transport, 'grpc', initial, identity);
        live.set(sessionId, c);
        c.abort.signal.addEventListener('abort', () => {
          live.delete(sessionId);
          // The gateway marks a session closed just before it calls transport.close / terminate
          // (which carry the status): only if neither follows did the client go away.
          queueMicrotask(() => transport.writable && transport.abandon());
        });
        const gone = () => {
          // A client's deadline (grpc-timeout) ends the stream with DEADLINE_EXCEEDED, as gRPC's would.
          const reason: unknown = ctx.signal.reason;
          if (reason instanceof ConnectError && reason.code === Code.DeadlineExceeded) transport.expire(reason);
          c.markClosed();
        };
        ctx.signal.addEventListener('abort', gone);
        try {
          // Set only now: the first message Connect writes is then this one, whatever came before.
          const slot = ctx.values.get(spliceKey);
          if (slot) slot.transport = transport;
          yield create(ServerBatchSchema, { sessionId });
          // Spliced (binary) responses come back here only once the transport ended: this returns or throws at once.
          yield* transport.messages();
        } finally {
          ctx.signal.removeEventListener('abort', gone);
          c.markClosed();
        }
      },
      async update(req) {
        const c = live.get(req.sessionId);
        if (!c) throw new ConnectError(`no open session "${req.sessionId}" on this gateway: call Subscribe first`, Code.NotFound);
        if (!req.frame) throw new ConnectError('UpdateRequest.frame is missing', Code.InvalidArgument);
        // Through the same path as every transport: rate limit first, then the request.
        const bytes = toBinary(ClientFrameSchema, req.frame);
        o.sessions.receive(c, () => parseProtobufRequest(bytes));
        return {};
      },
      async exchangeInfo() {
        return { symbols: [...o.symbols()].sort(), serverTimeMs: BigInt(Date.now()) };
      },
    });

  // connectNodeAdapter, step by step (the same public pieces), so Subscribe's response can be spliced.
  const router = createConnectRouter({
    readMaxBytes: o.maxFrameBytes,
    acceptCompression: ACCEPT_COMPRESSION,
    compressMinBytes: COMPRESS_MIN_BYTES,
    // Browsers: gRPC-web and Connect. grpc: gRPC over HTTP/2 would need h2c on this port; the gRPC port serves it.
    grpcWeb: true,
    connect: true,
    grpc: false,
  });
  routes(router);
  const handlers = new Map(router.handlers.map((h) => [h.requestPath, h]));
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const uHandler = handlers.get(req.url?.split('?', 2)[0] ?? '');
    if (!uHandler) {
      res.writeHead(404);
      res.end();
      return;
    }
    const slot: SpliceSlot = { transport: undefined };
    const values = createContextValues().set(remoteKey, `${req.socket.remoteAddress}:${req.socket.remotePort}`).set(spliceKey, slot);
    // Text mode (Google's grpc-web runtime's default) is the binary protocol in base64 both ways.
    const text = isGrpcWebText(req.headers['content-type']);
    const uReq = universalRequestFromNodeRequest(req, res, undefined, values);
    uHandler(text ? textRequestAsBinary(uReq) : uReq)
      .then((uRes) => {
        // A session was opened (its id is the first message) and the client reads binary: splice.
        const binary = /\+proto$/.test(uRes.header?.get('content-type') ?? '');
        const spliced = slot.transport && binary ? spliceBatches(uRes, slot.transport) : uRes;
        return universalResponseToNodeResponse(text ? binaryResponseAsText(spliced) : spliced, res);
      })
      .catch((reason: unknown) => {
        // As connectNodeAdapter: a client that went away is no failure.
        if (ConnectError.from(reason).code === Code.Aborted) return;
        console.error(`handler for rpc ${uHandler.method.name} of ${uHandler.service.typeName} failed`, reason);
      });
  };
  // Pages of any origin call this API (the demo after a failover, apps using Google's grpc-web
  // runtime): the preflight allows the headers gRPC-web and Connect clients send (x-grpc-web,
  // x-user-agent, grpc-timeout…) and exposes the status headers a browser would otherwise hide.
  const allowedHeaders = [...cors.allowedHeaders, 'Authorization', 'Accept'];
  const corsHeaders = {
    'access-control-allow-origin': '*',
    'access-control-allow-methods': cors.allowedMethods.join(', '),
    'access-control-allow-headers': allowedHeaders.join(', '),
    'access-control-expose-headers': cors.exposedHeaders.join(', '),
    'access-control-max-age': '7200',
  };
  return {
    get sessionCount() {
      return live.size;
    },
    handle(req, res) {
      for (const [k, v] of Object.entries(corsHeaders)) res.setHeader(k, v);
      if (req.method === 'OPTIONS') {
        res.writeHead(204);
        res.end();
        return;
      }
      handler(req, res);
    },
  };
}
