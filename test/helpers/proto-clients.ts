// One test client shape over every client protocol of the gateway, so the
// conformance suite runs the same cases against each: WebSocket JSON,
// WebSocket protobuf, raw TCP (length-prefixed frames), gRPC PushService and
// gRPC-web (PushService.Subscribe + Update through Connect's grpc-web transport).
import { connect as netConnect, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { pushServiceDefinition } from '../../system/gateway/grpc-api.ts';
import WebSocket from 'ws';
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { ClientFrameSchema, PushService, ServerBatchSchema, ServerFrameSchema, type ServerFrame } from '../../proto/gen/client_pb.js';
import { Waiters } from './waiters.ts';

export type Cmd =
  | { kind: 'subscribe' | 'unsubscribe'; id: number; topics: string[] }
  | { kind: 'list'; id: number }
  | { kind: 'ping'; id: number };

export interface Received {
  events: Array<{ topic: string; seq: number; snapshot: boolean }>;
  results: Map<number, string[] | null>;
  errors: Array<{ id: number | null; code: number; msg: string }>;
  /** at: how many events had arrived when the notice came */
  resyncs: Array<{ topic: string; reason: string; at: number }>;
  heartbeats: number;
}

export abstract class ProtoClient {
  readonly r: Received = { events: [], results: new Map(), errors: [], resyncs: [], heartbeats: 0 };
  closed = false;
  closeInfo = '';
  #waiters = new Waiters();
  /** Answer the gateway's heartbeat frames with a ping (TCP, gRPC, gRPC-web); off to test the timeout. */
  protected answerHeartbeats = false;
  abstract readonly name: string;
  abstract open(): Promise<void>;
  abstract send(cmd: Cmd): void;
  /** Bytes the server cannot decode (not JSON / not a ClientFrame). */
  abstract sendGarbage(): void;
  abstract close(): void;
  /** Stop / restart reading, as a client that falls behind. */
  abstract pause(): void;
  abstract resume(): void;

  seqs(topic: string): number[] {
    const out: number[] = [];
    for (const e of this.r.events) if (e.topic === topic && (!e.snapshot || out.length === 0 || out.at(-1)! < e.seq)) out.push(e.seq);
    return out;
  }

  protected wake(): void {
    this.#waiters.wake();
  }

  protected ended(info: string): void {
    this.closed = true;
    this.closeInfo = info;
    this.wake();
  }

  protected onFrame(f: ServerFrame): void {
    const k = f.kind;
    if (k.case === 'event') this.r.events.push({ topic: k.value.topic, seq: Number(k.value.seq), snapshot: k.value.payload.case === 'depthSnapshot' });
    else if (k.case === 'result') this.r.results.set(Number(k.value.id), k.value.topics.length ? [...k.value.topics] : null);
    else if (k.case === 'error') this.r.errors.push({ id: Number(k.value.id), code: k.value.code, msg: k.value.msg });
    else if (k.case === 'resync') this.r.resyncs.push({ topic: k.value.topic, reason: k.value.reason, at: this.r.events.length });
    else if (k.case === 'heartbeat') {
      this.r.heartbeats++;
      if (this.answerHeartbeats) this.send({ kind: 'ping', id: 0 });
    }
    this.wake();
  }

  waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    return this.#waiters.until(cond, timeoutMs, () => new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}`));
  }
}

/** A client of a host:port address (TCP, gRPC), answering heartbeats unless told not to. */
abstract class AddressClient extends ProtoClient {
  protected readonly addr: string;
  constructor(addr: string, answerHeartbeats = true) {
    super();
    this.addr = addr;
    this.answerHeartbeats = answerHeartbeats;
  }
}

const clientFrame = (cmd: Cmd) => {
  const kind: MessageInitShape<typeof ClientFrameSchema>['kind'] =
    cmd.kind === 'subscribe'
      ? { case: 'subscribe' as const, value: { topics: cmd.topics } }
      : cmd.kind === 'unsubscribe'
        ? { case: 'unsubscribe' as const, value: { topics: cmd.topics } }
        : cmd.kind === 'list'
          ? { case: 'listSubscriptions' as const, value: {} }
          : { case: 'ping' as const, value: { clientTimeUs: BigInt(Date.now() * 1000) } };
  return Buffer.from(toBinary(ClientFrameSchema, create(ClientFrameSchema, { id: BigInt(cmd.id), kind })));
};

