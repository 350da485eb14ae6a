// The gateway's side of GET /api/v3/klines: the push-servers own the history
// tiers (the memory tier and in-progress candles live there), so a gateway
// forwards the query to the server that owns the kline topic (rendezvous
// hashing over the healthy servers the router lists; another one if it
// fails) and relays the answer with its tier and degradation headers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fetchJson } from '../common/http.ts';
import { rendezvous } from '../common/hashing.ts';
import type { NodeRecord } from '../common/registry.ts';

export interface KlineProxyOptions {
  routers: string[];
  refreshMs?: number;
  timeoutMs?: number;
}

const RELAYED = ['x-mp-tiers', 'x-mp-degraded', 'x-mp-server'];

export class KlineProxy {
  #o: KlineProxyOptions;
  #servers = new Map<string, string>(); // id → admin URL
  #fetchedAt = 0;
  #degradedAt = new Map<string, number>();

  constructor(o: KlineProxyOptions) {
    this.#o = o;
  }

  async #refresh(force = false): Promise<void> {
    if (!force && Date.now() - this.#fetchedAt < (this.#o.refreshMs ?? 2_000)) return;
    for (const r of this.#o.routers) {
      try {
        const { servers } = await fetchJson<{ servers: NodeRecord[] }>(`${r}/v1/servers`, { timeoutMs: 2_000 });
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
  async query(search: string): Promise<{ status: number; body: Buffer; headers: Record<string, string> }> {
    await this.#refresh();
    const params = new URLSearchParams(search);
    const topic = `${(params.get('symbol') ?? '').toLowerCase()}@kline_${params.get('interval') ?? ''}`;
    const tried = new Set<string>();
    for (let attempt = 0; attempt < 3; attempt++) {
      const ids = [...this.#servers.keys()].filter((id) => !tried.has(id));
      const id = rendezvous(topic, ids);
      if (!id) break;
      tried.add(id);
      try {
        const qs = params.toString();
        const r = await fetch(`${this.#servers.get(id)}/api/v3/klines${qs ? `?${qs}` : ''}`, { signal: AbortSignal.timeout(this.#o.timeoutMs ?? 15_000) });
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
    const body = Buffer.from(JSON.stringify({ code: -1001, msg: 'Internal error; no push-server answered the kline query. Please try again.' }));
    return { status: 503, body, headers: {} };
  }

  async handle(_req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const r = await this.query(url.search);
    res.writeHead(r.status, { 'content-type': 'application/json', 'content-length': String(r.body.length), 'access-control-allow-origin': '*', ...r.headers });
    res.end(r.body);
  }
}
