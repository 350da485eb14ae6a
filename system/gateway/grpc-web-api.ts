// gRPC-web and Connect on the gateway's HTTP port, served by Connect's Node
// adapter (no envoy, no sidecar): PushService.Subscribe streams one session's
// frames to the client, PushService.Update carries that session's requests
// (browsers cannot stream client→server), ExchangeInfo answers one-off
// queries. Sessions are the same as every other protocol's (Sessions.open),
// so queues, conflation, resync, rate limits and heartbeats are shared.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { create, toBinary } from '@bufbuild/protobuf';
import { Code, ConnectError, cors, createContextKey, createContextValues, type ConnectRouter } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { ClientFrameSchema, PushService, ServerBatchSchema, ServerFrameSchema, type ServerBatch } from '../../proto/gen/client_pb.js';
import type { ClientConn } from './client-conn.ts';
import { wrapServerFrame } from './codec.ts';
import { parseProtobufRequest } from './protocol.ts';
import type { Sessions } from './sessions.ts';
import type { ClientTransport } from './transport.ts';

/** URL path prefix of every PushService method (Connect, gRPC-web). */
export const PUSH_SERVICE_PATH = `/${PushService.typeName}/`;

const remoteKey = createContextKey('grpc-web', { description: 'peer address' });

const batchPiece = (kind: Parameters<typeof create<typeof ServerFrameSchema>>[1]) =>
  wrapServerFrame('grpc', toBinary(ServerFrameSchema, create(ServerFrameSchema, kind)));

/**
 * A ServerBatch whose frames are already encoded: the pieces (field 1 around
 * a ServerFrame, as format 'grpc' builds them) ride as one unknown-field entry,
 * which toBinary writes out verbatim — events are framed once, never re-encoded.
 */
function preEncodedBatch(pieces: Buffer): ServerBatch {
  const batch = create(ServerBatchSchema);
  // Each piece starts with the tag of field 1, length-delimited (0x0a); the writer re-emits that tag.
  batch.$unknown = [{ no: 1, wireType: 2, data: pieces.subarray(1) }];
  return batch;
}

/** The call's status for a session close code (as gRPC's). */
const closeStatus = (code: number): Code =>
  code === 4003 ? Code.Unauthenticated : code === 4001 || code === 1008 ? Code.ResourceExhausted : Code.Unavailable;

/**
 * The response side of one Subscribe call as a ClientTransport. Bytes wait in
 * a queue until Connect pulls the next message; Connect pulls only after the
 * previous one was written to the socket, so the queue backs up exactly when
 * the client (or its network) does, and 'drain' fires when Connect asks for
 * more and nothing is left — the same contract as a Node socket.
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

  /** Everything queued since the last pull, as one ServerBatch; ends (or throws) once closed and emptied. */
  async *messages(): AsyncGenerator<ServerBatch> {
    for (;;) {
      if (this.#queue.length === 0 && this.#needDrain) {
        this.#needDrain = false;
        const cbs = this.#drainCbs;
        this.#drainCbs = [];
        for (const cb of cbs) cb(); // may write again at once
      }
      if (this.#queue.length > 0) {
        const pieces = this.#queue.length === 1 ? this.#queue[0]! : Buffer.concat(this.#queue, this.#bytes);
        this.#queue = [];
        this.#bytes = 0;
        yield preEncodedBatch(pieces);
        continue;
      }
      if (this.#end) {
        if (this.#end.error) throw this.#end.error;
        return;
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }
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
        const gone = () => c.markClosed();
        ctx.signal.addEventListener('abort', gone);
        try {
          yield create(ServerBatchSchema, { sessionId });
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

  const handler = connectNodeAdapter({
    routes,
    contextValues: (req) => createContextValues().set(remoteKey, `${req.socket.remoteAddress}:${req.socket.remotePort}`),
    readMaxBytes: o.maxFrameBytes,
    // Browsers: gRPC-web and Connect. grpc: gRPC over HTTP/2 would need h2c on this port; the gRPC port serves it.
    grpcWeb: true,
    connect: true,
    grpc: false,
  });
  // Pages from another gateway (the demo after a failover) call this one.
  const corsHeaders = {
    'access-control-allow-origin': '*',
    'access-control-allow-methods': cors.allowedMethods.join(', '),
    'access-control-allow-headers': [...cors.allowedHeaders, 'Authorization'].join(', '),
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