/** What both WebSocket clients share: connecting, closing, pausing the socket. */
abstract class WsClientBase extends ProtoClient {
  ws!: WebSocket;
  #url: string;
  #autoPong: boolean;
  constructor(url: string, autoPong = true) {
    super();
    this.#url = url;
    this.#autoPong = autoPong;
  }
  protected abstract onMessage(d: Buffer): void;
  async open(): Promise<void> {
    this.ws = new WebSocket(this.#url, { perMessageDeflate: false, autoPong: this.#autoPong });
    this.ws.on('error', () => {});
    this.ws.on('close', (code, reason) => this.ended(`${code} ${reason}`));
    this.ws.on('message', (d: Buffer) => this.onMessage(d));
    await new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_q, res) => reject(new Error(`refused: ${res.statusCode}`)));
    });
  }
  pause(): void {
    (this.ws as unknown as { _socket: Socket })._socket.pause();
  }
  resume(): void {
    (this.ws as unknown as { _socket: Socket })._socket.resume();
  }
  close(): void {
    this.ws?.terminate();
  }
}

export class WsJsonClient extends WsClientBase {
  readonly name = 'ws-json';
  constructor(wsBase: string, autoPong = true) {
    super(`${wsBase}/ws`, autoPong);
  }
  protected onMessage(d: Buffer): void {
    const m = JSON.parse(d.toString()) as Record<string, any>;
    if (m.e === 'resync') this.r.resyncs.push({ topic: m.stream, reason: m.reason, at: this.r.events.length });
    else if (m.error) this.r.errors.push({ id: m.id ?? null, code: m.error.code, msg: m.error.msg });
    else if ('result' in m) this.r.results.set(m.id, m.result && m.result.length ? m.result : null);
    else if (typeof m.seq === 'number') {
      const stream = m.e === 'depthUpdate' || m.e === 'depthSnapshot' ? 'depth' : m.e === '24hrTicker' ? 'ticker' : m.e === 'kline' ? `kline_${m.k.i}` : m.e;
      this.r.events.push({ topic: `${String(m.s).toLowerCase()}@${stream}`, seq: m.seq, snapshot: m.e === 'depthSnapshot' });
    }
    this.wake();
  }
  send(cmd: Cmd): void {
    const method = { subscribe: 'SUBSCRIBE', unsubscribe: 'UNSUBSCRIBE', list: 'LIST_SUBSCRIPTIONS', ping: 'PING' }[cmd.kind];
    this.ws.send(JSON.stringify({ method, ...('topics' in cmd ? { params: cmd.topics } : {}), id: cmd.id }));
  }
  sendGarbage(): void {
    this.ws.send('{"method": SUB');
  }
}

export class WsProtobufClient extends WsClientBase {
  readonly name = 'ws-protobuf';
  constructor(wsBase: string) {
    super(`${wsBase}/ws?format=protobuf`);
  }
  protected onMessage(d: Buffer): void {
    this.onFrame(fromBinary(ServerFrameSchema, d));
  }
  send(cmd: Cmd): void {
    this.ws.send(clientFrame(cmd));
  }
  sendGarbage(): void {
    this.ws.send(Buffer.from([0xff, 0xff, 0xff, 0x01]));
  }
}

export class TcpClient extends AddressClient {
  readonly name = 'tcp';
  socket!: Socket;
  async open(): Promise<void> {
    const [host, port] = this.addr.split(':');
    this.socket = netConnect(Number(port), host);
    this.socket.on('error', () => {});
    this.socket.on('close', () => this.ended('closed'));
    let buf: Buffer = Buffer.alloc(0);
    this.socket.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        const f = fromBinary(ServerFrameSchema, buf.subarray(4, 4 + len));
        buf = buf.subarray(4 + len);
        this.onFrame(f);
      }
    });
    await new Promise<void>((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }
  writeFrame(b: Buffer): void {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length, 0);
    this.socket.write(Buffer.concat([len, b]));
  }
  send(cmd: Cmd): void {
    this.writeFrame(clientFrame(cmd));
  }
  sendGarbage(): void {
    this.writeFrame(Buffer.from([0xff, 0xff, 0xff, 0x01]));
  }
  pause(): void {
    this.socket.pause();
  }
  resume(): void {
    this.socket.resume();
  }
  close(): void {
    this.socket?.destroy();
  }
}

// The gateway's own method table (bytes in, bytes out) serves as the client's too.
const PushClient = grpc.makeGenericClientConstructor(pushServiceDefinition, 'PushService');

export class GrpcClient extends AddressClient {
  readonly name = 'grpc';
  client!: grpc.Client;
  call!: grpc.ClientDuplexStream<Buffer, Buffer>;
  async open(): Promise<void> {
    this.client = new PushClient(this.addr, grpc.credentials.createInsecure());
    this.call = (this.client as unknown as { stream(): grpc.ClientDuplexStream<Buffer, Buffer> }).stream();
    this.call.on('data', (b: Buffer) => {
      for (const f of fromBinary(ServerBatchSchema, b).frames) this.onFrame(f);
    });
    // The status is the call's real outcome ('end' of the readable side comes first either way).
    this.call.on('error', () => {});
    this.call.on('status', (st: grpc.StatusObject) => this.ended(`${grpc.status[st.code]} ${st.details}`));
    await new Promise<void>((resolve, reject) =>
      this.client.waitForReady(Date.now() + 5_000, (err) => (err ? reject(err) : resolve())),
    );
  }
  send(cmd: Cmd): void {
    this.call.write(clientFrame(cmd));
  }
  sendGarbage(): void {
    this.call.write(Buffer.from([0xff, 0xff, 0xff, 0x01]));
  }
  pause(): void {
    this.call.pause();
  }
  resume(): void {
    this.call.resume();
  }
  close(): void {
    this.call?.cancel();
    this.client?.close();
  }
}

