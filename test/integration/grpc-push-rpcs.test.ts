// PushService's Subscribe and Update on a real gateway's gRPC port (they were
// gRPC-web only): Subscribe opens a session whose first message is its id and
// streams the initial topics' events; Update adds a topic to that session by
// id (its result and events arrive on the stream); bad input gets a clear
// status; a cancelled Subscribe ends the session, so its id no longer works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { ClientFrameSchema, ServerBatchSchema, SubscribeRequestSchema, UpdateRequestSchema, type ServerBatch } from '../../proto/gen/client_pb.js';
import { startCluster, waitFor } from '../helpers/cluster.ts';
import { pushServiceDefinition } from '../../system/gateway/grpc-api.ts';

interface PushClient {
  subscribe(req: Buffer): grpc.ClientReadableStream<Buffer>;
  update(req: Buffer, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): void;
  close(): void;
}

test('gRPC Subscribe + Update: a session by id, topics added by Update, clear errors, cancel ends the session', async (t) => {
  const cluster = await startCluster({ servers: 1, gateways: 1, symbols: 2, rate: 20, gateway: { grpcPort: 0 } });
  t.after(() => cluster.stop());
  const Client = grpc.makeGenericClientConstructor(pushServiceDefinition, 'PushService');
  const client = new Client(cluster.gateways[0]!.urls.grpc!, grpc.credentials.createInsecure()) as unknown as PushClient;
  t.after(() => client.close());

  const update = (sessionId: string, frame: MessageInitShape<typeof ClientFrameSchema> | undefined) =>
    new Promise<void>((resolve, reject) =>
      client.update(Buffer.from(toBinary(UpdateRequestSchema, create(UpdateRequestSchema, { sessionId, frame }))), (err) => (err ? reject(err) : resolve())),
    );

  const batches: ServerBatch[] = [];
  const call = client.subscribe(Buffer.from(toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { topics: ['btcusdt@trade'] }))));
  let status: grpc.StatusObject | undefined;
  call.on('data', (b: Buffer) => batches.push(fromBinary(ServerBatchSchema, b)));
  call.on('status', (s: grpc.StatusObject) => (status = s));
  call.on('error', () => {}); // the status carries it
  const events = (topic: string) => batches.flatMap((b) => b.frames).filter((f) => f.kind.case === 'event' && f.kind.value.topic === topic);

  await waitFor(() => batches.length > 0, 10_000, 'the first message');
  const sessionId = batches[0]!.sessionId;
  assert.match(sessionId, /^[0-9a-f-]{36}$/);
  assert.equal(batches[0]!.frames.length, 0, 'the first message carries only the session id');
  await waitFor(() => events('btcusdt@trade').length >= 3, 10_000, 'events of the initial topic');

  await update(sessionId, { id: 7n, kind: { case: 'subscribe', value: { topics: ['ethusdt@trade'] } } });
  await waitFor(() => batches.some((b) => b.frames.some((f) => f.kind.case === 'result' && f.kind.value.id === 7n)), 10_000, 'the result of the Update');
  await waitFor(() => events('ethusdt@trade').length >= 3, 10_000, 'events of the topic added by Update');
  await update(sessionId, { id: 8n, kind: { case: 'subscribe', value: { topics: ['nosuch@trade'] } } });
  await waitFor(() => batches.some((b) => b.frames.some((f) => f.kind.case === 'error' && f.kind.value.id === 8n)), 10_000, 'the error of a bad Update');

  await assert.rejects(update('no-such-session', { id: 1n, kind: { case: 'ping', value: {} } }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND && /call Subscribe first/.test(e.details));
  await assert.rejects(update(sessionId, undefined), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /frame is missing/.test(e.details));
  await assert.rejects(
    new Promise((resolve, reject) => client.update(Buffer.from([0xff, 0xff]), (err) => (err ? reject(err) : resolve(undefined)))),
    (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && e.details === 'malformed UpdateRequest',
  );

  const bad = client.subscribe(Buffer.from(toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { topics: ['btcusdt@nonsense'] }))));
  const badStatus = await new Promise<grpc.StatusObject>((resolve) => {
    bad.on('status', resolve);
    bad.on('error', () => {});
    bad.on('data', () => {});
  });
  assert.equal(badStatus.code, grpc.status.INVALID_ARGUMENT, badStatus.details);

  // Cancelled by the client: the session is gone, its id refused.
  call.cancel();
  await waitFor(() => status !== undefined, 10_000, 'the cancelled status');
  assert.equal(status!.code, grpc.status.CANCELLED);
  await waitFor(
    () => update(sessionId, { id: 9n, kind: { case: 'ping', value: {} } }).then(() => false, (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND),
    10_000,
    'the session to close',
  );
});
