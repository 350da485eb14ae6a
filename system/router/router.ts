// push-router: the registry's HTTP face. Nodes heartbeat their NodeRecord
// here; clients ask which gateway to use, gateways ask which server serves a
// topic. The router keeps no state of its own: the registry lives in a
// JetStream KV bucket shared by every router (or in memory in embedded mode),
// so any router answers the same and one dying costs nothing but a retry.
// Its one piece of soft state besides: which overdue gateways did not answer
// a probe (gateway-probe.ts), so a killed gateway stops being handed out
// about 1.5 heartbeat intervals after its last beat, not at its expiry.
// Two listeners: the client port answers what clients need (which gateway,
// which symbols, health); the registry and its topology live on the admin
// listener, where only a role with the cluster token may register or
// deregister a node and only the operator may drain or read stats.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RouterConfig } from '../common/config.ts';
import { createAdminServer } from '../common/admin-http.ts';
import { closeServer, createJsonServer, HttpError, listen, readJson, sendJson, type Routes } from '../common/http.ts';
import { KvRegistry } from '../common/kv-registry.ts';
import { NatsBus } from '../common/nats-bus.ts';
import { ProcessStats } from '../common/process-stats.ts';
import { RoleMetrics } from '../common/metrics.ts';
import { routerMetrics } from '../common/metrics-roles.ts';
import { EMPTY_LOAD, selfRecord as makeSelfRecord, type NodeLoad, type NodeRecord, type RegistryStore, type Role } from '../common/registry.ts';
import type { RoleContext, RoleHandle } from '../common/run-role.ts';
import { parseTopic } from '../common/topics.ts';
import { httpScheme, loadTlsFiles } from '../common/tls.ts';
import { setPair, watchTlsFiles, type SecureContextHolder } from '../common/tls-reload.ts';
import { GatewayProbe } from './gateway-probe.ts';
import { chooseGateways, routableServers, routeTopic, symbolUnion } from './scheduling.ts';

const ROLES: readonly Role[] = ['router', 'gateway', 'server', 'control', 'feed'];
// Same alphabet the KV registry accepts for keys, enforced for every store so
// a node that works embedded also works clustered.
const NODE_ID_RE = /^[-_=a-zA-Z0-9]{1,128}$/;
const PROTOCOL_RE = /^[a-z0-9][a-z0-9-]{0,31}$/;
// Browsers ask the router for a gateway from any origin.
const CORS = { 'access-control-allow-origin': '*' };
const REGISTRY_TIMEOUT_MS = 2_000;

