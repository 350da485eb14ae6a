// The port layout of `pushctl up`: every listener of the cluster from a base
// port B (the documented fixed offsets), or from a list of free ports in the
// same order. Pure, unit-tested (test/unit/cluster-plan.test.ts).
export interface RoleCounts {
  routers: number;
  gateways: number;
  servers: number;
  /** History processes, the cluster's REST host (0: none; unset: 1). */
  historyProcs?: number;
}

/** Every port the cluster may listen on. */
export interface PortMap {
  /** Routers' client ports (which gateway, symbols, health). */
  routers: number[];
  /** Routers' admin listeners: the registry (cluster token) and operator actions (admin token). */
  routerAdmin: number[];
  control: number;
  /** Gateways' client ports: WebSocket, REST, gRPC-web, demo. */
  gateways: number[];
  gatewayTcp: number[];
  gatewayGrpc: number[];
  gatewayAdmin: number[];
  serverGrpc: number[];
  serverAdmin: number[];
  feedAdmin: number;
  nats: number;
  redis: number;
  /** History processes' client ports: the cluster's REST host (klines and every public market route). */
  history: number[];
}

export const MAX_ROUTERS = 90; // router ports B+0…B+89, control at B+90
export const MAX_PER_ROLE = 100; // gateways, servers: 100 ports each

export function validateCounts(c: RoleCounts): void {
  if (!Number.isInteger(c.routers) || c.routers < 1 || c.routers > MAX_ROUTERS)
    throw new Error(`--routers must be between 1 and ${MAX_ROUTERS}`);
  if (!Number.isInteger(c.gateways) || c.gateways < 1 || c.gateways > MAX_PER_ROLE)
    throw new Error(`--gateways must be between 1 and ${MAX_PER_ROLE}`);
  if (!Number.isInteger(c.servers) || c.servers < 1 || c.servers > MAX_PER_ROLE)
    throw new Error(`--servers must be between 1 and ${MAX_PER_ROLE}`);
  if (c.historyProcs !== undefined && (!Number.isInteger(c.historyProcs) || c.historyProcs < 0 || c.historyProcs > MAX_PER_ROLE))
    throw new Error(`--history-procs must be between 0 and ${MAX_PER_ROLE}`);
}

/** History processes planned: one unless told otherwise. */
export const historyCount = (c: RoleCounts) => c.historyProcs ?? 1;

const range = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

/** Ports B … B+PORT_SPAN-1 hold every listener of the fixed layout. */
export const PORT_SPAN = 1200;

/** The fixed layout from a base port B (see `pushctl up --help` and docs/operations.md). */
export function portsFromBase(base: number, c: RoleCounts): PortMap {
  validateCounts(c);
  if (!Number.isInteger(base) || base < 1 || base + PORT_SPAN - 1 > 65535)
    throw new Error(`--port-base must be between 1 and ${65535 - PORT_SPAN + 1} (or 0 for free ports)`);
  return {
    routers: range(c.routers, (i) => base + i),
    routerAdmin: range(c.routers, (i) => base + 1000 + i),
    control: base + 90,
    gateways: range(c.gateways, (i) => base + 100 + i),
    gatewayTcp: range(c.gateways, (i) => base + 700 + i),
    gatewayGrpc: range(c.gateways, (i) => base + 800 + i),
    gatewayAdmin: range(c.gateways, (i) => base + 900 + i),
    serverGrpc: range(c.servers, (i) => base + 200 + i),
    serverAdmin: range(c.servers, (i) => base + 300 + i),
    feedAdmin: base + 400,
    nats: base + 500,
    redis: base + 600,
    history: range(historyCount(c), (i) => base + 1100 + i),
  };
}

/** How many ports `portsFromList` consumes. */
export function portCount(c: RoleCounts): number {
  return 2 * c.routers + 1 + 4 * c.gateways + 2 * c.servers + 1 + 2 + historyCount(c);
}

/** The same layout from a list of (free) ports, in `portCount` order. */
export function portsFromList(ports: number[], c: RoleCounts): PortMap {
  validateCounts(c);
  if (ports.length < portCount(c)) throw new Error(`need ${portCount(c)} ports, got ${ports.length}`);
  let next = 0;
  const take = (n: number) => ports.slice(next, (next += n));
  return {
    routers: take(c.routers),
    control: take(1)[0]!,
    gateways: take(c.gateways),
    serverGrpc: take(c.servers),
    serverAdmin: take(c.servers),
    feedAdmin: take(1)[0]!,
    nats: take(1)[0]!,
    redis: take(1)[0]!,
    // Taken last, so the ports above keep their place in the list.
    routerAdmin: take(c.routers),
    gatewayTcp: take(c.gateways),
    gatewayGrpc: take(c.gateways),
    gatewayAdmin: take(c.gateways),
    history: take(historyCount(c)),
  };
}

/**
 * Clustered engines (`--nats-cluster N`, `--redis-cluster N`): every node's
 * client port and its cluster port (NATS routes, the Redis cluster bus).
 * From a base: NATS node i at B+500+i (node 1 keeps the single server's port),
 * its route port B+550+i; Redis node i at B+600+i, its bus port B+650+i.
 */
export interface EngineNodePorts {
  client: number[];
  cluster: number[];
}

export const MAX_ENGINE_NODES = 50;

function validateEngineNodes(n: number, flag: string, least: number): void {
  if (!Number.isInteger(n) || n < least || n > MAX_ENGINE_NODES) throw new Error(`${flag} must be between ${least} and ${MAX_ENGINE_NODES}`);
}

export function natsNodePortsFromBase(base: number, nodes: number): EngineNodePorts {
  validateEngineNodes(nodes, '--nats-cluster', 1);
  return { client: range(nodes, (i) => base + 500 + i), cluster: range(nodes, (i) => base + 550 + i) };
}

export function redisNodePortsFromBase(base: number, nodes: number): EngineNodePorts {
  validateEngineNodes(nodes, 'redis cluster nodes', 3);
  return { client: range(nodes, (i) => base + 600 + i), cluster: range(nodes, (i) => base + 650 + i) };
}

/** The same from a list of free ports: the first client port is the one the port map already holds. */
export function engineNodePortsFromList(first: number, free: number[], nodes: number): EngineNodePorts {
  if (free.length < 2 * nodes - 1) throw new Error(`need ${2 * nodes - 1} ports, got ${free.length}`);
  return { client: [first, ...free.slice(0, nodes - 1)], cluster: free.slice(nodes - 1, 2 * nodes - 1) };
}
