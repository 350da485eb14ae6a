// HTTP phases of a scenario (router discovery, kline history…), loaded with
// autocannon. A status outside okStatus (default 2xx) is an error: a missing
// endpoint shows up as 404s in the report, not as a fast success.
import autocannon from 'autocannon';
import type { HttpPhase } from './scenario.ts';

export interface HttpResult {
  name: string;
  url: string;
  connections: number;
  durationS: number;
  requests: number;
  rps: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  statusCodes: Record<string, number>;
  /** Responses outside okStatus plus socket errors and timeouts. */
  errors: number;
  error?: string;
}

export async function resolveHttpTarget(target: string, router: string): Promise<string> {
  if (target === 'router') return router;
  if (target === 'gateway') {
    const res = await fetch(`${router}/v1/gateways?protocol=ws&limit=1`, { signal: AbortSignal.timeout(3_000) });
    const g = ((await res.json()) as { gateways?: Array<{ url: string }> }).gateways?.[0];
    if (!g) throw new Error('the router lists no gateway');
    return g.url.replace(/^ws/, 'http');
  }
  if (!/^https?:\/\//.test(target)) throw new Error(`http target "${target}": router, gateway or an http(s) URL`);
  return target.replace(/\/$/, '');
}

export async function runHttpPhase(p: HttpPhase, router: string, signal: AbortSignal): Promise<HttpResult> {
  let url = '';
  try {
    url = (await resolveHttpTarget(p.target, router)) + p.path;
    const inst = autocannon({ url, connections: p.connections, duration: Math.max(1, p.durationMs / 1000), timeout: 10 });
    const onAbort = () => (inst as unknown as { stop?: () => void }).stop?.();
    signal.addEventListener('abort', onAbort, { once: true });
    const r = await inst;
    signal.removeEventListener('abort', onAbort);
    const statusCodes: Record<string, number> = {};
    for (const [k, v] of Object.entries(r.statusCodeStats ?? {})) statusCodes[k] = v.count ?? 0;
    const ok = (s: number) => (p.okStatus ? p.okStatus.includes(s) : s >= 200 && s < 300);
    const okCount = Object.entries(statusCodes).reduce((a, [k, v]) => a + (ok(Number(k)) ? v : 0), 0);
    const responses = Object.values(statusCodes).reduce((a, b) => a + b, 0);
    return {
      name: p.name, url, connections: p.connections, durationS: r.duration,
      requests: responses + r.errors,
      rps: Math.round(responses / Math.max(0.001, r.duration)),
      latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, mean: r.latency.average },
      statusCodes,
      errors: responses - okCount + r.errors,
    };
  } catch (err) {
    return {
      name: p.name, url, connections: p.connections, durationS: 0, requests: 0, rps: 0,
      latencyMs: { p50: 0, p90: 0, p99: 0, max: 0, mean: 0 }, statusCodes: {}, errors: 1, error: (err as Error).message,
    };
  }
}
