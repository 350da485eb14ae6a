// PushService's one-way-stream RPCs on the gateway's gRPC port, the same as on
// gRPC-web (grpc-web-api.ts), so every RPC of the definition answers on every
// transport that serves it: Subscribe opens a session and streams its
// ServerBatches (the first carries only session_id), Update sends that
// session's requests, ExchangeInfo names the symbols. Messages pass through
// grpc-js as bytes, as for Stream (grpc-api.ts).
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ClientFrameSchema, ExchangeInfoResponseSchema, ServerBatchSchema, ServerFrameSchema, SubscribeRequestSchema, UpdateRequestSchema } from '../../proto/gen/client_pb.js';
import type { ClientConn } from './client-conn.ts';
import { wrapServerFrame } from './codec.ts';
import { parseProtobufRequest } from './protocol.ts';
import type { Sessions } from './sessions.ts';
import { StreamTransport } from './transport.ts';

const bytes = (b: Buffer) => b;
const method = (name: string, responseStream: boolean) => ({
  path: `/marketpush.v1.PushService/${name}`,
  requestStream: false,
  responseStream,
  requestSerialize: bytes,
  requestDeserialize: bytes,
  responseSerialize: bytes,
  responseDeserialize: bytes,
});

export const sessionRpcDefinitions = {
  subscribe: method('Subscribe', true),
  update: method('Update', false),
  exchangeInfo: method('ExchangeInfo', false),
} satisfies grpc.ServiceDefinition;

const grpcFrame = (kind: Parameters<typeof create<typeof ServerFrameSchema>>[1]) =>
  wrapServerFrame('grpc', toBinary(ServerFrameSchema, create(ServerFrameSchema, kind)));

/** The call's status for a session close code. */
const closeStatus = (code: number): grpc.status =>
  code === 4003 ? grpc.status.UNAUTHENTICATED : code === 4001 || code === 1008 ? grpc.status.RESOURCE_EXHAUSTED : grpc.status.UNAVAILABLE;

/**
 * A gRPC call's response side as a session transport (Stream and Subscribe).
 * `finish()` ends the call normally, once, when the client ended its side.
 */
export function grpcCallTransport(call: grpc.ServerWritableStream<Buffer, Buffer> | grpc.ServerDuplexStream<Buffer, Buffer>): { transport: StreamTransport; finish(): void } {
  let ended = false;
  const transport = new StreamTransport({
    stream: call,
    remote: call.getPeer(),
    heartbeat: () => grpcFrame({ kind: { case: 'heartbeat', value: { serverTimeUs: BigInt(Date.now() * 1000) } } }),
    // The close reason travels as a last error frame, then the call ends with a status naming it.
    closeFrame: (code, reason) => grpcFrame({ kind: { case: 'error', value: { id: 0n, code, msg: reason } } }),
    end: (code, reason) => {
      if (ended) return;
      ended = true;
      if (code === 1000 || code === 1001) call.end();
      else call.emit('error', { code: closeStatus(code), details: reason });
    },
    destroy: () => {
      if (ended) return;
      ended = true;
      call.emit('error', { code: grpc.status.CANCELLED, details: 'connection cut by the gateway' });
    },
  });
  const finish = () => {
    if (ended) return;
    ended = true;
    call.end();
  };
  return { transport, finish };
}

const fail = (code: grpc.status, details: string) => ({ code, details });
const bearerOf = (md: grpc.Metadata) => /^Bearer\s+(.+)$/i.exec(String(md.get('authorization')[0] ?? ''))?.[1];

export function sessionRpcs(o: {
  sessions: Sessions;
  isDraining: () => boolean;
  symbols: () => ReadonlySet<string>;
}): grpc.UntypedServiceImplementation {
  // Sessions opened by Subscribe on this port, by id, for Update.
  const live = new Map<string, ClientConn>();
  return {
    subscribe: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const refuse = (code: grpc.status, details: string) => call.emit('error', fail(code, details));
      const refused = o.isDraining() ? 'gateway draining: ask the router for another gateway' : o.sessions.admit();
      if (refused) return refuse(grpc.status.UNAVAILABLE, refused);
      let topics: string[];
      try {
        topics = fromBinary(SubscribeRequestSchema, call.request).topics;
      } catch {
        return refuse(grpc.status.INVALID_ARGUMENT, 'malformed SubscribeRequest');
      }
      const initial = topics.length ? o.sessions.checkTopics(topics) : [];
      if (typeof initial === 'string') return refuse(grpc.status.INVALID_ARGUMENT, initial);
      void o.sessions.verifyAtConnect(bearerOf(call.metadata)).then((identity) => {
        if (typeof identity === 'string') return refuse(grpc.status.UNAUTHENTICATED, identity);
        if (call.cancelled) return; // the client left while its token was checked
        const sessionId = randomUUID();
        // The id first: the initial topics' snapshots follow it.
        call.write(Buffer.from(toBinary(ServerBatchSchema, create(ServerBatchSchema, { sessionId }))));
        const { transport } = grpcCallTransport(call);
        const c = o.sessions.open(transport, 'grpc', initial, identity);
        live.set(sessionId, c);
        c.abort.signal.addEventListener('abort', () => live.delete(sessionId));
        const gone = () => c.markClosed();
        call.on('cancelled', gone);
        call.on('error', gone);
        call.on('close', gone);
      });
    },
    update: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      let req;
      try {
        req = fromBinary(UpdateRequestSchema, call.request);
      } catch {
        return cb(fail(grpc.status.INVALID_ARGUMENT, 'malformed UpdateRequest'));
      }
      const c = live.get(req.sessionId);
      if (!c) return cb(fail(grpc.status.NOT_FOUND, `no open session "${req.sessionId}" on this gateway: call Subscribe first`));
      if (!req.frame) return cb(fail(grpc.status.INVALID_ARGUMENT, 'UpdateRequest.frame is missing'));
      // Through the same path as every transport: rate limit first, then the request.
      const frame = toBinary(ClientFrameSchema, req.frame);
      o.sessions.receive(c, () => parseProtobufRequest(frame));
      cb(null, Buffer.alloc(0)); // UpdateResponse has no fields
    },
    // ExchangeInfoRequest has no fields: the request is not decoded.
    exchangeInfo: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const info = create(ExchangeInfoResponseSchema, { symbols: [...o.symbols()].sort(), serverTimeMs: BigInt(Date.now()) });
      cb(null, Buffer.from(toBinary(ExchangeInfoResponseSchema, info)));
    },
  };
}
