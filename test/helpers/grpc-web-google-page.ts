// Browser entry for test/integration/grpc-web-google.test.ts, bundled by
// esbuild: Google's grpc-web runtime (GrpcWebClientBase) calling a gateway
// with hand-written MethodDescriptors whose serialize/deserialize use the
// project's generated @bufbuild/protobuf schemas — the runtime's documented
// API, since protoc-gen-grpc-web is not available. The test drives it through
// window.grpcWebGoogle.
import { GrpcWebClientBase, MethodDescriptor, type RpcError } from 'grpc-web';
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { ExchangeInfoRequestSchema, ExchangeInfoResponseSchema, ServerBatchSchema, SubscribeRequestSchema } from '../../proto/gen/client_pb.js';

type Mode = 'text' | 'binary';

/** A MethodDescriptor for the runtime; the "type" constructors are unused by it, the codec functions do the work. */
function descriptor<I extends DescMessage, O extends DescMessage>(name: string, kind: 'unary' | 'server_streaming', input: I, output: O) {
  class Unused {}
  return new MethodDescriptor<MessageShape<I>, MessageShape<O>>(
    `/marketpush.v1.PushService/${name}`,
    kind,
    Unused as never,
    Unused as never,
    (msg: MessageShape<I>) => toBinary(input, msg),
    (bytes: Uint8Array) => fromBinary(output, bytes),
  );
}

const exchangeInfo = descriptor('ExchangeInfo', 'unary', ExchangeInfoRequestSchema, ExchangeInfoResponseSchema);
const subscribe = descriptor('Subscribe', 'server_streaming', SubscribeRequestSchema, ServerBatchSchema);

const client = (mode: Mode) => new GrpcWebClientBase({ format: mode });

export interface StreamOutcome {
  sessionId: string;
  messages: number;
  events: Array<{ topic: string; seq: string }>;
  status?: { code: number; details: string };
  error?: { code: number; message: string };
}

const api = {
  async exchangeInfo(gateway: string, mode: Mode): Promise<{ symbols: string[]; serverTimeMs: string }> {
    const r = await client(mode).unaryCall(`${gateway}${exchangeInfo.getName()}`, create(ExchangeInfoRequestSchema), {}, exchangeInfo);
    return { symbols: r.symbols, serverTimeMs: String(r.serverTimeMs) };
  },

  /**
   * Subscribe to topics; resolves once `wantEvents` events arrived (the call
   * is then cancelled) or the call ended (status / error), whichever is
   * first. `deadlineMs` becomes the runtime's `deadline` metadata (grpc-timeout).
   */
  subscribe(gateway: string, mode: Mode, topics: string[], wantEvents: number, deadlineMs?: number): Promise<StreamOutcome> {
    const out: StreamOutcome = { sessionId: '', messages: 0, events: [] };
    const metadata: Record<string, string> = deadlineMs ? { deadline: String(Date.now() + deadlineMs) } : {};
    const call = client(mode).serverStreaming(`${gateway}${subscribe.getName()}`, create(SubscribeRequestSchema, { topics }), metadata, subscribe);
    return new Promise((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        resolve(out);
      };
      call.on('data', (batch) => {
        out.messages++;
        if (batch.sessionId) out.sessionId = batch.sessionId;
        for (const f of batch.frames) if (f.kind.case === 'event') out.events.push({ topic: f.kind.value.topic, seq: String(f.kind.value.seq) });
        if (out.events.length >= wantEvents && !done) {
          call.cancel();
          finish();
        }
      });
      call.on('status', (s) => {
        out.status = { code: s.code, details: s.details };
      });
      call.on('error', (e: RpcError) => {
        out.error = { code: e.code, message: e.message };
        finish();
      });
      call.on('end', finish);
    });
  },
};

(globalThis as unknown as { grpcWebGoogle: typeof api }).grpcWebGoogle = api;
