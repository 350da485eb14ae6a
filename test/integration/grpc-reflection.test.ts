// gRPC server reflection on a real gateway's gRPC port, as grpcurl or Postman
// use it: a client built only from the reflection protocol's own .proto (the
// one @grpc/reflection ships) lists the services (v1 and v1alpha), fetches
// the file descriptors of PushService and describes its methods from them
// alone; and ExchangeInfo answers on gRPC (it used to be UNIMPLEMENTED).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { createFileRegistry, type DescMethod } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { ExchangeInfoResponseSchema } from '../../proto/gen/client_pb.js';
import { startCluster } from '../helpers/cluster.ts';
import { pushServiceDefinition } from '../../system/gateway/grpc-api.ts';

const require = createRequire(import.meta.url);
const reflectionProto = (version: 'v1' | 'v1alpha') =>
  require.resolve(`@grpc/reflection/build/proto/grpc/reflection/${version}/reflection.proto`);

interface ReflectionResponse {
  listServicesResponse?: { service: Array<{ name: string }> };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}

/** One request on a ServerReflectionInfo stream, and its answer. */
function reflect(address: string, version: 'v1' | 'v1alpha', request: Record<string, string>): Promise<ReflectionResponse> {
  const def = protoLoader.loadSync(reflectionProto(version), { keepCase: false, longs: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { reflection: Record<string, { ServerReflection: grpc.ServiceClientConstructor }> } };
  const client = new pkg.grpc.reflection[version]!.ServerReflection(address, grpc.credentials.createInsecure());
  return new Promise<ReflectionResponse>((resolve, reject) => {
    const call = client.ServerReflectionInfo() as grpc.ClientDuplexStream<unknown, ReflectionResponse>;
    call.on('data', (r: ReflectionResponse) => {
      resolve(r);
      call.end();
    });
    call.on('error', reject);
    call.write({ host: '', ...request });
  }).finally(() => client.close());
}

const kind = (m: DescMethod) => m.methodKind;

test('gRPC server reflection lists and describes PushService and KlineHistory; ExchangeInfo answers on gRPC', async (t) => {
  const cluster = await startCluster({ servers: 1, gateways: 1, symbols: 2, rate: 20, gateway: { grpcPort: 0 } });
  t.after(() => cluster.stop());
  const address = cluster.gateways[0]!.urls.grpc!;
  assert.ok(address, 'the gateway serves gRPC');

  for (const version of ['v1', 'v1alpha'] as const) {
    const list = await reflect(address, version, { listServices: '' });
    const names = list.listServicesResponse?.service.map((s) => s.name) ?? [];
    assert.ok(names.includes('marketpush.v1.PushService'), `${version} lists PushService: ${names}`);
    assert.ok(names.includes('marketpush.v1.KlineHistory'), `${version} lists KlineHistory: ${names}`);
  }

  // Describe PushService from the descriptors reflection returns, and nothing else.
  const files = await reflect(address, 'v1', { fileContainingSymbol: 'marketpush.v1.PushService' });
  const protos = files.fileDescriptorResponse?.fileDescriptorProto ?? [];
  assert.ok(protos.length >= 2, `client.proto and what it imports: ${JSON.stringify(files.errorResponse)}`);
  // The file first, then its imports (as reflection sends them): resolved by name.
  const [main, ...imports] = protos.map((b) => fromBinary(FileDescriptorProtoSchema, b));
  assert.equal(main!.name, 'client.proto');
  const registry = createFileRegistry(main!, (name) => imports.find((f) => f.name === name));
  const push = registry.getService('marketpush.v1.PushService');
  assert.ok(push, 'PushService described');
  const methods = Object.fromEntries(push.methods.map((m) => [m.name, `${kind(m)} ${m.input.typeName} -> ${m.output.typeName}`]));
  assert.deepEqual(methods, {
    Stream: 'bidi_streaming marketpush.v1.ClientFrame -> marketpush.v1.ServerBatch',
    Subscribe: 'server_streaming marketpush.v1.SubscribeRequest -> marketpush.v1.ServerBatch',
    Update: 'unary marketpush.v1.UpdateRequest -> marketpush.v1.UpdateResponse',
    ExchangeInfo: 'unary marketpush.v1.ExchangeInfoRequest -> marketpush.v1.ExchangeInfoResponse',
  });
  // Messages from the imported market.proto resolve too (an Event inside a ServerFrame).
  const event = registry.getMessage('marketpush.v1.ServerFrame')?.fields.find((f) => f.name === 'event');
  assert.equal(event?.fieldKind === 'message' ? event.message.typeName : undefined, 'marketpush.v1.Event');

  const unknown = await reflect(address, 'v1', { fileContainingSymbol: 'marketpush.v1.NoSuchService' });
  assert.equal(unknown.errorResponse?.errorCode, grpc.status.NOT_FOUND);

  // ExchangeInfo over gRPC, encoded with the reflected schema (as a generic tool would).
  const Client = grpc.makeGenericClientConstructor(pushServiceDefinition, 'PushService');
  const client = new Client(address, grpc.credentials.createInsecure()) as unknown as {
    exchangeInfo(req: Buffer, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): void;
    close(): void;
  };
  t.after(() => client.close());
  const request = registry.getMessage('marketpush.v1.ExchangeInfoRequest')!;
  const reply = await new Promise<Buffer>((resolve, reject) =>
    client.exchangeInfo(Buffer.from(toBinary(request, create(request))), (err, res) => (err ? reject(err) : resolve(res!))),
  );
  const info = fromBinary(ExchangeInfoResponseSchema, reply);
  assert.ok(info.symbols.includes('btcusdt') && info.symbols.includes('ethusdt'), `symbols: ${info.symbols}`);
  assert.ok(info.serverTimeMs > 0n);
});
