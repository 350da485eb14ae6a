// The gRPC service between gateways and servers, defined by hand so that
// LinkBatch bytes pass through grpc-js untouched (see link-codec.ts).
import * as grpc from '@grpc/grpc-js';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { LinkRequestSchema, type LinkRequest } from '../../proto/gen/internal_pb.js';
import { bearerOf, sameSecret, type ClusterSecrets } from './secrets.ts';

const asBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

export const linkService = {
  attach: {
    path: '/marketpush.v1.ServerLink/Attach',
    requestStream: true,
    responseStream: true,
    requestSerialize: (m: LinkRequest) => asBuffer(toBinary(LinkRequestSchema, m)),
    requestDeserialize: (b: Buffer) => fromBinary(LinkRequestSchema, b),
    responseSerialize: (b: Uint8Array) => asBuffer(b),
    responseDeserialize: (b: Buffer) => b as Uint8Array,
  },
} satisfies grpc.ServiceDefinition;

export type AttachCall = grpc.ServerDuplexStream<LinkRequest, Uint8Array>;
export type AttachClientCall = grpc.ClientDuplexStream<LinkRequest, Uint8Array>;

export const LinkClient = grpc.makeGenericClientConstructor(linkService, 'ServerLink');

/** Keepalive both ways so a half-open link (dead peer, partition) is noticed in seconds. */
export const LINK_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': 5_000,
  'grpc.keepalive_timeout_ms': 3_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 4_000,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
};

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/**
 * Every call on a server's link port must carry the cluster token
 * (`authorization: Bearer <clusterToken>` metadata); any other call ends at
 * once with UNAUTHENTICATED, before a handler sees it. A server started
 * without secrets has no token to check: it takes links from loopback only
 * (as its admin listener takes cluster calls), and PERMISSION_DENIED otherwise.
 */
export function linkAuthInterceptor(secrets: ClusterSecrets | undefined, onRefused: (why: string, peer: string) => void = () => {}): grpc.ServerInterceptor {
  const refusal = (md: grpc.Metadata, remote: string | undefined): { code: grpc.status; details: string } | undefined => {
    if (!secrets) {
      return LOOPBACK.has(remote ?? '') ? undefined : { code: grpc.status.PERMISSION_DENIED, details: 'this server has no cluster credential configured: it takes links from loopback only' };
    }
    const presented = bearerOf(String(md.get('authorization')[0] ?? ''));
    if (presented === undefined) return { code: grpc.status.UNAUTHENTICATED, details: 'credential required: send the cluster token as authorization: Bearer <token>' };
    if (!sameSecret(presented, secrets.clusterToken)) return { code: grpc.status.UNAUTHENTICATED, details: 'credential not accepted' };
    return undefined;
  };
  return (_method, call) =>
    new grpc.ServerInterceptingCall(
      call,
      new grpc.ResponderBuilder()
        .withStart((next) => {
          next(
            new grpc.ServerListenerBuilder()
              .withOnReceiveMetadata((md, mdNext) => {
                const refused = refusal(md, call.getConnectionInfo().remoteAddress);
                if (!refused) return mdNext(md);
                onRefused(refused.details, call.getPeer());
                call.sendStatus({ ...refused, metadata: new grpc.Metadata() });
              })
              .build(),
          );
        })
        .build(),
    );
}

