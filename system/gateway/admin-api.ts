// The gateway's admin listener: stats, the session tap, egress latency, drain
// and live config. Never on the client port: an operator (admin token) reaches
// it on the cluster's own address; see system/common/admin-http.ts.
import type { Server } from 'node:http';
import { createAdminServer } from '../common/admin-http.ts';
import type { GatewayConfig } from '../common/config.ts';
import { HttpError, readJson, sendJson, type Routes } from '../common/http.ts';
import type { ClusterSecrets } from '../common/secrets.ts';
import type { RoleMetrics } from '../common/metrics.ts';
import type { SessionTap } from './session-tap.ts';
import type { TopicHub } from './topic-hub.ts';

/** Live-changeable settings and their bounds (inclusive). */
const LIVE_LIMITS = {
  maxConnections: { min: 1, max: 10_000_000 },
  acceptRate: { min: 1, max: 1_000_000 },
} as const;
export type LiveSettings = { -readonly [K in keyof typeof LIVE_LIMITS]: number };

/** Checks a /admin/config body: every field known, an integer, in range; or says which is not. */
export function validateLiveConfig(body: unknown): Partial<LiveSettings> | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'config must be a JSON object';
  const allowed = Object.keys(LIVE_LIMITS);
  const out: { -readonly [K in keyof LiveSettings]?: number } = {};
  for (const [k, v] of Object.entries(body)) {
    if (!allowed.includes(k)) return `not live-configurable: ${k} (allowed: ${allowed.join(', ')})`;
    const { min, max } = LIVE_LIMITS[k as keyof LiveSettings];
    if (typeof v !== 'number' || !Number.isInteger(v)) return `${k} must be an integer`;
    if (v < min || v > max) return `${k} must be between ${min} and ${max}, got ${v}`;
    out[k as keyof LiveSettings] = v;
  }
  return out;
}

export interface GatewayAdminOptions {
  config: GatewayConfig;
  secrets: ClusterSecrets | undefined;
  hub: TopicHub;
  tap: SessionTap;
  stats: () => object;
  isDraining: () => boolean;
  setDraining: (on: boolean) => void;
  connections: () => number;
  /** Applies the admission rate to the live token bucket. */
  setAcceptRate: (perSec: number) => void;
  /** GET /metrics for Prometheus (metrics or admin token). */
  metrics?: RoleMetrics;
}

export function createGatewayAdmin(o: GatewayAdminOptions): Server {
  const { config } = o;
  const admin: Routes = {
    'GET /stats': (_q, res) => sendJson(res, 200, o.stats()),
    'GET /admin/tap': o.tap.handle,
    // ?reset=1 starts a new window: a benchmark reads its measured phase exactly.
    'GET /admin/egress-latency': (_q, res, url) => {
      const reset = url.searchParams.get('reset') === '1';
      sendJson(res, 200, { ...o.hub.egress.snapshot(reset), arrival: o.hub.arrival.snapshot(reset) });
    },
    'POST /admin/drain': async (req, res) => {
      const body = await readJson<{ draining?: unknown }>(req);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'body must be a JSON object');
      if (body.draining !== undefined && typeof body.draining !== 'boolean') throw new HttpError(400, 'draining must be a boolean');
      o.setDraining(body.draining ?? true);
      sendJson(res, 200, { ok: true, id: config.id, draining: o.isDraining(), connections: o.connections() });
    },
    'POST /admin/config': async (req, res) => {
      const change = validateLiveConfig(await readJson(req));
      if (typeof change === 'string') throw new HttpError(400, change);
      if (change.maxConnections !== undefined) config.maxConnections = change.maxConnections;
      if (change.acceptRate !== undefined) o.setAcceptRate(change.acceptRate);
      sendJson(res, 200, { ok: true, id: config.id, maxConnections: config.maxConnections, acceptRate: config.acceptRate });
    },
  };
  const health = (_q: unknown, res: Parameters<typeof sendJson>[0]) => sendJson(res, 200, { ok: true, id: config.id, role: 'gateway' });
  return createAdminServer({ public: { 'GET /healthz': health }, admin, ...(o.metrics ? { metrics: o.metrics.routes() } : {}) }, o.secrets);
}