export async function startRouter(config: RouterConfig, ctx: RoleContext): Promise<RoleHandle> {
  const { log } = ctx;
  const ownsRegistry = !ctx.registry;
  const registry = ctx.registry ?? (await openKvRegistry(config, ctx));
  const stats = new ProcessStats();
  const startedAt = Date.now();
  let draining = false;
  let url = '';
  let adminUrl = '';
  // Soft state, this router only: clients sent to each gateway since its last heartbeat.
  const handedOut = new Map<string, number>();
  // Soft state, this router only: overdue gateways that did not answer their probe. Every role beats at the
  // router's heartbeatMs by default (pushctl up gives them all the same), so that is the interval "overdue" is read in.
  const probe = new GatewayProbe({
    intervalMs: config.heartbeatMs,
    onVerdict: (n, verdict) => {
      stats.count('gateway_probes');
      if (verdict !== 'gone') return;
      stats.count('gateways_gone');
      log.warn('gateway heartbeat overdue and its probe failed: no longer handed out', { id: n.id, lastHeartbeatMsAgo: Date.now() - n.seenAt });
    },
  });

  const selfRecord = (): NodeRecord =>
    makeSelfRecord({ id: config.id, role: 'router', urls: { http: url, admin: adminUrl }, protocols: ['http'], draining, startedAt, stats, load: { msgsInPerSec: stats.rate('requests') } });

  // The router registers itself straight into the registry so topology shows it.
  let stopped = false;
  const beatSelf = async () => {
    if (stopped) return;
    stats.sample();
    try {
      await withTimeout(registry.put(selfRecord()), REGISTRY_TIMEOUT_MS, 'registry write');
    } catch (err) {
      log.warn('self heartbeat failed', { err: errMessage(err) });
    }
  };

  const liveNodes = async (): Promise<NodeRecord[]> => {
    try {
      return await registry.list();
    } catch (err) {
      throw new HttpError(503, `registry (${registry.kind}) unavailable: ${errMessage(err)}`);
    }
  };

  const get = (handler: (url: URL) => Promise<[number, unknown]>) => async (_req: IncomingMessage, res: ServerResponse, u: URL) => {
    stats.count('requests');
    let status: number;
    let body: unknown;
    try {
      [status, body] = await handler(u);
    } catch (err) {
      const known = err instanceof HttpError;
      status = known ? err.status : 500;
      body = { error: known ? err.message : 'internal error' };
    }
    sendJson(res, status, body, CORS);
  };

  const healthz = get(async () => {
    await liveNodes();
    // A draining router answers 503 so a load balancer in front takes it out.
    return [draining ? 503 : 200, { ok: !draining, id: config.id, draining }];
  });
  const symbols = get(async () => [200, { symbols: symbolUnion(await liveNodes()) }]);

  // What clients (browsers, bench agents) need: no topology, no registry writes.
  const clientRoutes: Routes = {
    'GET /v1/gateways': get(async (u) => {
      const protocol = u.searchParams.get('protocol') ?? 'ws';
      if (!PROTOCOL_RE.test(protocol)) return [400, { error: `invalid protocol "${protocol}"` }];
      const limitParam = u.searchParams.get('limit');
      let limit = Infinity;
      if (limitParam !== null) {
        limit = Number(limitParam);
        if (!Number.isInteger(limit) || limit < 1) return [400, { error: `limit must be a positive integer, got "${limitParam}"` }];
      }
      const gateways = chooseGateways(await probe.filter(await liveNodes()), protocol, limit, handedOut);
      if (gateways.length === 0) return [503, { error: `no healthy gateway for protocol "${protocol}"`, gateways }];
      // Clients take the first: count it until that gateway's next heartbeat reports real load.
      handedOut.set(gateways[0]!.id, (handedOut.get(gateways[0]!.id) ?? 0) + 1);
      return [200, { gateways }];
    }),
    // The symbols are public market data (the gateways' exchangeInfo lists them too).
    'GET /v1/symbols': symbols,
    // Where Binance REST clients (charts, market data) go: the history processes, off the stream path.
    // None planned: the gateways' http URLs (GET /v1/gateways?protocol=http) serve REST too.
    'GET /v1/rest': get(async () => [200, { rest: config.restUrls ?? [], fallback: 'GET /v1/gateways?protocol=http' }]),
    'GET /healthz': healthz,
  };

  const registryRoutes: Routes = {
    'POST /v1/heartbeat': async (req, res) => {
      stats.count('requests');
      stats.count('heartbeats');
      const rec = validateHeartbeat(await readJson(req));
      if (typeof rec === 'string') throw new HttpError(400, rec);
      try {
        // Bounded so heartbeats fail fast (503) during a NATS outage instead of piling up.
        await withTimeout(registry.put(rec), REGISTRY_TIMEOUT_MS, 'registry write');
        handedOut.delete(rec.id);
      } catch (err) {
        throw new HttpError(503, `registry (${registry.kind}) unavailable: ${errMessage(err)}`);
      }
      sendJson(res, 200, { ok: true, id: rec.id, expiryMs: config.expiryMs });
    },
    'DELETE /v1/nodes/*': async (_req, res, u) => {
      stats.count('requests');
      const id = decodeURIComponent(u.pathname.slice('/v1/nodes/'.length));
      if (!NODE_ID_RE.test(id)) throw new HttpError(400, `invalid node id "${id}": use 1-128 letters, digits, - _ =`);
      const existed = (await liveNodes()).some((n) => n.id === id);
      try {
        await withTimeout(registry.remove(id), REGISTRY_TIMEOUT_MS, 'registry delete');
      } catch (err) {
        throw new HttpError(503, `registry (${registry.kind}) unavailable: ${errMessage(err)}`);
      }
      // Idempotent: removing an absent node is not an error, so a node that
      // deregisters through several routers never sees a failure.
      sendJson(res, 200, { ok: true, id, existed });
    },
    'GET /v1/nodes': get(async (u) => {
      const role = u.searchParams.get('role');
      if (role !== null && !ROLES.includes(role as Role)) return [400, { error: `unknown role "${role}": one of ${ROLES.join(', ')}` }];
      const nodes = (await liveNodes()).filter((n) => role === null || n.role === role);
      nodes.sort((a, b) => cmp(a.role, b.role) || cmp(a.id, b.id));
      return [200, { nodes }];
    }),
    'GET /v1/servers': get(async () => [200, { servers: routableServers(await liveNodes()) }]),
    'GET /v1/route': get(async (u) => {
      const parsed = parseTopic(u.searchParams.get('topic') ?? undefined);
      if (typeof parsed === 'string') return [400, { error: parsed }];
      const server = routeTopic(parsed.topic, await liveNodes());
      if (!server) return [503, { error: `no healthy server to serve "${parsed.topic}"`, topic: parsed.topic }];
      return [200, { topic: parsed.topic, server }];
    }),
    'GET /v1/symbols': symbols,
  };

  const operatorRoutes: Routes = {
    'GET /stats': get(async () => [
      200,
      {
        id: config.id,
        role: 'router',
        registry: registry.kind,
        nodes: (await liveNodes()).length,
        uptimeMs: Date.now() - startedAt,
        counters: stats.counters(),
        requestsPerSec: stats.rate('requests'),
        heartbeatsPerSec: stats.rate('heartbeats'),
        cpu: stats.cpu,
        eventLoopP99Ms: stats.eventLoopP99Ms,
        rssMb: stats.rssMb(),
      },
    ]),
    'POST /admin/drain': async (req, res) => {
      const body = await readJson<{ draining?: unknown }>(req);
      if (body.draining !== undefined && typeof body.draining !== 'boolean') throw new HttpError(400, 'draining must be a boolean');
      draining = body.draining ?? true;
      log.info(draining ? 'draining' : 'undrained');
      await beatSelf();
      sendJson(res, 200, { ok: true, id: config.id, draining });
    },
    'POST /admin/config': async (req, res) => {
      const body = await readJson(req);
      if (!isPlainObject(body)) throw new HttpError(400, 'config must be a JSON object');
      const keys = Object.keys(body);
      // Every router setting is fixed at start (the KV bucket's TTL is the expiry).
      if (keys.length > 0) throw new HttpError(400, `the router has no live-changeable settings; got ${keys.join(', ')}`);
      sendJson(res, 200, { ok: true, id: config.id, applied: {} });
    },
  };

  // Browsers ask the client port for a gateway: https when the cluster has a certificate. The admin plane stays plain
  // http on the cluster's own address.
  const tls = config.tls ? loadTlsFiles(config.tls) : undefined;
  const server = createJsonServer(clientRoutes, tls);
  const metrics = new RoleMetrics({ role: 'router', id: config.id, stats, log, ...(ctx.bus ? { bus: ctx.bus } : {}) });
  routerMetrics(metrics, { stats });
  const admin = createAdminServer({ public: { 'GET /healthz': healthz }, cluster: registryRoutes, admin: operatorRoutes, metrics: metrics.routes() }, ctx.secrets);
  const port = await listen(server, config.port, config.host);
  url = `${httpScheme(tls)}://${config.host}:${port}`;
  const adminHost = config.adminHost ?? config.host;
  try {
    adminUrl = `http://${adminHost}:${await listen(admin, config.adminPort, adminHost)}`;
  } catch (err) {
    await closeServer(server);
    throw new Error(`router admin port ${adminHost}:${config.adminPort}: ${errMessage(err)}`);
  }
  // A renewed certificate (SIGHUP or the files changing) is served without a restart.
  const tlsReload = config.tls && tls ? watchTlsFiles(config.tls, tls, [setPair(server as SecureContextHolder)], log) : undefined;

  await beatSelf();
  // Never slower than a third of the expiry, or the router would blink out of its own registry.
  const timer = setInterval(() => void beatSelf(), Math.min(config.heartbeatMs, config.expiryMs / 3));
  timer.unref();
  // Probes start in the background as soon as a gateway is overdue, so a client's lookup rarely waits for one.
  const sweep = setInterval(() => {
    if (!stopped) registry.list().then((nodes) => probe.check(nodes), () => {});
  }, Math.max(100, Math.floor(config.heartbeatMs / 2)));
  sweep.unref();
  log.info('router listening', { url, admin: adminUrl, registry: registry.kind, expiryMs: config.expiryMs, ...(tls ? { tlsFingerprint256: tls.fingerprint256 } : {}) });

  return {
    urls: { http: url, admin: adminUrl },
    async stop() {
      stopped = true;
      tlsReload?.stop();
      clearInterval(timer);
      clearInterval(sweep);
      await probe.idle();
      try {
        // Bounded: a NATS outage must not hold up shutdown; the entry then just expires.
        await withTimeout(registry.remove(config.id), 1_000, 'deregistering');
      } catch (err) {
        log.warn('could not deregister', { err: errMessage(err) });
      }
      await closeServer(server);
      await closeServer(admin);
      metrics.stop();
      stats.stop();
      if (ownsRegistry) await registry.close();
    },
  };
}

