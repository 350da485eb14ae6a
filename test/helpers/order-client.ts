// A private order-stream client as an application would write it, over
// WebSocket JSON: it asks the router for gateways, resumes right after the
// last event it has (or, after pause(), from its last stored ack), acks as it
// goes and reconnects with a jittered back-off when its connection drops.
import WebSocket from 'ws';

export interface OrderClientOptions {
  /** The router's client port (GET /v1/gateways). */
  router: string;
  user: string;
  /** A JWT for this user. */
  token: (user: string) => Promise<string>;
  /** Called for every order event, in arrival order; without it the seqs are kept in `seqs`. */
  onOrder?: (seq: number, id: string) => void;
  /** Reconnect attempts after a drop before giving up (default 50, ~7 s). */
  maxAttempts?: number;
  /** Ack every N events (default 20). */
  ackEvery?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class OrderClient {
  readonly user: string;
  /** Seqs in arrival order, only when no onOrder is given. */
  readonly seqs: number[] = [];
  ws: WebSocket | undefined;
  reconnects = 0;
  /** Events handled, and the seq of the last one (what a resume starts after). */
  count = 0;
  lastSeq = 0;
  #o: OrderClientOptions;
  #stopped = false;
  #paused = false;
  constructor(o: OrderClientOptions) {
    this.#o = o;
    this.user = o.user;
  }

  /** Connects to the first gateway that accepts; `after` undefined: from the last stored ack. */
  async start(after: number | undefined = this.lastSeq): Promise<void> {
    const res = await fetch(`${this.#o.router}/v1/gateways?protocol=ws&limit=5`, { signal: AbortSignal.timeout(3_000) });
    const gws = ((await res.json()) as { gateways?: { url: string }[] }).gateways ?? [];
    const jwt = await this.#o.token(this.user);
    for (const g of gws) {
      if (this.#stopped || this.#paused) return;
      const ws = new WebSocket(`${g.url}/ws?token=${jwt}`, { perMessageDeflate: false });
      ws.on('error', () => {});
      const ok = await new Promise<boolean>((resolve) => {
        ws.once('open', () => resolve(true));
        ws.once('close', () => resolve(false));
      });
      if (!ok) continue;
      if (this.#stopped || this.#paused) {
        ws.terminate();
        return;
      }
      this.ws = ws;
      ws.on('message', (d: Buffer) => {
        // After pause() the application has stopped reading: later frames are not handled.
        if (this.ws !== ws || this.#paused) return;
        const m = JSON.parse(d.toString()) as { e?: string; seq?: number; i?: string };
        if (m.e !== 'executionReport' || typeof m.seq !== 'number') return;
        this.count++;
        this.lastSeq = m.seq;
        if (this.#o.onOrder) this.#o.onOrder(m.seq, m.i ?? '');
        else this.seqs.push(m.seq);
        if (this.count % (this.#o.ackEvery ?? 20) === 0) ws.send(JSON.stringify({ method: 'ACK', params: [m.seq], id: null }));
      });
      ws.once('close', () => {
        if (this.ws === ws && !this.#paused) void this.#again();
      });
      ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['orders'], id: 1, ...(after === undefined ? {} : { after }) }));
      return;
    }
    throw new Error('no gateway accepted the connection');
  }

  async #again(): Promise<void> {
    if (this.#stopped) return;
    this.reconnects++;
    const max = this.#o.maxAttempts ?? 50;
    for (let attempt = 0; attempt < max && !this.#stopped && !this.#paused; attempt++) {
      await sleep(50 + Math.random() * 150); // jittered back-off
      try {
        await this.start();
        return;
      } catch {
        // try again
      }
    }
  }

  /** Acks everything handled, then closes: the application goes away (resume() continues from that ack). */
  async pause(): Promise<void> {
    this.#paused = true;
    const ws = this.ws;
    if (!ws) return;
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    if (ws.readyState === WebSocket.OPEN && this.lastSeq > 0) ws.send(JSON.stringify({ method: 'ACK', params: [this.lastSeq], id: null }));
    ws.close();
    await Promise.race([closed, sleep(3_000)]);
    ws.terminate();
  }

  /** Back after a pause: subscribes without `after`, so the gateway resumes from the stored ack. */
  async resume(): Promise<void> {
    this.#paused = false;
    this.reconnects++;
    const max = this.#o.maxAttempts ?? 50;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.start(undefined);
        return;
      } catch (err) {
        if (attempt + 1 >= max || this.#stopped) throw err;
        await sleep(50 + Math.random() * 150);
      }
    }
  }

  stop(): void {
    this.#stopped = true;
    this.ws?.terminate();
  }
}
