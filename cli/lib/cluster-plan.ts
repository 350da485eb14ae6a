// Pure planning for `pushctl up`: which backends to use, which ports every
// process gets, the config each role is started with, the order they start
// in, and where they log. No I/O here, so the whole layout is unit-tested.
import { join } from 'node:path';
import { gatewayAuth } from './auth-plan.ts';
import { validateCounts } from './port-plan.ts';
import { jetStreamReplicas, natsClusterUrl, planNatsNodes } from './nats-cluster.ts';
import { planRedisNodes, redisClusterUrl, type RedisNodePlan } from './redis-cluster.ts';
import { planCassandraNodes } from './cassandra-ring.ts';

export * from './port-plan.ts';
export * from './cluster-plan-types.ts';
import { EMBEDDED_SCRIPT, natsConfigPath, redisConfigPath, roleScript, type ClusterPlan, type EmbeddedConfig, type HistoryChoice, type PlanInput, type PlannedProcess, type PlannedRole } from './cluster-plan-types.ts';


export function planCluster(input: PlanInput): ClusterPlan {
  validateCounts(input);
  const { dataDir, ports } = input;
  const logDir = join(dataDir, 'logs');
  const logFile = (id: string) => join(logDir, `${id}.log`);
  const embedded = input.bus.kind === 'embedded';
  const history: HistoryChoice = input.history ?? { kind: 'embedded' };
  const iso = input.isolate;
  if (iso && (input.bus.kind !== 'spawn' || input.cache.kind === 'external' || history.kind !== 'embedded'))
    throw new Error('--isolate needs the nats-server (and redis-server, if any) pushctl starts, and the embedded history store');
  // Isolated, each process binds and advertises its own namespace address; else all share `host`.
  const hostOf = (id: string) => {
    if (!iso) return input.host;
    const a = iso[id]?.addr;
    if (!a) throw new Error(`--isolate: no namespace planned for ${id}`);
    return a;
  };
  const nsOf = (id: string) => (iso ? { netns: iso[id]!.netns, host: iso[id]!.addr } : {});
  const httpOf = (id: string, port: number) => `http://${hostOf(id)}:${port}`;
  // Client ports (routers, gateways) speak https/wss when the cluster has a certificate.
  const tls = input.tls ? { certFile: input.tls.certFile, keyFile: input.tls.keyFile } : undefined;
  const clientHttpOf = (id: string, port: number) => `${tls ? 'https' : 'http'}://${hostOf(id)}:${port}`;
  const host = input.host;

  if (input.natsCluster && input.bus.kind !== 'spawn') throw new Error('--nats-cluster starts nats-servers: it needs nats-server on PATH, and neither --nats nor --embedded');
  if (input.redisCluster && input.cache.kind !== 'spawn') throw new Error('--redis-cluster starts redis-servers: it needs redis-server on PATH, and not --redis');
  const natsNodes = input.natsCluster && input.bus.kind === 'spawn' ? planNatsNodes(dataDir, input.natsCluster, hostOf) : undefined;
  const redisNodes: RedisNodePlan[] | undefined = input.redisCluster && input.cache.kind === 'spawn' ? planRedisNodes(dataDir, input.redisCluster.ports, hostOf) : undefined;
  const natsUrl = natsNodes
    ? natsClusterUrl(natsNodes)
    : input.bus.kind === 'external' ? input.bus.url : input.bus.kind === 'spawn' ? `nats://${hostOf('nats')}:${ports.nats}` : undefined;
  const redisUrl = redisNodes
    ? redisClusterUrl(redisNodes)
    : input.cache.kind === 'external' ? input.cache.url : input.cache.kind === 'spawn' ? `redis://${hostOf('redis')}:${ports.redis}` : undefined;

  const cassandraNodes = history.kind === 'spawn' ? planCassandraNodes(dataDir, history) : [];
  const cassandra = history.kind === 'external' ? history.contactPoints : history.kind === 'spawn' ? cassandraNodes.map((n) => `${host}:${n.cqlPort}`).join(',') : undefined;
  const shape = input.cassandraShape ?? {};
  const serverHistory = cassandra
    ? {
        cassandra,
        ...(shape.replication ? { cassandraReplication: shape.replication } : {}),
        ...(shape.readConsistency ? { cassandraReadConsistency: shape.readConsistency } : {}),
        ...(shape.writeConsistency ? { cassandraWriteConsistency: shape.writeConsistency } : {}),
      }
    : { embeddedPath: join(dataDir, 'history.sqlite') };
  const routerUrls = ports.routers.map((port, i) => clientHttpOf(`router-${i + 1}`, port));
  const restUrls = ports.history.map((port, i) => clientHttpOf(`history-${i + 1}`, port));
  // Roles register with and query the routers' admin listeners (plain http on the cluster's address); clients use the client ports.
  const registryUrls = ports.routerAdmin.map((port, i) => httpOf(`router-${i + 1}`, port));
  // Only the fields each role reads; the role fills in its own defaults.
  const common = (id: string) => ({
    id,
    host: hostOf(id),
    routers: registryUrls,
    logFile: logFile(id),
    ...(natsUrl ? { nats: natsUrl } : {}),
    ...(input.tls?.caFile ? { tlsCaFile: input.tls.caFile } : {}),
    // The nats-server pushctl starts takes only its users; an external one (--nats URL) is taken as it is.
    ...(input.bus.kind === 'spawn' ? { natsAuth: true } : {}),
    ...(natsNodes ? { natsReplicas: jetStreamReplicas(natsNodes.length) } : {}),
    ...(input.secretsFile ? { secretsFile: input.secretsFile } : {}),
  });

  const roles: PlannedRole[] = [];
  ports.routers.forEach((port, i) => {
    const id = `router-${i + 1}`;
    const adminPort = ports.routerAdmin[i]!;
    roles.push({
      id,
      role: 'router',
      tier: 1,
      config: { ...common(id), port, adminPort, restUrls, ...(tls ? { tls } : {}) },
      healthUrl: `${clientHttpOf(id, port)}/healthz`,
      urls: { http: clientHttpOf(id, port), admin: httpOf(id, adminPort) },
      ports: [port, adminPort],
    });
  });
  roles.push({
    id: 'control-1',
    role: 'control',
    tier: 2,
    config: { ...common('control-1'), port: ports.control },
    healthUrl: `${httpOf('control-1', ports.control)}/healthz`,
    urls: { http: httpOf('control-1', ports.control), admin: httpOf('control-1', ports.control) },
    ports: [ports.control],
  });
  ports.serverGrpc.forEach((grpcPort, i) => {
    const id = `server-${i + 1}`;
    const adminPort = ports.serverAdmin[i]!;
    roles.push({
      id,
      role: 'server',
      tier: 2,
      config: {
        ...common(id), grpcPort, adminPort, ...(redisUrl ? { redis: redisUrl } : {}), history: serverHistory,
        ...(input.cache.kind === 'spawn' ? { redisAuth: true } : {}),
      },
      healthUrl: `${httpOf(id, adminPort)}/healthz`,
      urls: { grpc: `${hostOf(id)}:${grpcPort}`, admin: httpOf(id, adminPort) },
      ports: [grpcPort, adminPort],
    });
  });
  ports.gateways.forEach((port, i) => {
    const id = `gateway-${i + 1}`;
    const [tcpPort, grpcPort, adminPort] = [ports.gatewayTcp[i]!, ports.gatewayGrpc[i]!, ports.gatewayAdmin[i]!];
    roles.push({
      id,
      role: 'gateway',
      tier: 3,
      config: {
        ...common(id), port, tcpPort, grpcPort, adminPort, clientRouters: routerUrls,
        ...(input.flushMs !== undefined ? { flushIntervalMs: input.flushMs } : {}),
        ...(tls ? { tls } : {}),
        // Binance user-data streams map X-MBX-APIKEY to users with this file (read per request: may appear later).
        apiKeysFile: join(dataDir, 'api-keys.json'),
        ...(input.clientAuth ? { auth: gatewayAuth(input.clientAuth) } : {}),
      },
      healthUrl: `${clientHttpOf(id, port)}/healthz`,
      urls: {
        ws: `${tls ? 'wss' : 'ws'}://${hostOf(id)}:${port}`, http: clientHttpOf(id, port),
        // Over TLS these carry a scheme (tls://, grpcs://) so a client knows to handshake.
        tcp: `${tls ? 'tls://' : ''}${hostOf(id)}:${tcpPort}`, grpc: `${tls ? 'grpcs://' : ''}${hostOf(id)}:${grpcPort}`, admin: httpOf(id, adminPort),
      },
      ports: [port, tcpPort, grpcPort, adminPort],
    });
  });
  // History processes: the cluster's REST host (every public market route, klines from their own
  // history tiers, the rest forwarded to the servers), on a client port away from the stream path.
  ports.history.forEach((port, i) => {
    const id = `history-${i + 1}`;
    roles.push({
      id,
      role: 'history',
      tier: 3,
      config: {
        ...common(id), port, history: serverHistory, ...(redisUrl ? { redis: redisUrl } : {}),
        ...(input.cache.kind === 'spawn' ? { redisAuth: true } : {}),
        ...(tls ? { tls } : {}),
        // Embedded, it shares the one process with the streams: lowering its priority would lower theirs.
        ...(embedded ? { nice: -1 } : {}),
      },
      healthUrl: `${clientHttpOf(id, port)}/healthz`,
      urls: { http: restUrls[i]! },
      ports: [port],
    });
  });
  roles.push({
    id: 'feed-1',
    role: 'feed',
    tier: 2,
    config: {
      ...common('feed-1'), adminPort: ports.feedAdmin, symbols: input.symbols, rate: input.rate,
      ...(input.publishMs !== undefined ? { publishIntervalMs: input.publishMs } : {}),
      ...(input.users !== undefined ? { users: input.users } : {}),
      ...(input.orderRate !== undefined ? { orderRate: input.orderRate } : {}),
      ...(input.replay ? { replay: input.replay, users: 0 } : {}),
      ...(input.silentFeed ? { silent: true } : {}),
    },
    healthUrl: `${httpOf('feed-1', ports.feedAdmin)}/healthz`,
    urls: { admin: httpOf('feed-1', ports.feedAdmin) },
    ports: [ports.feedAdmin],
  });

  const processes: PlannedProcess[] = [];
  if (natsNodes && input.bus.kind === 'spawn') {
    for (const n of natsNodes)
      processes.push({
        id: n.id, kind: 'binary', tier: 0, command: input.bus.bin, args: ['-c', n.configPath],
        configFile: { kind: 'nats-server', path: n.configPath, host: n.host, port: n.port, dir: n.storeDir, natsCluster: n.peers },
        logFile: logFile(n.id), ports: [n.port, n.routePort], readyIds: [], healthUrls: [], dirs: [n.storeDir], ...nsOf(n.id),
      });
  } else if (input.bus.kind === 'spawn') {
    const dir = join(dataDir, 'nats');
    processes.push({
      id: 'nats',
      kind: 'binary',
      tier: 0,
      command: input.bus.bin,
      // Listen address, JetStream and the role users live in a 0600 file (passwords never on argv).
      args: ['-c', natsConfigPath(dataDir)],
      configFile: { kind: 'nats-server', path: natsConfigPath(dataDir), host: hostOf('nats'), port: ports.nats, dir },
      logFile: logFile('nats'),
      ports: [ports.nats],
      readyIds: [],
      healthUrls: [],
      dirs: [dir],
      ...nsOf('nats'),
    });
  }
  if (redisNodes && input.cache.kind === 'spawn') {
    for (const n of redisNodes)
      processes.push({
        id: n.id, kind: 'binary', tier: 0, command: input.cache.bin, args: [n.configPath],
        configFile: { kind: 'redis-server', path: n.configPath, host: n.host, port: n.port, dir: n.dir, redisClusterBusPort: n.busPort },
        logFile: logFile(n.id), ports: [n.port, n.busPort], readyIds: [], healthUrls: [], dirs: [n.dir], ...nsOf(n.id),
      });
  } else if (input.cache.kind === 'spawn') {
    const dir = join(dataDir, 'redis');
    processes.push({
      id: 'redis',
      kind: 'binary',
      tier: 0,
      command: input.cache.bin,
      // Port, bind address and the ACL user live in a 0600 file (the password never on argv).
      args: [redisConfigPath(dataDir)],
      configFile: { kind: 'redis-server', path: redisConfigPath(dataDir), host: hostOf('redis'), port: ports.redis, dir },
      logFile: logFile('redis'),
      ports: [ports.redis],
      readyIds: [],
      healthUrls: [],
      dirs: [dir],
      ...nsOf('redis'),
    });
  }
  for (const n of cassandraNodes) {
    processes.push({
      id: n.id,
      kind: 'binary',
      tier: 0,
      command: process.execPath,
      args: ['scripts/cassandra/start.ts', ...n.args],
      logFile: logFile(n.id),
      ports: n.ports,
      readyIds: [],
      healthUrls: [],
      dirs: [n.dir],
    });
  }
  if (embedded) {
    const config: EmbeddedConfig = {
      id: 'embedded',
      logFile: logFile('embedded'),
      roles: roles.map((r) => ({ role: r.role, config: r.config })),
    };
    processes.push({
      id: 'embedded',
      kind: 'embedded',
      tier: 1,
      command: EMBEDDED_SCRIPT,
      args: ['--config', JSON.stringify(config)],
      logFile: logFile('embedded'),
      ports: roles.flatMap((r) => r.ports),
      readyIds: ['embedded'],
      healthUrls: roles.map((r) => r.healthUrl),
      dirs: [],
    });
  } else {
    for (const r of roles) {
      processes.push({
        id: r.id,
        kind: 'role',
        tier: r.tier,
        command: roleScript(r.role),
        args: ['--config', JSON.stringify(r.config)],
        logFile: logFile(r.id),
        ports: r.ports,
        readyIds: [r.id],
        healthUrls: [r.healthUrl],
        dirs: [],
        ...nsOf(r.id),
      });
    }
  }

  const embeddedParts: string[] = [];
  if (embedded) embeddedParts.push('bus (in-memory)', 'registry (in-memory)');
  if (!redisUrl) embeddedParts.push('cache (in-memory)');

  return {
    mode: embedded ? 'embedded' : 'processes',
    host,
    dataDir,
    logDir,
    stateFile: join(dataDir, 'cluster.json'),
    ...(natsUrl ? { natsUrl } : {}),
    ...(redisUrl ? { redisUrl } : {}),
    bus: input.bus,
    cache: input.cache,
    history,
    ...(cassandra ? { cassandra } : {}),
    roles,
    processes,
    registeredIds: roles.filter((r) => r.role === 'gateway' || r.role === 'server').map((r) => r.id),
    embeddedParts,
    isolated: iso !== undefined,
    ...(input.tls ? { tls: input.tls } : {}),
    ...(input.secretsFile ? { secretsFile: input.secretsFile } : {}),
    ...(input.clientAuth ? { clientAuth: input.clientAuth } : {}),
    ...(redisNodes && input.redisCluster ? { redisCluster: { nodes: redisNodes.map((n) => `${n.host}:${n.port}`), replicas: input.redisCluster.replicas } } : {}),
  };
}

/** Every port the plan will listen on, with who wants it (for a clear refusal). */
export function plannedPorts(plan: ClusterPlan): Array<{ port: number; owner: string }> {
  const out: Array<{ port: number; owner: string }> = [];
  for (const p of plan.processes) {
    if (p.kind === 'embedded') for (const r of plan.roles) for (const port of r.ports) out.push({ port, owner: r.id });
    else for (const port of p.ports) out.push({ port, owner: p.id });
  }
  return out;
}
