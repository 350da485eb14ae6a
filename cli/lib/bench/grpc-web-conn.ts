// A replayed session's connection over gRPC-web on the gateway's HTTP port
// (Connect's Node transport, HTTP/1.1, as a browser would), as a BenchConn:
// PushService.Subscribe streams the session's frames — 'open' when its first
// message brings the session id — and each request (subscribe, unsubscribe,
// the ping answering a heartbeat) is a unary PushService.Update, one after
// another. 'refused' when Subscribe fails with unavailable from the gateway
// before the session id (admission control, draining); 'close' with the code
// of the last error frame when the stream ends; 'heartbeat' for each
// heartbeat (answered with a ping Update), for the session's liveness watchdog.
import { EventEmitter } from 'node:events';
import { create, createFileRegistry, fromBinary, type DescMessage, type DescMethodStreaming } from '@bufbuild/protobuf';
import { FieldDescriptorProto_Label, FieldDescriptorProto_Type, FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, createClient, type Client, type Transport } from '@connectrpc/connect';
import { createGrpcWebTransport } from '@connectrpc/connect-node';
import { ClientFrameSchema, PushService } from '../../../proto/gen/client_pb.js';
import { HEARTBEAT_TAG, clientFrame, closeCodeOf, type ClientRequest } from './proto-frames.ts';

const OPEN = 1;

/**
 * ServerBatch as the bench reads it: the same fields, but frames as bytes, so
 * each ServerFrame arrives as a view into the response (no decode) for the meter.
 */
const RawServerBatchSchema = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: 'pushctl/bench/raw_server_batch.proto',
    package: 'pushctl.bench',
    syntax: 'proto3',
    messageType: [
      {
        name: 'RawServerBatch',
        field: [
          { name: 'frames', jsonName: 'frames', number: 1, type: FieldDescriptorProto_Type.BYTES, label: FieldDescriptorProto_Label.REPEATED },
          { name: 'session_id', jsonName: 'sessionId', number: 2, type: FieldDescriptorProto_Type.STRING, label: FieldDescriptorProto_Label.OPTIONAL },
        ],
      },
    ],
  }),
  () => undefined,
).getMessage('pushctl.bench.RawServerBatch')!;

/** PushService.Subscribe (same path, same request) read as RawServerBatch. */
const subscribeRaw = { ...PushService.method.subscribe, output: RawServerBatchSchema } as unknown as DescMethodStreaming<
  typeof PushService.method.subscribe.input,
  DescMessage
>;

interface RawBatch {
  frames: Uint8Array[];
  sessionId: string;
}

// One transport per gateway: stateless over HTTP/1.1, its agent keeps Update sockets alive across sessions.
const transports = new Map<string, { transport: Transport; client: Client<typeof PushService> }>();
function forGateway(baseUrl: string) {
  let t = transports.get(baseUrl);
  if (!t) {
    const transport = createGrpcWebTransport({ baseUrl, httpVersion: '1.1' });
    transports.set(baseUrl, (t = { transport, client: createClient(PushService, transport) }));
  }
  return t;
}

const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export class GrpcWebConn extends EventEmitter {
  readyState = 0;
  #abort = new AbortController();
  #client: Client<typeof PushService>;
  #sessionId = '';
  #closeCode = 1006;
  #updates: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout;

  constructor(baseUrl: string, initialTopics: string[], timeoutMs = 10_000) {
    super();
    const gw = forGateway(baseUrl.replace(/\/$/, ''));
    this.#client = gw.client;
    this.#timer = setTimeout(() => {
      if (this.readyState === OPEN) return;
      this.#end();
      this.emit('error', new Error('connect timeout'));
    }, timeoutMs);
    void this.#read(gw.transport, initialTopics);
  }

  async #read(transport: Transport, topics: string[]): Promise<void> {
    let failure: ConnectError | undefined;
    try {
      const res = await transport.stream(subscribeRaw, this.#abort.signal, undefined, undefined, (async function* () {
        yield { topics };
      })());
      for await (const batch of res.message as AsyncIterable<RawBatch>) {
        if (batch.sessionId && this.readyState === 0) {
          this.#sessionId = batch.sessionId;
          this.readyState = OPEN;
          clearTimeout(this.#timer);
          this.emit('open');
        }
        for (const f of batch.frames) this.#onFrame(asBuffer(f));
      }
    } catch (err) {
      failure = ConnectError.from(err);
    }
    this.#settle(failure);
  }

  #onFrame(frame: Buffer): void {
    if (frame[0] === HEARTBEAT_TAG) {
      this.#update('ping', 0, []);
      this.emit('heartbeat');
      return;
    }
    // A close code travels as a last error frame, then the stream ends.
    const code = closeCodeOf(frame);
    if (code !== undefined) {
      this.#closeCode = code;
      return;
    }
    this.emit('message', frame, true);
  }

  /** The stream ended: a close when open, a refusal or an error before, nothing after close()/terminate(). */
  #settle(failure: ConnectError | undefined): void {
    const state = this.readyState;
    this.#end();
    if (state === OPEN) this.emit('close', !failure && this.#closeCode === 1006 ? 1000 : this.#closeCode);
    else if (state === 0) {
      // The gateway's own unavailable (an HTTP 200 with a grpc-status) has headers; a failed connection has none.
      if (failure?.code === Code.Unavailable && [...failure.metadata.keys()].length > 0) this.emit('refused', 503);
      else this.emit('error', new Error(failure ? `gRPC-web ${Code[failure.code]}: ${failure.rawMessage}` : 'gRPC-web: Subscribe ended before the session id'));
    }
  }

  #end(): void {
    clearTimeout(this.#timer);
    this.readyState = 3;
    this.#abort.abort();
  }

  /** Updates go one after another: two in flight could reach the gateway in either order. */
  #update(kind: ClientRequest, id: number, topics: string[]): void {
    if (this.readyState !== OPEN) return;
    const frame = fromBinary(ClientFrameSchema, clientFrame(kind, id, topics));
    this.#updates = this.#updates.then(() =>
      this.readyState !== OPEN
        ? undefined
        : this.#client.update({ sessionId: this.#sessionId, frame }, { signal: this.#abort.signal }).catch((err: unknown) => {
            if (this.readyState !== OPEN) return; // the session ended meanwhile
            const e = ConnectError.from(err);
            this.emit('warning', `gRPC-web Update (${kind}) failed: ${Code[e.code]} ${e.rawMessage}`);
          }),
    );
  }

  request(kind: 'subscribe' | 'unsubscribe', id: number, topics: string[]): void {
    this.#update(kind, id, topics);
  }

  /** Browsers have no goodbye on gRPC-web: the client cancels the stream, the gateway sees it go. */
  close(): void {
    this.terminate();
  }

  terminate(): void {
    if (this.readyState === 3) return;
    this.#end();
  }
}
