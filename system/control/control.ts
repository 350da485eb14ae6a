// push-control: cluster management over HTTP, the API behind `pushctl status`
// and friends. It holds no state: the topology comes from the routers'
// registry, and actions (drain, live config) go straight to the node's own
// admin endpoint, which then reports its new state in its next heartbeat.
// Its one listener is an admin listener: every action needs the operator's
// admin token, which control then uses on the node's own admin listener.
import type { ControlConfig } from '../common/config.ts';
import { Heartbeat } from '../common/heartbeat.ts';
import { adminAuth, clusterAuth, createAdminServer } from '../common/admin-http.ts';
import { closeServer, fetchJson, HttpError, listen, readJson, sendJson, type Routes } from '../common/http.ts';
import { ProcessStats } from '../common/process-stats.ts';
import { RoleMetrics } from '../common/metrics.ts';
import { controlMetrics } from '../common/metrics-roles.ts';
import { selfRecord, type NodeRecord } from '../common/registry.ts';
import type { RoleContext, RoleHandle } from '../common/run-role.ts';

export interface TopologyNode extends NodeRecord {
  healthy: boolean;
  ageMs: number;
  stats?: unknown;
  statsError?: string;
}

export interface TopologySummary {
  routers: number;
  gateways: number;
  servers: number;
  feeds: number;
  controls: number;
  draining: number;
  unhealthy: number;
  /** Client connections and subscriptions, summed over gateways. */
  connections: number;
  subscriptions: number;
  /** Messages servers take from the bus, per second. */
  msgsInPerSec: number;
  /** Messages gateways send to clients, per second. */
  msgsOutPerSec: number;
}

const ROUTER_TIMEOUT_MS = 2_000;
const STATS_TIMEOUT_MS = 1_000;
const ADMIN_TIMEOUT_MS = 3_000;
// A node that missed this many heartbeats is reported unhealthy before the
// router's expiry drops it altogether.
const MISSED_BEATS_UNHEALTHY = 3;

