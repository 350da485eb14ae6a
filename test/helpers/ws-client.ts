// A test client for the gateway's WebSocket API: collects every message,
// tracks per-topic sequence numbers, and waits for conditions.
import WebSocket from 'ws';
import { fromBinary } from '@bufbuild/protobuf';
import { ServerFrameSchema, type ServerFrame } from '../../proto/gen/client_pb.js';
import { Waiters } from './waiters.ts';

export interface JsonMsg {
  stream?: string;
  data?: Record<string, unknown>;
  [k: string]: unknown;
}

export class TestClient {
  readonly ws: WebSocket;
  readonly json: JsonMsg[] = [];
  readonly frames: ServerFrame[] = [];
  /** topic → sequence numbers received, in order */
  readonly seqs = new Map<string, number[]>();
  /** JSON resync notices, and the index in `json` of every depth snapshot (cheap to poll). */
  readonly resyncs: JsonMsg[] = [];
  readonly snapshotAt: number[] = [];
  closeCode: number | undefined;
  closeReason = '';
  readonly opened: Promise<void>;
  readonly closed: Promise<void>;
  #waiters = new Waiters();

  constructor(url: string) {
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) =>
      this.ws.once('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        this.#waiters.wake();
        resolve();
      }),
    );
    this.ws.on('error', () => {});
    this.ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) {
        const f = fromBinary(ServerFrameSchema, data);
        this.frames.push(f);
        if (f.kind.case === 'event') this.#seq(f.kind.value.topic, Number(f.kind.value.seq), f.kind.value.payload.case === 'depthSnapshot');
      } else {
        const m = JSON.parse(data.toString()) as JsonMsg;
        this.json.push(m);
        const d = (m.data ?? m) as Record<string, unknown>;
        if (m.e === 'resync') this.resyncs.push(m);
        if (d.e === 'depthSnapshot') this.snapshotAt.push(this.json.length - 1);
        if (typeof d.seq === 'number') {
          const topic = m.stream ?? `${String(d.s).toLowerCase()}@${streamOf(d)}`;
          this.#seq(topic, d.seq, d.e === 'depthSnapshot');
        }
      }
      this.#waiters.wake();
    });
  }

  #seq(topic: string, seq: number, snapshot: boolean): void {
    let list = this.seqs.get(topic);
    if (!list) this.seqs.set(topic, (list = []));
    // A depth snapshot carries the seq of the last diff it contains: diffs continue after it.
    if (!snapshot || list.length === 0 || list.at(-1)! < seq) list.push(seq);
  }

  send(obj: unknown): void {
    this.ws.send(typeof obj === 'string' || Buffer.isBuffer(obj) || obj instanceof Uint8Array ? (obj as string) : JSON.stringify(obj));
  }

  waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    return this.#waiters.until(
      cond,
      timeoutMs,
      () => new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last messages: ${JSON.stringify(this.json.slice(-3)).slice(0, 600)}`),
    );
  }

  /** The reply (result or error) to request id. */
  async reply(id: number | string, timeoutMs = 5_000): Promise<JsonMsg> {
    await this.waitFor(() => this.json.some((m) => m.id === id), timeoutMs, `reply to id ${id}`);
    return this.json.find((m) => m.id === id)!;
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }
}

function streamOf(d: Record<string, unknown>): string {
  switch (d.e) {
    case '24hrTicker':
      return 'ticker';
    case 'trade':
      return 'trade';
    case 'depthUpdate':
    case 'depthSnapshot':
      return 'depth';
    case 'kline':
      return `kline_${(d.k as { i: string }).i}`;
    default:
      return String(d.e);
  }
}

/** True when seqs run without a hole (each is the previous + 1). */
export function contiguous(seqs: number[]): boolean {
  for (let i = 1; i < seqs.length; i++) if (seqs[i] !== seqs[i - 1]! + 1) return false;
  return true;
}

/** Asks the router for gateways and connects to the first that accepts, as a real client would. */
export async function connectViaRouter(routerUrl: string, path: string): Promise<TestClient> {
  const res = await fetch(`${routerUrl}/v1/gateways?protocol=ws&limit=5`);
  const body = (await res.json()) as { gateways: { url: string }[] };
  let lastErr: unknown = new Error('router listed no gateway');
  for (const g of body.gateways ?? []) {
    const c = new TestClient(`${g.url}${path}`);
    try {
      await c.opened;
      return c;
    } catch (err) {
      lastErr = err;
      c.close();
    }
  }
  throw lastErr;
}