/**
 * gRPC-web as a browser would use it: Subscribe (server streaming) for the
 * session's frames, a unary Update per request, heartbeats answered by an
 * Update carrying a Ping. wire 'connect' speaks the Connect protocol instead
 * (same port, same methods).
 */
export class GrpcWebClient extends ProtoClient {
  readonly name: string;
  readonly baseUrl: string;
  readonly wire: 'grpc-web' | 'connect';
  client!: Client<typeof PushService>;
  sessionId = '';
  #abort = new AbortController();
  #paused: PromiseWithResolvers<void> | undefined;
  #headers: Record<string, string>;
  /** headers: sent with Subscribe (e.g. authorization: Bearer <jwt>). */
  constructor(baseUrl: string, answerHeartbeats = true, wire: 'grpc-web' | 'connect' = 'grpc-web', headers: Record<string, string> = {}) {
    super();
    this.#headers = headers;
    this.baseUrl = baseUrl;
    this.answerHeartbeats = answerHeartbeats;
    this.wire = wire;
    this.name = wire;
  }
  async open(topics: string[] = []): Promise<void> {
    const transport = (this.wire === 'connect' ? createConnectTransport : createGrpcWebTransport)({ baseUrl: this.baseUrl, httpVersion: '1.1' });
    this.client = createClient(PushService, transport);
    void (async () => {
      try {
        for await (const batch of this.client.subscribe({ topics }, { signal: this.#abort.signal, headers: this.#headers })) {
          if (batch.sessionId) this.sessionId = batch.sessionId;
          for (const f of batch.frames) this.onFrame(f);
          if (batch.sessionId) this.wake();
          if (this.#paused) await this.#paused.promise;
        }
        this.ended('OK');
      } catch (err) {
        const e = ConnectError.from(err);
        this.ended(`${Code[e.code]} ${e.rawMessage}`);
      }
    })();
    await this.waitFor(() => this.sessionId !== '' || this.closed, 5_000, 'the session id');
    if (!this.sessionId) throw new Error(`grpc-web: refused: ${this.closeInfo}`);
  }
  #updates: Promise<unknown> = Promise.resolve();
  /**
   * Each Update is its own HTTP request: two in flight may reach the gateway in
   * either order, so requests go one after another (a reply means applied).
   */
  send(cmd: Cmd): void {
    const frame = fromBinary(ClientFrameSchema, clientFrame(cmd));
    this.#updates = this.#updates.then(() =>
      this.client.update({ sessionId: this.sessionId, frame }).catch((err: unknown) => {
        const e = ConnectError.from(err);
        this.r.errors.push({ id: cmd.id, code: -1, msg: `Update failed: ${Code[e.code]} ${e.rawMessage}` });
        this.wake();
      }),
    );
  }
  /**
   * Undecodable bytes as an Update body (Connect protocol, binary): the unary
   * call itself is refused — Connect answers a body it cannot parse with
   * `internal` "parse binary: …", gRPC-web's equivalent of error code 3 — and
   * the session is untouched.
   */
  sendGarbage(): void {
    void fetch(`${this.baseUrl}/${PushService.typeName}/Update`, {
      method: 'POST',
      headers: { 'content-type': 'application/proto', 'connect-protocol-version': '1' },
      body: new Uint8Array([0xff, 0xff, 0xff, 0x01]),
    }).then(async (res) => {
      const body = (await res.json()) as { code?: string; message?: string };
      if (res.status >= 400 && /^parse binary/.test(body.message ?? '')) this.r.errors.push({ id: null, code: 3, msg: body.message ?? '' });
      else this.r.errors.push({ id: null, code: -1, msg: `unexpected answer to garbage: ${res.status} ${JSON.stringify(body)}` });
      this.wake();
    }, (err: unknown) => {
      this.r.errors.push({ id: null, code: -1, msg: `garbage request failed: ${String(err)}` });
      this.wake();
    });
  }
  pause(): void {
    this.#paused ??= Promise.withResolvers<void>();
  }
  resume(): void {
    this.#paused?.resolve();
    this.#paused = undefined;
  }
  close(): void {
    this.resume();
    this.#abort.abort();
  }
}
