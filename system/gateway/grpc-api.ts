// gRPC PushService (proto/client.proto) on the gateway's gRPC port. Stream:
// ClientFrames in, ServerBatch messages out, on the same sessions as every
// other protocol. Messages pass through grpc-js as bytes: requests are decoded
// only after the rate limit let them in, and responses are pre-built
// ServerBatch pieces. Subscribe, Update and ExchangeInfo answer as on gRPC-web
// (grpc-session-rpcs.ts); server reflection describes the port's services
// (grpc-reflection.ts).
import * as grpc from '@grpc/grpc-js';
import { parseProtobufRequest } from './protocol.ts';
import type { Sessions } from './sessions.ts';
import type { Identity } from './auth.ts';
import type { TlsMaterial } from '../common/tls.ts';
import { addReflection } from './grpc-reflection.ts';
import { grpcCallTransport, sessionRpcDefinitions, sessionRpcs } from './grpc-session-rpcs.ts';

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
  ...sessionRpcDefinitions,
} satisfies grpc.ServiceDefinition;

export async function startGrpcApi(o: {
  sessions: Sessions;
  host: string;
  port: number;
  maxFrameBytes: number;
  isDraining: () => boolean;
  /** The symbols this gateway serves (ExchangeInfo). */
  symbols: () => ReadonlySet<string>;
  /** More services on the same server (kline history). */
  extraServices?: Array<{ definition: grpc.ServiceDefinition; impl: grpc.UntypedServiceImplementation }>;
  /** gRPC over TLS (server certificate only; clients are not asked for one). */
  tls?: TlsMaterial | undefined;
  /** Close a connection with no call open for this long (config.grpcIdleTimeoutMs). */
  idleTimeoutMs?: number;
  /** Ping every connection this often; destroy one that does not answer in keepaliveTimeoutMs. */
  keepaliveMs?: number;
  keepaliveTimeoutMs?: number;
}): Promise<{ port: number; stop(): Promise<void>; setTls(m: TlsMaterial): void }> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': o.maxFrameBytes,
    'grpc.keepalive_time_ms': o.keepaliveMs ?? 20_000,
    'grpc.keepalive_timeout_ms': o.keepaliveTimeoutMs ?? 10_000,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    // Idle connections (no call open, or never a word) go: GOAWAY, then the socket closes.
    ...(o.idleTimeoutMs ? { 'grpc.max_connection_idle_ms': o.idleTimeoutMs } : {}),
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
    ...sessionRpcs(o),
  });

  for (const s of o.extraServices ?? []) server.addService(s.definition, s.impl);
  addReflection(server);

  const serve = (call: grpc.ServerDuplexStream<Buffer, Buffer>, identity: Identity | undefined) => {
    const { transport, finish } = grpcCallTransport(call);
    const c = o.sessions.open(transport, 'grpc', [], identity);
    call.on('data', (frame: Buffer) => o.sessions.receive(c, () => parseProtobufRequest(frame)));
    call.on('end', () => {
      c.markClosed();
      finish();
    });
    call.on('cancelled', () => c.markClosed());
    call.on('error', () => c.markClosed());
    call.on('close', () => c.markClosed());
  };

  const credentials = o.tls
    ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: o.tls.cert, private_key: o.tls.key }], false)
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${o.host}:${o.port}`, credentials, (err, p) =>
      err ? reject(new Error(`gateway gRPC could not listen on ${o.host}:${o.port}: ${err.message}`)) : resolve(p),
    ),
  );
  return {
    port,
    // A renewed certificate (tls-reload.ts): grpc-js hands it to its HTTP/2 server for new handshakes.
    setTls: (m) =>
      (credentials as unknown as { updateSecureContextOptions(o: object): void }).updateSecureContextOptions({ cert: [m.cert], key: [m.key] }),
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