export async function startControl(config: ControlConfig, ctx: RoleContext): Promise<RoleHandle> {
  const { log } = ctx;
  // Mutated in place by /admin/config so the heartbeat follows the new list.
  const routers = [...config.routers];
  const stats = new ProcessStats();
  const startedAt = Date.now();
  let draining = false;
  let url = '';
  let nextRouter = 0;
  const asRole = clusterAuth(ctx.secrets);
  const asOperator = adminAuth(ctx.secrets);

  /** Live nodes from the first router that answers, starting with the last one that did. */
  const fetchNodes = async (): Promise<{ nodes: NodeRecord[]; router: string }> => {
    if (routers.length === 0) throw new HttpError(503, 'control has no routers configured (config.routers)');
    const errors: string[] = [];
    for (let i = 0; i < routers.length; i++) {
      const router = routers[(nextRouter + i) % routers.length]!;
      try {
        const body = await fetchJson<{ nodes: NodeRecord[] }>(`${router}/v1/nodes`, { headers: asRole, timeoutMs: ROUTER_TIMEOUT_MS });
        nextRouter = (nextRouter + i) % routers.length;
        return { nodes: body.nodes, router };
      } catch (err) {
        errors.push(`${router}: ${errMessage(err)}`);
      }
    }
    throw new HttpError(503, `no router answered: ${errors.join('; ')}`);
  };

  const findNode = async (id: string): Promise<NodeRecord> => {
    const node = (await fetchNodes()).nodes.find((n) => n.id === id);
    if (!node) throw new HttpError(404, `unknown node "${id}" (not in the registry)`);
    return node;
  };

  /** POSTs to a node's admin endpoint and relays its answer; 502 when it does not answer. */
  const callAdmin = async (node: NodeRecord, path: string, body: unknown): Promise<[number, unknown]> => {
    const base = adminUrl(node);
    if (!base) throw new HttpError(409, `node "${node.id}" advertises no admin URL (urls.admin)`);
    const target = `${base}${path}`;
    let res: Response;
    let text: string;
    try {
      res = await fetch(target, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...asOperator },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS),
      });
      text = await res.text();
    } catch (err) {
      throw new HttpError(502, `node "${node.id}" did not answer at ${target}: ${errMessage(err)}`);
    }
    let answer: unknown = text;
    try {
      answer = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: relay the text
    }
    if (res.ok) return [200, { id: node.id, url: target, status: res.status, answer }];
    const reason = (answer as { error?: unknown } | null)?.error ?? text.slice(0, 200);
    // The node's own refusal (4xx) is the caller's problem; its failure (5xx) is a bad gateway.
    return [
      res.status >= 500 ? 502 : res.status,
      { error: `node "${node.id}" answered ${res.status}: ${String(reason)}`, id: node.id, url: target, status: res.status, answer },
    ];
  };

  const routes: Routes = {
    'GET /v1/topology': async (_req, res, u) => {
      stats.count('requests');
      const { nodes, router } = await fetchNodes();
      const now = Date.now();
      const healthyWithinMs = MISSED_BEATS_UNHEALTHY * config.heartbeatMs;
      const view: TopologyNode[] = nodes.map((n) => {
        const ageMs = Math.max(0, now - n.seenAt);
        return { ...n, ageMs, healthy: ageMs <= healthyWithinMs };
      });
      view.sort((a, b) => cmp(a.role, b.role) || cmp(a.id, b.id));
      const detail = u.searchParams.get('detail');
      if (detail === '1' || detail === 'true') await Promise.all(view.map((n) => attachStats(n, asOperator)));
      sendJson(res, 200, { nodes: view, summary: summarize(view), router, at: now }, CORS);
    },
    'POST /v1/nodes/*': async (req, res, u) => {
      stats.count('requests');
      const rest = u.pathname.slice('/v1/nodes/'.length).split('/');
      if (rest.length !== 2 || !rest[0]) throw new HttpError(404, `no route POST ${u.pathname}`);
      const id = decodeURIComponent(rest[0]);
      const action = rest[1];
      let forward: [string, unknown];
      if (action === 'drain' || action === 'undrain') {
        forward = ['/admin/drain', { draining: action === 'drain' }];
      } else if (action === 'config') {
        const body = await readJson(req);
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'config must be a JSON object');
        forward = ['/admin/config', body];
      } else {
        throw new HttpError(404, `unknown node action "${action}": drain, undrain or config`);
      }
      const node = await findNode(id);
      const [status, answer] = await callAdmin(node, ...forward);
      log.info(`node ${action}`, { id, status });
      sendJson(res, status, answer);
    },
    'GET /stats': async (_req, res) => {
      sendJson(res, 200, {
        id: config.id,
        role: 'control',
        uptimeMs: Date.now() - startedAt,
        routers,
        counters: stats.counters(),
        requestsPerSec: stats.rate('requests'),
        cpu: stats.cpu,
        eventLoopP99Ms: stats.eventLoopP99Ms,
        rssMb: stats.rssMb(),
      });
    },
    'POST /admin/drain': async (req, res) => {
      const body = await readJson<{ draining?: unknown }>(req);
      if (body.draining !== undefined && typeof body.draining !== 'boolean') throw new HttpError(400, 'draining must be a boolean');
      draining = body.draining ?? true;
      await heartbeat.beat();
      sendJson(res, 200, { ok: true, id: config.id, draining });
    },
    'POST /admin/config': async (req, res) => {
      const body = await readJson<Record<string, unknown>>(req);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'config must be a JSON object');
      const unsupported = Object.keys(body).filter((k) => k !== 'routers');
      if (unsupported.length > 0) throw new HttpError(400, `not live-changeable: ${unsupported.join(', ')} (supported: routers)`);
      if (body.routers !== undefined) {
        const list = body.routers;
        if (!Array.isArray(list) || list.length === 0 || !list.every((r) => typeof r === 'string' && /^https?:\/\//.test(r)))
          throw new HttpError(400, 'routers must be a non-empty array of http(s) URLs');
        routers.splice(0, routers.length, ...(list as string[]));
        nextRouter = 0;
        log.info('routers changed', { routers });
      }
      sendJson(res, 200, { ok: true, id: config.id, applied: body });
    },
  };

  const record = (): NodeRecord => {
    stats.sample();
    return selfRecord({ id: config.id, role: 'control', urls: { http: url, admin: url }, protocols: ['http'], draining, startedAt, stats, load: { msgsInPerSec: stats.rate('requests') } });
  };
  const heartbeat = new Heartbeat({ routers, intervalMs: config.heartbeatMs, record, log, auth: asRole });

  const healthz: Routes = {
    'GET /healthz': async (_req, res) => sendJson(res, draining ? 503 : 200, { ok: !draining, id: config.id, draining }, CORS),
  };
  const metrics = new RoleMetrics({ role: 'control', id: config.id, stats, log, ...(ctx.bus ? { bus: ctx.bus } : {}) });
  controlMetrics(metrics, { stats });
  const server = createAdminServer({ public: healthz, admin: routes, metrics: metrics.routes() }, ctx.secrets);
  const host = config.adminHost ?? config.host;
  const port = await listen(server, config.port, host);
  url = `http://${host}:${port}`;
  // A router that is not up yet is no reason to fail: the heartbeat keeps trying.
  await heartbeat.start();
  log.info('control listening', { url, routers });

  return {
    urls: { http: url },
    async stop() {
      await heartbeat.stop();
      await closeServer(server);
      metrics.stop();
      stats.stop();
    },
  };
}

const CORS = { 'access-control-allow-origin': '*' };

/** Where a node's admin listener is (never its client port). */
export function adminUrl(node: NodeRecord): string | undefined {
  return node.urls.admin;
}

export function summarize(nodes: readonly TopologyNode[]): TopologySummary {
  const s: TopologySummary = {
    routers: 0,
    gateways: 0,
    servers: 0,
    feeds: 0,
    controls: 0,
    draining: 0,
    unhealthy: 0,
    connections: 0,
    subscriptions: 0,
    msgsInPerSec: 0,
    msgsOutPerSec: 0,
  };
  for (const n of nodes) {
    if (n.draining) s.draining++;
    if (!n.healthy) s.unhealthy++;
    switch (n.role) {
      case 'router':
        s.routers++;
        break;
      case 'gateway':
        s.gateways++;
        s.connections += n.load.connections;
        s.subscriptions += n.load.subscriptions;
        s.msgsOutPerSec += n.load.msgsOutPerSec;
        break;
      case 'server':
        s.servers++;
        s.msgsInPerSec += n.load.msgsInPerSec;
        break;
      case 'feed':
        s.feeds++;
        break;
      case 'control':
        s.controls++;
        break;
    }
  }
  return s;
}

async function attachStats(node: TopologyNode, auth: Record<string, string>): Promise<void> {
  const base = adminUrl(node);
  if (!base) {
    node.statsError = 'no admin URL';
    return;
  }
  try {
    node.stats = await fetchJson(`${base}/stats`, { headers: auth, timeoutMs: STATS_TIMEOUT_MS });
  } catch (err) {
    node.statsError = errMessage(err);
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function errMessage(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return 'timed out';
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return err instanceof Error ? `${err.message}${cause}` : String(err);
}
