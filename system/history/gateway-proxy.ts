// The gateway's side of GET /api/v3/klines: the push-servers own the history
// tiers (the memory tier and in-progress candles live there), so a gateway
// forwards the query to the server that owns the kline topic (rendezvous
// hashing over the healthy servers the router lists; another one if it
// fails) and relays the answer with its tier and degradation headers.
// The other market REST endpoints the servers answer (depth, tickers, trades)
// go the same way (forward). Queries run on their own budget (maxInFlight):
// past it they are refused at once with 429, Retry-After and Binance's -1003,
// so chart traffic cannot take the event loop and memory the client streams need.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fetchJson } from '../common/http.ts';
import { rendezvous } from '../common/hashing.ts';
import type { NodeRecord } from '../common/registry.ts';
import { writeKlineAnswer } from './kline-http.ts';

export interface KlineProxyOptions {
  routers: string[];
  /** Headers for the router lookups and the servers' kline endpoint (the cluster token). */
  auth?: Record<string, string>;
  refreshMs?: number;
  timeoutMs?: number;
  /** Queries served at once (REST, gRPC and gRPC-web together); past it they are refused. Default unlimited. */
  maxInFlight?: number;
  /** Seconds a refused client is told to wait (Retry-After). */
  retryAfterSec?: number;
}

export interface KlineAnswer {
  status: number;
  body: Buffer;
  headers: Record<string, string>;
}

// The caching headers travel too, so a CDN in front of the gateway can keep closed ranges.
const RELAYED = ['x-mp-tiers', 'x-mp-degraded', 'x-mp-server', 'x-mp-cache', 'etag', 'cache-control'];

export class KlineProxy {
  #o: KlineProxyOptions;
  #servers = new Map<string, string>(); // id → admin URL
  #fetchedAt = 0;
  #degradedAt = new Map<string, number>();
  #inFlight = 0;
  /** Queries refused by the budget since start. */
  refused = 0;

  constructor(o: KlineProxyOptions) {
    this.#o = o;
  }

  async #refresh(force = false): Promise<void> {
    if (!force && Date.now() - this.#fetchedAt < (this.#o.refreshMs ?? 2_000)) return;
    for (const r of this.#o.routers) {
      try {
        const { servers } = await fetchJson<{ servers: NodeRecord[] }>(`${r}/v1/servers`, { timeoutMs: 2_000, headers: this.#o.auth ?? {} });
        this.#servers = new Map(servers.filter((s) => s.urls.admin).map((s) => [s.id, s.urls.admin!]));
        this.#fetchedAt = Date.now();
        return;
      } catch {
        // next router
      }
    }
  }

  /** Tiers the servers reported as degraded in the last 10 s (for /healthz). */
  degraded(): string[] {
    const now = Date.now();
    return [...this.#degradedAt].filter(([, t]) => now - t < 10_000).map(([tier]) => tier);
  }

  /**
   * Runs a Binance kline query (`?symbol=…&interval=…`) on the owning push-server: status, JSON body
   * and the x-mp-* headers. Protocol front ends other than REST (gRPC, gRPC-web) can call this too.
   */
  async query(search: string, ifNoneMatch?: string): Promise<KlineAnswer> {
    const params = new URLSearchParams(search);
    const topic = `${(params.get('symbol') ?? '').toLowerCase()}@kline_${params.get('interval') ?? ''}`;
    return this.forward('/api/v3/klines', topic, params, 'Internal error; no push-server answered the kline query. Please try again.', ifNoneMatch ? { 'if-none-match': ifNoneMatch } : {});
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  #busy(): KlineAnswer {
    this.refused++;
    const retryAfter = String(this.#o.retryAfterSec ?? 1);
    const body = Buffer.from(JSON.stringify({ code: -1003, msg: `Too many requests; at most ${this.#o.maxInFlight} market-data queries at once on this gateway. Retry after ${retryAfter} s.` }));
    return { status: 429, body, headers: { 'retry-after': retryAfter } };
  }

  /** Runs a GET on the push-server that owns `topic` (another one if it fails), within the REST budget. */
  async forward(path: string, topic: string, params: URLSearchParams, unavailableMsg: string, reqHeaders: Record<string, string> = {}): Promise<KlineAnswer> {
    if (this.#inFlight >= (this.#o.maxInFlight ?? Infinity)) return this.#busy();
    this.#inFlight++;
    try {
      return await this.#forward(path, topic, params, unavailableMsg, reqHeaders);
    } finally {
      this.#inFlight--;
    }
  }

  async #forward(path: string, topic: string, params: URLSearchParams, unavailableMsg: string, reqHeaders: Record<string, string>): Promise<KlineAnswer> {
    await this.#refresh();
    const tried = new Set<string>();
    for (let attempt = 0; attempt < 3; attempt++) {
      const ids = [...this.#servers.keys()].filter((id) => !tried.has(id));
      const id = rendezvous(topic, ids);
      if (!id) break;
      tried.add(id);
      try {
        const qs = params.toString();
        const r = await fetch(`${this.#servers.get(id)}${path}${qs ? `?${qs}` : ''}`, {
          headers: { ...reqHeaders, ...(this.#o.auth ?? {}) },
          signal: AbortSignal.timeout(this.#o.timeoutMs ?? 15_000),
        });
        const body = Buffer.from(await r.arrayBuffer());
        const headers: Record<string, string> = { 'x-mp-server': id };
        for (const h of RELAYED) {
          const v = r.headers.get(h);
          if (v) headers[h] = v;
        }
        for (const tier of (r.headers.get('x-mp-degraded') ?? '').split(',').filter(Boolean)) this.#degradedAt.set(tier, Date.now());
        return { status: r.status, body, headers };
      } catch {
        await this.#refresh(true);
      }
    }
    const body = Buffer.from(JSON.stringify({ code: -1001, msg: unavailableMsg }));
    return { status: 503, body, headers: {} };
  }

  /** GET /api/v3/klines and /api/v3/uiKlines (the same answer here): If-None-Match goes along, a 304 comes back without a body. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const r = await this.query(url.search, req.headers['if-none-match']);
    writeKlineAnswer(res, r);
  }
}
