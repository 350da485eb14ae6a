// gRPC server reflection (grpc.reflection.v1 and v1alpha, by @grpc/reflection)
// for the gateway's gRPC port, so grpcurl, Postman and other generic tools
// discover PushService and KlineHistory without the .proto files. The API is
// described by the FileDescriptorSet `npm run gen` builds with buf
// (proto/gen/api-descriptors.binpb: the client-facing files, comments kept).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { PushService } from '../../proto/gen/client_pb.js';
import { KlineHistory } from '../../proto/gen/history_pb.js';

export const API_DESCRIPTORS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto', 'gen', 'api-descriptors.binpb');

/** The services reflection describes: those the gateway's gRPC port serves. */
export const REFLECTED_SERVICES = [PushService.typeName, KlineHistory.typeName];

let descriptors: Buffer[] | undefined;

/** The encoded FileDescriptorProtos of the client API, read once per process. */
export function apiFileDescriptors(): Buffer[] {
  if (!descriptors) {
    let set;
    try {
      set = fromBinary(FileDescriptorSetSchema, readFileSync(API_DESCRIPTORS));
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unreadable';
      throw new Error(`gRPC reflection: ${API_DESCRIPTORS} is ${why}; run \`npm run gen\``);
    }
    descriptors = set.file.map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f)));
  }
  return descriptors;
}

/** Adds the reflection services (v1 and v1alpha) to a gRPC server. */
export function addReflection(server: Pick<grpc.Server, 'addService'>): void {
  // ReflectionService reads only the fileDescriptorProtos of each entry of a
  // proto-loader package definition: one entry carrying the whole set is enough,
  // and keeps the files as buf built them (proto-loader would merge and rename them).
  const pkg = { api: { fileDescriptorProtos: apiFileDescriptors() } } as unknown as PackageDefinition;
  new ReflectionService(pkg, { services: REFLECTED_SERVICES }).addToServer(server);
}
