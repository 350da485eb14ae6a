// A replayed session's connection over gRPC PushService.Stream (bidi, bytes
// through grpc-js with the gateway's own method table), as a BenchConn:
// 'open' once the gateway answered the initial subscribe (or a ping, with no
// initial topics), 'message' per ServerFrame (each ServerBatch split without
// a decode), 'refused' when the gateway answered UNAVAILABLE before anything
// arrived (admission control, draining), 'close' with the code of the last
// error frame once the call's status came. Heartbeats are answered with a
// ClientFrame ping, as the protocol requires, and reported ('heartbeat') for
// the session's liveness watchdog.
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { getCACertificates } from 'node:tls';
import { pushServiceDefinition } from '../../../system/gateway/grpc-api.ts';
import { HEARTBEAT_TAG, clientFrame, closeCodeOf, forEachBatchFrame } from './proto-frames.ts';

const OPEN = 1;

const PushClient = grpc.makeGenericClientConstructor(pushServiceDefinition, 'PushService');

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // One HTTP/2 connection per session, as separate clients have: grpc-js would otherwise share one per address.
  'grpc.use_local_subchannel_pool': 1,
  // A refusal reaches the session, which retries through the router like every protocol.
  'grpc.enable_retries': 0,
  // Per-channel call tracing the bench never reads: 200 channels' worth is the agent's cost, not the gateway's.
  'grpc.enable_channelz': 0,
};

let sslCredentials: grpc.ChannelCredentials | undefined;
/**
 * The process's default CAs (pushctl adds the cluster's certificate to them), handed to grpc-js explicitly:
 * its createSsl() without roots did not see tls.setDefaultCACertificates (Node 24, grpc-js 1.14: "self-signed
 * certificate"). Built once: one secure context for every session, not a parse of every root per connection.
 */
function tlsCredentials(): grpc.ChannelCredentials {
  sslCredentials ??= grpc.credentials.createSsl(Buffer.from(getCACertificates('default').join('\n')));
  return sslCredentials;
}

export class GrpcConn extends EventEmitter {
  readyState = 0;
  #client: grpc.Client;
  #call: grpc.ClientDuplexStream<Buffer, Buffer>;
  #closeCode = 1006;
  #timer: NodeJS.Timeout;

  constructor(address: string, initialTopics: string[], timeoutMs = 10_000) {
    super();
    // grpcs://host:port: gRPC over TLS.
    const secure = address.startsWith('grpcs://');
    this.#client = new PushClient(address.replace(/^grpcs?:\/\//, ''), secure ? tlsCredentials() : grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    this.#call = (this.#client as unknown as { stream(): grpc.ClientDuplexStream<Buffer, Buffer> }).stream();
    // The first reply opens the session: the initial subscribe's result, or the pong.
    this.#call.write(Buffer.from(initialTopics.length ? clientFrame('subscribe', 0, initialTopics) : clientFrame('ping', 0)));
    this.#timer = setTimeout(() => {
      if (this.readyState === OPEN) return;
      this.#end();
      this.emit('error', new Error('connect timeout'));
    }, timeoutMs);
    this.#call.on('data', (batch: Buffer) => {
      try {
        forEachBatchFrame(batch, (f) => this.#onFrame(f));
      } catch (err) {
        this.emit('warning', `gRPC: ${(err as Error).message}`);
      }
    });
    // The status is the call's outcome ('error' repeats it for non-OK ones).
    this.#call.on('error', () => {});
    this.#call.on('status', (st: grpc.StatusObject) => this.#onStatus(st));
  }

  #onFrame(frame: Buffer): void {
    if (frame[0] === HEARTBEAT_TAG) {
      if (this.readyState <= OPEN) this.#call.write(Buffer.from(clientFrame('ping', 0)));
      this.emit('heartbeat');
      return;
    }
    // A close code travels as a last error frame, then the status.
    const code = closeCodeOf(frame);
    if (code !== undefined) {
      this.#closeCode = code;
      return;
    }
    if (this.readyState === 0) {
      this.readyState = OPEN;
      clearTimeout(this.#timer);
      this.emit('open');
    }
    this.emit('message', frame, true);
  }

  #onStatus(st: grpc.StatusObject): void {
    const state = this.readyState;
    // Whether the gateway itself answered (its refusal) or no connection was made at all.
    const reached = this.#client.getChannel().getConnectivityState(false) === grpc.connectivityState.READY;
    this.#end();
    if (state === OPEN) this.emit('close', st.code === grpc.status.OK && this.#closeCode === 1006 ? 1000 : this.#closeCode);
    else if (state === 0) {
      if (st.code === grpc.status.UNAVAILABLE && reached) this.emit('refused', 503);
      else this.emit('error', new Error(`gRPC ${grpc.status[st.code]}: ${st.details}`));
    }
  }

  /** Ends the call and the channel (its connection and timers). */
  #end(): void {
    clearTimeout(this.#timer);
    this.readyState = 3;
    this.#call.cancel();
    this.#client.close();
  }

  request(kind: 'subscribe' | 'unsubscribe', id: number, topics: string[]): void {
    this.#call.write(Buffer.from(clientFrame(kind, id, topics)));
  }

  /** A client's goodbye: half-closes the stream; the gateway ends the call. */
  close(): void {
    if (this.readyState !== OPEN) return this.terminate();
    this.readyState = 2;
    this.#call.end();
    // The status (or this bound) closes the channel.
    this.#timer = setTimeout(() => this.#end(), 5_000);
  }

  terminate(): void {
    if (this.readyState === 3) return;
    this.#end();
  }
}
