// `pushctl up --nats-cluster N`: N nats-servers joined by routes, each its own
// process with its own client and route port (cli/lib/port-plan.ts), the same
// per-role users (cli/lib/nats-server-config.ts), and JetStream clustered so
// streams and KV buckets keep min(N, 3) replicas. Pure planning: the config
// text gets its credentials in cli/lib/store-configs.ts.
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import type { ClusterSecrets, Credential } from '../../system/common/secrets.ts';
import type { NatsClusterBlock } from './nats-server-config.ts';
import type { EngineNodePorts } from './port-plan.ts';

export const NATS_CLUSTER_NAME = 'market-push';

/** JetStream replicas for a cluster of this many nodes: 3 survives one node down; more only costs. */
export const jetStreamReplicas = (nodes: number) => Math.max(1, Math.min(3, nodes));

export const natsNodeId = (i: number) => `nats-${i + 1}`;

/**
 * The credential nodes present to each other on their route ports. Derived from
 * the cluster token (HMAC), so every host holding the secrets file agrees on it
 * and the file format stays as it is; no role user can open a route.
 */
export function routeCredential(secrets: ClusterSecrets): Credential {
  const password = createHmac('sha256', secrets.clusterToken).update('nats-route').digest('base64url');
  return { user: 'mp-route', password };
}

/** Where one node's peers listen for routes. */
export interface NatsNodePeers {
  index: number;
  /** Every node's route listener, this node's included (nats-server skips its own). */
  routes: Array<{ host: string; port: number }>;
}

/** The cluster block of one node's config. */
export function natsClusterBlock(p: NatsNodePeers, secrets: ClusterSecrets): NatsClusterBlock {
  const auth = routeCredential(secrets);
  const self = p.routes[p.index];
  if (!self) throw new Error(`nats cluster node ${p.index + 1} has no route port`);
  return {
    serverName: natsNodeId(p.index),
    name: NATS_CLUSTER_NAME,
    listen: `${self.host}:${self.port}`,
    auth,
    routes: p.routes
      .filter((_, i) => i !== p.index)
      .map((r) => `nats-route://${encodeURIComponent(auth.user)}:${encodeURIComponent(auth.password)}@${r.host}:${r.port}`),
  };
}

export interface NatsNodePlan {
  id: string;
  host: string;
  port: number;
  routePort: number;
  configPath: string;
  storeDir: string;
  peers: NatsNodePeers;
}

/** Every node: ids nats-1…nats-N, config files and JetStream stores apart in the data dir. */
export function planNatsNodes(dataDir: string, ports: EngineNodePorts, hostOf: (id: string) => string): NatsNodePlan[] {
  const n = ports.client.length;
  if (n < 2) throw new Error('--nats-cluster needs at least 2 nodes (1 is the single nats-server)');
  if (ports.cluster.length !== n) throw new Error(`--nats-cluster ${n}: ${ports.cluster.length} route ports planned`);
  const routes = ports.cluster.map((port, i) => ({ host: hostOf(natsNodeId(i)), port }));
  return ports.client.map((port, i) => {
    const id = natsNodeId(i);
    return {
      id,
      host: hostOf(id),
      port,
      routePort: ports.cluster[i]!,
      configPath: join(dataDir, `${id}.conf`),
      storeDir: join(dataDir, id),
      peers: { index: i, routes },
    };
  });
}

/** The URL list every role gets: a client reconnects to any node that is up. */
export const natsClusterUrl = (nodes: NatsNodePlan[]) => nodes.map((n) => `nats://${n.host}:${n.port}`).join(',');

/**
 * Waits until the cluster's JetStream answers (a meta leader is elected), so
 * roles that create streams and KV buckets at start find it ready. Asks as the
 * operator user, which may call $JS.API.INFO.
 */
export async function waitForJetStream(url: string, operator: Credential, timeoutMs = 60_000): Promise<void> {
  const { connect } = await import('@nats-io/transport-node');
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const deadline = Date.now() + timeoutMs;
  const nc = await connect({ servers: url.split(','), user: operator.user, pass: operator.password, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  let last = '';
  try {
    for (;;) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 2_000 });
        await jsm.getAccountInfo();
        return;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`the NATS cluster's JetStream did not become ready within ${Math.round(timeoutMs / 1000)} s: ${last}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await nc.close();
  }
}
