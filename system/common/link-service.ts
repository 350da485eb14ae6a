// The gRPC service between gateways and servers, defined by hand so that
// LinkBatch bytes pass through grpc-js untouched (see link-codec.ts).
import * as grpc from '@grpc/grpc-js';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { LinkRequestSchema, type LinkRequest } from '../../proto/gen/internal_pb.js';

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
