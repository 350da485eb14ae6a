// `pushctl up --join MAIN_DATA_DIR --gateways N`: gateways on another host
// joining a running cluster. They take the cluster's bus URLs, its routers'
// admin listeners (to register) and client ports (for the demo page) from the
// cluster's state file, and its credentials from its secrets file (a copy on
// the joining host: the file, never the secrets, is named). Their ids carry
// the host's name (`<name>-gateway-i`) so they are unique in the registry.
// The plan lists the cluster's router, control and feed as roles (for the
// registration wait and the endpoints) but starts only the new gateways, so
// `pushctl down --data-dir D` stops exactly what this host added.
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { ClusterPlan, PlannedProcess, PlannedRole } from './cluster-plan.ts';
import { roleScript } from './cluster-plan.ts';
import type { ClusterState } from './state-file.ts';

export interface JoinInput {
  main: ClusterState;
  /** This host's name: the gateways' id prefix. */
  name: string;
  gateways: number;
  /** Four ports per gateway: client, raw TCP, gRPC, admin. */
  ports: number[];
  host: string;
  dataDir: string;
  secretsFile: string;
  flushMs?: number;
}

export function planJoin(o: JoinInput): ClusterPlan {
  const m = o.main;
  if (!/^[a-z0-9][a-z0-9-]{0,20}$/.test(o.name)) throw new Error(`--join-name "${o.name}": lower-case letters, digits and - (at most 21)`);
  if (m.mode !== 'processes' || !m.endpoints.nats) throw new Error('--join needs a cluster of processes on NATS (not the embedded mode)');
  if (m.endpoints.routers.some((u) => u.startsWith('https:'))) throw new Error('--join of a cluster with TLS client ports is not supported yet');
  if (!Number.isInteger(o.gateways) || o.gateways < 1 || o.gateways > 100) throw new Error('--gateways must be between 1 and 100');
  if (o.ports.length < 4 * o.gateways) throw new Error(`need ${4 * o.gateways} ports, got ${o.ports.length}`);
  const routerAdmins = m.endpoints.routerAdmins ?? [];
  if (routerAdmins.length === 0) throw new Error('the cluster state names no router admin listener to register with');
  const logDir = join(o.dataDir, 'logs');
  // Whether the cluster's nats-server takes only its users: pushctl started it (one node or a cluster).
  const natsAuth = Object.keys(m.binaries).some((id) => id === 'nats' || id.startsWith('nats-'));
  const theirs: PlannedRole[] = m.roles
    .filter((r) => r.role === 'router' || r.id === 'control-1' || r.id === 'feed-1')
    .map((r) => ({ id: r.id, role: r.role as PlannedRole['role'], tier: 0, config: {}, healthUrl: r.healthUrl, urls: r.urls, ports: [] }));
  const mine: PlannedRole[] = [];
  const processes: PlannedProcess[] = [];
  for (let i = 0; i < o.gateways; i++) {
    const id = `${o.name}-gateway-${i + 1}`;
    const [port, tcpPort, grpcPort, adminPort] = o.ports.slice(4 * i, 4 * i + 4) as [number, number, number, number];
    const http = (p: number) => `http://${o.host}:${p}`;
    const config = {
      id, host: o.host, routers: routerAdmins, logFile: join(logDir, `${id}.log`), nats: m.endpoints.nats,
      ...(natsAuth ? { natsAuth: true } : {}), secretsFile: o.secretsFile,
      port, tcpPort, grpcPort, adminPort, clientRouters: m.endpoints.routers,
      ...(o.flushMs !== undefined ? { flushIntervalMs: o.flushMs } : {}),
    };
    const urls = { ws: `ws://${o.host}:${port}`, http: http(port), tcp: `${o.host}:${tcpPort}`, grpc: `${o.host}:${grpcPort}`, admin: http(adminPort) };
    mine.push({ id, role: 'gateway', tier: 3, config, healthUrl: `${http(port)}/healthz`, urls, ports: [port, tcpPort, grpcPort, adminPort] });
    processes.push({
      id, kind: 'role', tier: 3, command: roleScript('gateway'), args: ['--config', JSON.stringify(config)], logFile: join(logDir, `${id}.log`),
      ports: [port, tcpPort, grpcPort, adminPort], readyIds: [id], healthUrls: [`${http(port)}/healthz`], dirs: [],
    });
  }
  return {
    mode: 'processes',
    host: o.host,
    dataDir: o.dataDir,
    logDir,
    stateFile: join(o.dataDir, 'cluster.json'),
    natsUrl: m.endpoints.nats,
    ...(m.endpoints.redis ? { redisUrl: m.endpoints.redis } : {}),
    bus: { kind: 'external', url: m.endpoints.nats },
    cache: m.endpoints.redis ? { kind: 'external', url: m.endpoints.redis } : { kind: 'none' },
    history: { kind: 'embedded' },
    roles: [...theirs, ...mine],
    processes,
    registeredIds: mine.map((r) => r.id),
    embeddedParts: [],
    isolated: false,
    secretsFile: o.secretsFile,
  };
}

/** The joined gateways bind this address: it must be one of this host's, or they fail later with a bare EADDRNOTAVAIL. */
export function assertLocalAddress(addr: string, flag: string, interfaces = networkInterfaces()): void {
  const mine = Object.values(interfaces).flatMap((list) => (list ?? []).map((i) => i.address));
  if (!mine.includes(addr)) throw new Error(`${flag} ${addr} is not an address of this host (it has ${mine.join(', ')})`);
}
