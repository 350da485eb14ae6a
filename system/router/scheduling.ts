// The router's choices, as pure functions of the live node list: which
// gateway a client should use, which server serves a topic, which symbols the
// feeds publish. Kept free of I/O so every router (and a gateway that caches
// the server list) computes the same answer from the same registry.
import { rendezvous } from '../common/hashing.ts';
import type { NodeLoad, NodeRecord } from '../common/registry.ts';

export interface GatewayChoice {
  id: string;
  url: string;
  load: NodeLoad;
  draining: false;
}

/** A gateway speaks `protocol` when it advertises a URL for it or lists it. */
export function supportsProtocol(node: NodeRecord, protocol: string): boolean {
  // The admin listener is advertised to the cluster, never handed to clients.
  if (protocol === 'admin') return false;
  return typeof node.urls[protocol] === 'string' || node.protocols.includes(protocol);
}

/**
 * Healthy (live, not draining) gateways for `protocol`, least-loaded first:
 * fewest connections, then lowest CPU, then id so ties are stable. The URL is
 * the one advertised for the protocol (falling back to the gateway's http URL
 * for protocols it only lists, e.g. gRPC-web on the same port).
 *
 * `pending` counts clients this router sent to a gateway since that gateway's
 * last heartbeat. Without it every client asking between two heartbeats gets
 * the same gateway, and a reconnect storm lands on one node.
 */
export function chooseGateways(
  nodes: readonly NodeRecord[],
  protocol: string,
  limit = Infinity,
  pending: ReadonlyMap<string, number> = new Map(),
): GatewayChoice[] {
  const load = (n: NodeRecord) => n.load.connections + (pending.get(n.id) ?? 0);
  return nodes
    .filter((n) => n.role === 'gateway' && !n.draining && supportsProtocol(n, protocol))
    .filter((n) => gatewayUrl(n, protocol) !== undefined)
    .sort((a, b) => load(a) - load(b) || a.load.cpu - b.load.cpu || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, limit)
    .map((n) => ({ id: n.id, url: gatewayUrl(n, protocol)!, load: n.load, draining: false as const }));
}

function gatewayUrl(node: NodeRecord, protocol: string): string | undefined {
  return node.urls[protocol] ?? node.urls.http;
}

/** Servers a topic may be routed to: live, not draining, with a gRPC address; sorted by id. */
export function routableServers(nodes: readonly NodeRecord[]): NodeRecord[] {
  return nodes
    .filter((n) => n.role === 'server' && !n.draining && typeof n.urls.grpc === 'string')
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The server owning `topic` (already normalised) by rendezvous hashing, or undefined when none is routable. */
export function routeTopic(topic: string, nodes: readonly NodeRecord[]): { id: string; grpc: string } | undefined {
  const servers = routableServers(nodes);
  const id = rendezvous(
    topic,
    servers.map((s) => s.id),
  );
  if (id === undefined) return undefined;
  return { id, grpc: servers.find((s) => s.id === id)!.urls.grpc! };
}

/** Union of the symbols every live feed says it publishes (meta.symbols), sorted. */
export function symbolUnion(nodes: readonly NodeRecord[]): string[] {
  const all = new Set<string>();
  for (const n of nodes) {
    if (n.role !== 'feed') continue;
    const symbols = n.meta?.symbols;
    if (!Array.isArray(symbols)) continue;
    for (const s of symbols) if (typeof s === 'string' && s !== '') all.add(s.toLowerCase());
  }
  return [...all].sort();
}