async function openKvRegistry(config: RouterConfig, ctx: RoleContext): Promise<RegistryStore> {
  if (ctx.bus instanceof NatsBus) return KvRegistry.open(ctx.bus.nc, config.expiryMs, config.natsReplicas ?? 1);
  throw new Error(
    'push-router needs a registry: give it a NATS URL (config.nats) for the shared JetStream KV registry, ' +
      'or run it embedded with an in-memory registry',
  );
}

/** Checks a heartbeat body and builds a clean NodeRecord, or returns what is wrong with it. */
export function validateHeartbeat(body: unknown): NodeRecord | string {
  if (!isPlainObject(body)) return 'heartbeat body must be a JSON object (a NodeRecord)';
  const { id, role, urls, protocols, draining, startedAt, load, meta } = body;
  if (typeof id !== 'string' || id === '') return 'heartbeat needs "id": a non-empty string';
  if (!NODE_ID_RE.test(id)) return `invalid node id "${id}": use 1-128 letters, digits, - _ =`;
  if (typeof role !== 'string') return 'heartbeat needs "role"';
  if (!ROLES.includes(role as Role)) return `unknown role "${role}": one of ${ROLES.join(', ')}`;
  if (!isPlainObject(urls)) return 'heartbeat needs "urls": an object of protocol → URL';
  for (const [k, v] of Object.entries(urls)) if (typeof v !== 'string' || v === '') return `urls.${k} must be a non-empty string`;
  if (protocols !== undefined && !(Array.isArray(protocols) && protocols.every((p) => typeof p === 'string')))
    return '"protocols" must be an array of strings';
  if (draining !== undefined && typeof draining !== 'boolean') return '"draining" must be a boolean';
  if (startedAt !== undefined && !Number.isFinite(startedAt)) return '"startedAt" must be a number (ms since epoch)';
  if (load !== undefined && !isPlainObject(load)) return '"load" must be an object';
  const cleanLoad: NodeLoad = { ...EMPTY_LOAD };
  for (const k of Object.keys(EMPTY_LOAD) as (keyof NodeLoad)[]) {
    const v = load?.[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) return `load.${k} must be a finite number`;
    cleanLoad[k] = v;
  }
  if (meta !== undefined && !isPlainObject(meta)) return '"meta" must be an object';
  const rec: NodeRecord = {
    id,
    role: role as Role,
    urls: urls as Record<string, string>,
    protocols: (protocols as string[] | undefined) ?? [],
    draining: draining ?? false,
    startedAt: (startedAt as number | undefined) ?? Date.now(),
    seenAt: Date.now(),
    load: cleanLoad,
  };
  if (meta !== undefined) rec.meta = meta;
  return rec;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
