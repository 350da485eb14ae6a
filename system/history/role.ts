// The history process: kline history served to clients from a process of its
// own, so a chart-opening storm spends its CPU and memory away from the roles
// that carry the streams. It runs the push-server's history half — the memory
// tier fed from the bus (candles and trades), warmed from Redis, the Redis and
// cold tiers, prepared answers — and answers GET /api/v3/klines and
// /api/v3/uiKlines on a client port with Binance's weights, ETags and
// Cache-Control. It does not archive (the servers' shared JetStream consumer
// does), so any number of history processes can run. It lowers its own
// scheduling priority (`nice`, default 10): when the machine is short of CPU,
// the kernel gives it to the stream roles first, and a storm slows only the
// charts.
//
// Given the routers (config.routers, as `pushctl up` plans it), it is the
// cluster's REST host: every public market route of the gateway's REST API
// (system/gateway/rest-market.ts — depth, tickers, trades, avgPrice,
// exchangeInfo, ping, time) answers here too, the same code forwarding to the
// push-server that owns the symbol, with klines from its own tiers.
import { setPriority } from 'node:os';
import { closeServer, createJsonServer, fetchJson, listen, sendJson, type Routes } from '../common/http.ts';
import { clusterAuth } from '../common/admin-http.ts';
import { defaults } from '../common/config.ts';
import { loadTlsFiles, type TlsFiles } from '../common/tls.ts';
import type { RoleContext } from '../common/run-role.ts';
import { marketRoutes } from '../gateway/rest-market.ts';
import { KlineProxy } from './gateway-proxy.ts';
import type { Bus } from '../common/bus.ts';
import type { Logger } from '../common/logger.ts';
import type { ClusterSecrets, Credential } from '../common/secrets.ts';
import type { HistoryConfig } from '../common/config.ts';
import { RequestWeights } from '../gateway/rest-weight.ts';
import { binanceError, sendBinanceError } from './binance-api.ts';
import { HistoryService } from './service.ts';

export interface HistoryRoleConfig {
  id: string;
  host: string;
  /** Client port for /api/v3/klines, /api/v3/uiKlines, /healthz; 0 picks a free one. */
  port: number;
  nats?: string;
  /** Routers' admin URLs: with them this process answers every public market route (the rest forwarded to the servers); without, klines only. */
  routers?: string[];
  /** Client port over TLS with this pair (as the gateways' client ports). */
  tls?: TlsFiles;
  tlsCaFile?: string;
  history?: HistoryConfig;
  redis?: string;
  /** Connect to NATS with the history user from secretsFile (the nats-server `pushctl up` starts takes only the cluster's users). */
  natsAuth?: boolean;
  /** Connect to Redis with the cluster's Redis user from secretsFile. */
  redisAuth?: boolean;
  /** Both of the above. */
  storeAuth?: boolean;
  /** Request weight one IP may use per minute (Binance's 6000). */
  restWeightPerMinute?: number;
  /** Niceness this process runs at (0…19); -1 leaves it. */
  nice?: number;
  /** Bytes of immutable answers kept in memory. */
  finalCacheBytes?: number;
  secretsFile?: string;
  logFile?: string;
}

export const HISTORY_ROLE_DEFAULTS = { host: '127.0.0.1', port: 0, restWeightPerMinute: 6000, nice: 10 } as const;

export interface HistoryRoleHandle {
  urls: Record<string, string>;
  history: HistoryService;
  stop(): Promise<void>;
}

export async function startHistoryRole(config: HistoryRoleConfig, bus: Bus, log: Logger, redisAuth?: Credential, secrets?: ClusterSecrets): Promise<HistoryRoleHandle> {
  const tls = config.tls ? loadTlsFiles(config.tls) : undefined; // a bad file fails the start at once
  const nice = config.nice ?? HISTORY_ROLE_DEFAULTS.nice;
  if (nice > 0) {
    try {
      setPriority(nice);
    } catch (err) {
      log.warn('history: could not lower this process\'s priority', { err: String(err) });
    }
  }
  const history = new HistoryService(
    { ...config.history, redis: config.history?.redis ?? config.redis, archive: false, ...(redisAuth ? { redisAuth } : {}), ...(config.finalCacheBytes !== undefined ? { finalCacheBytes: config.finalCacheBytes } : {}) },
    bus,
    log,
  );
  await history.start();
  const weightPerMinute = config.restWeightPerMinute ?? HISTORY_ROLE_DEFAULTS.restWeightPerMinute;
  const routers = config.routers ?? [];
  let api: Routes;
  let symbolTimer: NodeJS.Timeout | undefined;
  if (routers.length > 0) {
    // The cluster's REST host: the gateway's market routes (one weight budget for all of them), klines from here.
    const auth = clusterAuth(secrets);
    let symbols = new Set<string>();
    const refreshSymbols = async () => {
      for (const r of routers) {
        try {
          symbols = new Set((await fetchJson<{ symbols: string[] }>(`${r}/v1/symbols`, { timeoutMs: 2_000, headers: auth })).symbols);
          return;
        } catch {
          // next router
        }
      }
    };
    await refreshSymbols();
    symbolTimer = setInterval(() => void refreshSymbols(), 5_000);
    symbolTimer.unref();
    const gw = defaults.gateway();
    const servers = new KlineProxy({ routers, auth, maxInFlight: gw.restMaxInFlight, retryAfterSec: gw.restRetryAfterSec });
    api = marketRoutes({
      symbols: () => symbols,
      servers,
      inboundRatePerSec: gw.inboundRatePerSec,
      weightPerMinute,
      klines: (req, res, url) => history.handle(req, res, url),
    });
  } else {
    const klines = new RequestWeights(weightPerMinute).wrap((req, res, url) => history.handle(req, res, url));
    const unknownRoute = (_req: unknown, res: Parameters<typeof sendBinanceError>[0], url: URL) =>
      sendBinanceError(res, binanceError(404, -1000, `Unknown endpoint: ${url.pathname.slice(0, 100)}; this port serves /api/v3/klines and /api/v3/uiKlines`), { 'access-control-allow-origin': '*' });
    api = { 'GET /api/v3/klines': klines, 'GET /api/v3/uiKlines': klines, 'GET /api/*': unknownRoute };
  }
  const server = createJsonServer(
    { 'GET /healthz': (_q, res) => sendJson(res, 200, { ok: true, id: config.id, role: 'history', ...history.health() }), ...api },
    tls,
  );
  // Slow or silent clients may not hold sockets (the same bounds as the gateway's client port).
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  const port = await listen(server, config.port ?? 0, config.host ?? HISTORY_ROLE_DEFAULTS.host);
  return {
    urls: { http: `${tls ? 'https' : 'http'}://${config.host ?? HISTORY_ROLE_DEFAULTS.host}:${port}` },
    history,
    stop: async () => {
      clearInterval(symbolTimer);
      await closeServer(server);
      await history.stop();
    },
  };
}

/** The history process as one role of the embedded cluster (system/embedded.ts): its bus, log and secrets from there. */
export async function startHistory(config: HistoryRoleConfig, ctx: RoleContext): Promise<HistoryRoleHandle> {
  if (!ctx.bus) throw new Error(`${config.id}: the history process needs the bus`);
  const redisAuth = config.redisAuth || config.storeAuth ? ctx.secrets?.redis : undefined;
  return startHistoryRole({ ...HISTORY_ROLE_DEFAULTS, ...config }, ctx.bus, ctx.log, redisAuth, ctx.secrets);
}
