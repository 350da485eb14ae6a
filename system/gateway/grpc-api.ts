// gRPC PushService.Stream (proto/client.proto): ClientFrames in,
// ServerBatch messages out, on the same sessions as every other protocol.
// Messages pass through grpc-js as bytes: requests are decoded only after
// the rate limit let them in, and responses are pre-built ServerBatch pieces.
import * as grpc from '@grpc/grpc-js';
import { create, toBinary } from '@bufbuild/protobuf';
import { ServerFrameSchema } from '../../proto/gen/client_pb.js';
import { wrapServerFrame } from './codec.ts';
import { parseProtobufRequest } from './protocol.ts';
import type { Sessions } from './sessions.ts';
import { StreamTransport } from './transport.ts';
import type { Identity } from './auth.ts';

const bytes = (b: Buffer) => b;

export const pushServiceDefinition = {
  stream: {
    path: '/marketpush.v1.PushService/Stream',
    requestStream: true,
    responseStream: true,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  },
} satisfies grpc.ServiceDefinition;

const grpcFrame = (kind: Parameters<typeof create<typeof ServerFrameSchema>>[1]) =>
  wrapServerFrame('grpc', toBinary(ServerFrameSchema, create(ServerFrameSchema, kind)));

export async function startGrpcApi(o: {
  sessions: Sessions;
  host: string;
  port: number;
  maxFrameBytes: number;
  isDraining: () => boolean;
  /** More services on the same server (kline history). */
  extraServices?: Array<{ definition: grpc.ServiceDefinition; impl: grpc.UntypedServiceImplementation }>;
}): Promise<{ port: number; stop(): Promise<void> }> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': o.maxFrameBytes,
    'grpc.keepalive_time_ms': 20_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  });
  server.addService(pushServiceDefinition, {
    stream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      const refused = o.isDraining() ? 'gateway draining: ask the router for another gateway' : o.sessions.admit();
      if (refused) {
        call.emit('error', { code: grpc.status.UNAVAILABLE, details: refused });
        return;
      }
      const bearer = /^Bearer\s+(.+)$/i.exec(String(call.metadata.get('authorization')[0] ?? ''))?.[1];
      // Requests sent while the token is checked wait in the call's buffer.
      call.pause();
      void o.sessions.verifyAtConnect(bearer).then((identity) => {
        if (typeof identity === 'string') {
          call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: identity });
          return;
        }
        serve(call, identity);
        call.resume();
      });
    },
  });

  for (const s of o.extraServices ?? []) server.addService(s.definition, s.impl);

  const serve = (call: grpc.ServerDuplexStream<Buffer, Buffer>, identity: Identity | undefined) => {
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
        else {
          const status = code === 4003 ? grpc.status.UNAUTHENTICATED : code === 4001 || code === 1008 ? grpc.status.RESOURCE_EXHAUSTED : grpc.status.UNAVAILABLE;
          call.emit('error', { code: status, details: reason });
        }
      },
      destroy: () => {
        if (ended) return;
        ended = true;
        call.emit('error', { code: grpc.status.CANCELLED, details: 'connection cut by the gateway' });
      },
    });
    const c = o.sessions.open(transport, 'grpc', [], identity);
    call.on('data', (frame: Buffer) => o.sessions.receive(c, () => parseProtobufRequest(frame)));
    call.on('end', () => {
      c.markClosed();
      if (!ended) {
        ended = true;
        call.end();
      }
    });
    call.on('cancelled', () => c.markClosed());
    call.on('error', () => c.markClosed());
    call.on('close', () => c.markClosed());
  };

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${o.host}:${o.port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(new Error(`gateway gRPC could not listen on ${o.host}:${o.port}: ${err.message}`)) : resolve(p),
    ),
  );
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
