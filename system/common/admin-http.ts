// The admin plane every role shares: one HTTP listener per role, bound to the
// cluster's own address, whose routes each name who may call them.
//   public   anyone who reaches the listener (only /healthz: up or not)
//   cluster  roles (the cluster token) and the operator (the admin token)
//   admin    the operator only (the admin token)
//   metrics  a Prometheus scraper (the read-only metrics token) and the operator
// A role started without secrets (no config.secretsFile) has no credential to
// check: it refuses every admin action, and serves cluster routes to loopback
// callers only, so a hand-started single-host setup still works but nothing
// that reaches it over the network can change or read its state.
import type { IncomingMessage, Server } from 'node:http';
import { createJsonServer, sendJson, type Handler, type Routes } from './http.ts';
import { bearerOf, sameSecret, type ClusterSecrets } from './secrets.ts';

export type Audience = 'public' | 'cluster' | 'admin' | 'metrics';

export interface AdminRoutes {
  public?: Routes;
  cluster?: Routes;
  admin?: Routes;
  /** Read-only figures (GET /metrics): the metrics token or the admin token. */
  metrics?: Routes;
}

/** Why a request may not run, as the status and short JSON body to send; undefined when it may. */
export type Refusal = { status: 401 | 403; error: string };

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/** Checks the request's bearer token against what `audience` needs. */
export function authorize(req: IncomingMessage, audience: Audience, secrets: ClusterSecrets | undefined): Refusal | undefined {
  if (audience === 'public') return undefined;
  if (!secrets) {
    if (audience === 'admin') return { status: 403, error: 'this role has no admin credential configured: admin actions are off' };
    if (LOOPBACK.has(req.socket.remoteAddress ?? '')) return undefined;
    return { status: 403, error: 'this role has no cluster credential configured: it serves cluster calls from loopback only' };
  }
  const presented = bearerOf(req.headers.authorization);
  if (presented === undefined) return { status: 401, error: 'credential required: send Authorization: Bearer <token>' };
  if (sameSecret(presented, secrets.adminToken)) return undefined;
  // The metrics token reads figures and nothing else: a scraper that leaks it can change nothing.
  if (secrets.metricsToken !== undefined && sameSecret(presented, secrets.metricsToken)) {
    return audience === 'metrics' ? undefined : { status: 403, error: 'the metrics token reads /metrics only' };
  }
  if (sameSecret(presented, secrets.clusterToken)) {
    if (audience === 'metrics') return { status: 403, error: 'metrics need the metrics token (secrets.json "metricsToken") or the admin token' };
    return audience === 'cluster' ? undefined : { status: 403, error: "this action needs the operator's admin token" };
  }
  return { status: 401, error: 'credential not accepted' };
}

function guard(audience: Audience, handler: Handler, secrets: ClusterSecrets | undefined): Handler {
  return (req, res, url) => {
    const refused = authorize(req, audience, secrets);
    if (!refused) return handler(req, res, url);
    req.resume(); // discard any body, keep the connection usable
    sendJson(res, refused.status, { error: refused.error }, refused.status === 401 ? { 'www-authenticate': 'Bearer' } : {});
  };
}

/** One route table with every route wrapped in its audience's credential check. */
export function guardRoutes(routes: AdminRoutes, secrets: ClusterSecrets | undefined): Routes {
  const out: Routes = {};
  for (const audience of ['public', 'cluster', 'admin', 'metrics'] as const) {
    for (const [key, handler] of Object.entries(routes[audience] ?? {})) {
      if (key in out) throw new Error(`admin route ${key} is listed twice`);
      out[key] = guard(audience, handler, secrets);
    }
  }
  return out;
}

/** The role's admin listener (not yet listening): call `listen(server, port, host)`. */
export function createAdminServer(routes: AdminRoutes, secrets: ClusterSecrets | undefined): Server {
  return createJsonServer(guardRoutes(routes, secrets));
}

/** Headers a role sends on its calls to other roles: its cluster token, when it has one. */
export function clusterAuth(secrets: ClusterSecrets | undefined): Record<string, string> {
  return secrets ? { authorization: `Bearer ${secrets.clusterToken}` } : {};
}

/** Headers an operator tool (or control acting for one) sends: the admin token, when known. */
export function adminAuth(secrets: Pick<ClusterSecrets, 'adminToken'> | undefined): Record<string, string> {
  return secrets ? { authorization: `Bearer ${secrets.adminToken}` } : {};
}
