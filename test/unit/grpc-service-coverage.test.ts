// Every RPC of the service definitions has a handler on the gateway's gRPC
// port with the definition's path and stream kinds, and the descriptor set
// reflection serves (built by `npm run gen`) describes the same methods.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, createFileRegistry, fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import type { DescService } from '@bufbuild/protobuf';
import { PushService } from '../../proto/gen/client_pb.js';
import { KlineHistory } from '../../proto/gen/history_pb.js';
import { pushServiceDefinition } from '../../system/gateway/grpc-api.ts';
import { klineHistoryDefinition } from '../../system/history/grpc-klines.ts';
import { apiFileDescriptors, REFLECTED_SERVICES } from '../../system/gateway/grpc-reflection.ts';

type Handlers = Record<string, { path: string; requestStream: boolean; responseStream: boolean }>;

const shape = (service: DescService) =>
  service.methods.map((m) => ({
    path: `/${service.typeName}/${m.name}`,
    requestStream: m.methodKind === 'client_streaming' || m.methodKind === 'bidi_streaming',
    responseStream: m.methodKind === 'server_streaming' || m.methodKind === 'bidi_streaming',
  }));
const served = (handlers: Handlers) => Object.values(handlers).map(({ path, requestStream, responseStream }) => ({ path, requestStream, responseStream }));
const byPath = (a: { path: string }, b: { path: string }) => a.path.localeCompare(b.path);

test('every PushService and KlineHistory RPC is served on the gRPC port, with its stream kinds', () => {
  assert.deepEqual(served(pushServiceDefinition).sort(byPath), shape(PushService).sort(byPath));
  assert.deepEqual(served(klineHistoryDefinition).sort(byPath), shape(KlineHistory).sort(byPath));
});

test('the reflection descriptor set describes the services as generated', () => {
  const files = apiFileDescriptors().map((b) => fromBinary(FileDescriptorProtoSchema, b));
  assert.deepEqual(files.map((f) => f.name).sort(), ['client.proto', 'history.proto', 'market.proto'], 'the client API only, not internal.proto');
  const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: files }));
  for (const [name, generated] of [[PushService.typeName, PushService], [KlineHistory.typeName, KlineHistory]] as const) {
    assert.ok(REFLECTED_SERVICES.includes(name));
    const reflected = registry.getService(name);
    assert.ok(reflected, `${name} in the descriptor set`);
    assert.deepEqual(shape(reflected).sort(byPath), shape(generated).sort(byPath));
  }
  // Comments kept, for tools that show them (grpcurl describe).
  assert.ok(files.find((f) => f.name === 'client.proto')?.sourceCodeInfo?.location.some((l) => /Subscribe opens\s+a session/.test(l.leadingComments)));
});
