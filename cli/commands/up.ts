import { Command, Flags } from '@oclif/core';
import { fail } from '../lib/fail.ts';
import { findOnPath } from '../lib/binaries.ts';
import { assertIsolatable, createIsolation, removeIsolation, type CreatedIsolation } from '../lib/chaos/isolate.ts';
import { recoverStale, stopSessions } from '../lib/chaos/session.ts';
import { commandExists } from '../lib/chaos/shell.ts';
import { chooseBackends, planCluster, portCount, portsFromBase, portsFromList, type ClusterPlan, type HistoryChoice, type PlanInput } from '../lib/cluster-plan.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../lib/data-dir.ts';
import { LiveView } from '../lib/live-view.ts';
import { freePorts } from '../lib/ports.ts';
import type { ClusterState } from '../lib/state-file.ts';
import { assertNoLiveCluster, Supervisor } from '../lib/supervisor.ts';
import { cpuBudget, defaultRoleCounts } from '../lib/cpu-budget.ts';

export default class Up extends Command {
  static override description = `Start a local cluster: routers, control, servers, gateways and a simulated feed, each as its own process.

NATS: --nats URL, else nats-server from PATH (started on the port plan), else an embedded in-memory bus.
Redis: --redis URL, else redis-server from PATH, else servers keep their cache in memory.
Without NATS everything runs in ONE embedded process (in-memory bus, registry and cache), each role still on its own port.

Ports from --port-base B: routers B+i, control B+90, gateways B+100+i, server gRPC B+200+i, server admin B+300+i,
feed admin B+400, nats B+500, redis B+600. --port-base 0 picks free ports.

In the foreground it shows a live status view; Ctrl-C stops everything it started. With --detach it returns once
the cluster is healthy; stop it with \`pushctl down\`.

--isolate (root) starts every process, nats-server and redis-server included, in a network namespace of its own,
joined by a veth to a bridge (in a hub namespace) that the host also joins: each binds and advertises its own
10.2xx.N.K address, and \`pushctl chaos apply PROFILE --target gateway-1\` shapes that role's own link (tc and nft on its
veth, both directions) with nothing re-pointed. \`pushctl down\` (or Ctrl-C) removes the namespaces.`;

  static override examples = [
    '<%= config.bin %> up',
    '<%= config.bin %> up --gateways 4 --servers 3 --symbols 100 --rate 50',
    '<%= config.bin %> up --detach --json --port-base 0',
    '<%= config.bin %> up --nats nats://10.0.0.5:4222 --redis redis://10.0.0.6:6379',
    '<%= config.bin %> up --isolate --detach --gateways 2 --servers 1',
  ];

  static override flags = {
    routers: Flags.integer({ description: 'router processes', default: 1, min: 1 }),
    gateways: Flags.integer({ description: 'gateway processes (default: one per 2 usable CPUs, at least 2)', min: 1 }),
    servers: Flags.integer({ description: 'push-server processes (default: one per 4 usable CPUs, at least 2)', min: 1 }),
    symbols: Flags.integer({ description: 'symbols the feed simulates', default: 20, min: 1 }),
    rate: Flags.integer({ description: 'trades per second per symbol', default: 10, min: 0 }),
    'flush-ms': Flags.integer({
      description: 'least ms between a gateway\'s write rounds: fewer write syscalls for at most this much added latency (default 0: every event-loop turn)',
      min: 0,
      max: 1000,
    }),
    'publish-ms': Flags.integer({ description: 'least ms between the feed\'s publish turns (default 1)', min: 1, max: 1000 }),
    nats: Flags.string({ description: 'use this NATS server instead of starting one' }),
    redis: Flags.string({ description: 'use this Redis instead of starting one' }),
    'port-base': Flags.integer({ description: 'first port of the port plan; 0 picks free ports', default: 7100, min: 0 }),
    'data-dir': Flags.string({ description: DATA_DIR_HELP }),
    detach: Flags.boolean({ description: 'return once healthy and leave the cluster running', default: false }),
    json: Flags.boolean({ description: 'print the endpoints as one JSON object', default: false }),
    embedded: Flags.boolean({ description: 'force the embedded in-memory mode even when nats-server is installed', default: false }),
    history: Flags.string({
      description: 'kline history cold tier: embedded (node:sqlite in the data dir) or cassandra (a node from Maven Central jars, needs java and mvn)',
      options: ['embedded', 'cassandra'],
      default: 'embedded',
    }),
    cassandra: Flags.string({ description: 'use this Cassandra/Scylla (host:port[,host:port]) for kline history instead' }),
    timeout: Flags.integer({ description: 'seconds to wait for the cluster to become healthy', default: 60, min: 1 }),
    isolate: Flags.boolean({
      description: 'every process in its own network namespace on its own address (root), so `chaos apply --target ROLE` shapes its own link',
      default: false,
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Up);
    const dataDir = resolveDataDir(flags['data-dir']);
    // Unset counts follow the CPUs this process may use (cgroup quota included).
    const budget = cpuBudget();
    const sized = defaultRoleCounts(budget.cpus);
    const counts = { routers: flags.routers, gateways: flags.gateways ?? sized.gateways, servers: flags.servers ?? sized.servers };
    if (flags.gateways === undefined || flags.servers === undefined)
      this.logToStderr(`sizing for ${budget.source}: ${counts.gateways} gateways, ${counts.servers} servers (--gateways/--servers to choose)`);
    const host = '127.0.0.1';

    let plan: ClusterPlan;
    let input: PlanInput;
    try {
      const { bus, cache } = chooseBackends(
        { ...(flags.nats ? { nats: flags.nats } : {}), ...(flags.redis ? { redis: flags.redis } : {}), embedded: flags.embedded },
        { natsServer: findOnPath('nats-server'), redisServer: findOnPath('redis-server') },
      );
      const ports = flags['port-base'] === 0 ? portsFromList(await freePorts(portCount(counts), host), counts) : portsFromBase(flags['port-base'], counts);
      const history: HistoryChoice = flags.cassandra
        ? { kind: 'external', contactPoints: flags.cassandra }
        : flags.history === 'cassandra'
          ? { kind: 'spawn', port: (await freePorts(1, host))[0]! }
          : { kind: 'embedded' };
      if (flags.isolate) assertIsolatable({ bus: bus.kind, cache: cache.kind, history: history.kind });
      input = {
        ...counts, symbols: flags.symbols, rate: flags.rate, host, dataDir, bus, cache, ports, history,
        ...(flags['flush-ms'] !== undefined ? { flushMs: flags['flush-ms'] } : {}),
        ...(flags['publish-ms'] !== undefined ? { publishMs: flags['publish-ms'] } : {}),
      };
      plan = planCluster(input);
    } catch (err) {
      fail(this, (err as Error).message, 2);
    }

    const progress = (msg: string) => process.stderr.write(`pushctl: ${msg}\n`);
    // Namespaces a crashed `up --isolate` (or chaos session) left behind go first.
    try {
      await recoverStale(dataDir, progress);
    } catch (err) {
      if (flags.isolate) fail(this, (err as Error).message, 1);
      progress(`warning: ${(err as Error).message}`);
    }
    let isolation: CreatedIsolation | undefined;
    if (flags.isolate) {
      if (process.getuid?.() !== 0) fail(this, '--isolate creates network namespaces, veths and a bridge, which needs root; run pushctl as root, or drop --isolate', 1);
      if (!commandExists('ip')) fail(this, '--isolate needs `ip` (Debian package iproute2) to create network namespaces', 1);
      try {
        assertNoLiveCluster(dataDir);
        isolation = await createIsolation(dataDir, plan.processes.map((p) => p.id));
        const byId = Object.fromEntries(isolation.isolation.roles.map((r) => [r.id, { netns: r.netns, addr: r.addr }]));
        plan = planCluster({ ...input, isolate: byId });
        progress(`isolated: ${plan.processes.length} network namespaces on ${isolation.isolation.cidr} (host end ${isolation.isolation.hostDev} ${isolation.isolation.hostAddr})`);
      } catch (err) {
        if (isolation) await removeIsolation(dataDir, progress);
        fail(this, (err as Error).message, 1);
      }
    }
    // Chaos sessions shaping the roles live in the namespaces: they are undone first.
    const unisolate = async () => {
      if (!isolation) return;
      const { left } = await stopSessions(dataDir, (s) => s.roles !== undefined, progress);
      if (!(await removeIsolation(dataDir, progress)) || left > 0) progress(`some namespaces could not be removed; \`pushctl down --data-dir ${dataDir}\` retries`);
    };
    const supervisor = new Supervisor(plan, { timeoutMs: flags.timeout * 1000, detached: flags.detach, onProgress: progress });

    // Ctrl-C or SIGTERM while starting: give up and stop what did start.
    let signalled: NodeJS.Signals | undefined;
    const onStartSignal = (sig: NodeJS.Signals) => {
      signalled = sig;
      supervisor.abort();
    };
    process.on('SIGINT', onStartSignal);
    process.on('SIGTERM', onStartSignal);
    const began = Date.now();
    let state: ClusterState;
    try {
      progress(`starting the ${plan.mode === 'embedded' ? 'embedded cluster (one process)' : 'cluster'} in ${dataDir}`);
      state = await supervisor.start();
    } catch (err) {
      process.off('SIGINT', onStartSignal);
      process.off('SIGTERM', onStartSignal);
      await unisolate();
      if (signalled) {
        progress(`interrupted by ${signalled}; stopped everything that had started`);
        return;
      }
      fail(this, (err as Error).message, 1);
    }
    process.off('SIGINT', onStartSignal);
    process.off('SIGTERM', onStartSignal);

    const summary = describe(plan, state, (Date.now() - began) / 1000, isolation);
    if (flags.json) this.log(JSON.stringify(summary.json));
    else for (const line of summary.lines) this.log(line);

    if (flags.detach) {
      supervisor.detach();
      if (!flags.json) this.log(`detached; stop it with: pushctl down --data-dir ${dataDir}`);
      return;
    }
    await this.#foreground(supervisor, state, flags.json, unisolate);
  }

  async #foreground(supervisor: Supervisor, state: ClusterState, json: boolean, unisolate: () => Promise<void>): Promise<void> {
    const view = new LiveView({
      title: `market-push${state.mode === "embedded" ? " (embedded)" : ""} · control ${state.endpoints.control}`,
      state,
      tty: process.stdout.isTTY === true,
      json,
    });
    supervisor.on('exit', (e) => {
      const how = e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
      const ids = e.id === 'embedded' ? state.roles.map((r) => r.id) : [e.id];
      view.event(`${e.id} (pid ${e.pid}) ${how} unexpectedly; not restarted (log: ${e.logFile})`, ids);
    });
    view.start();
    const sig = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    view.stop();
    // A second Ctrl-C while stopping must not kill pushctl half-way.
    const ignore = () => process.stderr.write('pushctl: still stopping…\n');
    process.on('SIGINT', ignore);
    process.on('SIGTERM', ignore);
    process.stderr.write(`pushctl: ${sig}: stopping the cluster\n`);
    const survivors = await supervisor.stop((id, gone) => {
      if (!gone) process.stderr.write(`pushctl: ${id} would not stop\n`);
    });
    if (survivors.length === 0) await unisolate();
    process.off('SIGINT', ignore);
    process.off('SIGTERM', ignore);
    if (survivors.length > 0) fail(this, `could not stop ${survivors.join(', ')}; the state file is kept for \`pushctl down\``, 1);
    process.stderr.write('pushctl: stopped\n');
  }
}

function describe(plan: ClusterPlan, state: ClusterState, seconds: number, iso?: CreatedIsolation): { json: object; lines: string[] } {
  const e = state.endpoints;
  const pad = (s: string) => s.padEnd(10);
  const natsWhere =
    plan.bus.kind === 'embedded' ? 'embedded: in-memory, inside the one cluster process' : plan.bus.kind === 'spawn' ? `${e.nats} (nats-server ${plan.bus.bin})` : `${e.nats} (external)`;
  const redisWhere =
    plan.cache.kind === 'none' ? 'in-memory: each server keeps its kline cache in its own memory' : plan.cache.kind === 'spawn' ? `${e.redis} (redis-server ${plan.cache.bin})` : `${e.redis} (external)`;
  const lines = [
    `cluster up in ${seconds.toFixed(1)} s (${plan.mode === 'embedded' ? 'embedded: one process' : `${state.processes.length} processes`})`,
    ...e.routers.map((u) => `${pad('router')}${u}`),
    `${pad('control')}${e.control}`,
    ...e.gateways.map((g) => `${pad(g.id)}${g.ws}  ${g.http}`),
    ...(e.gateways[0] ? [`${pad('demo')}${e.gateways[0].http}/demo/  (live ticker and klines over gRPC-web or WebSocket)`] : []),
    ...e.servers.map((s) => `${pad(s.id)}grpc ${s.grpc}  admin ${s.admin}`),
    `${pad('feed')}${e.feed}`,
    `${pad('bus')}${natsWhere}`,
    `${pad('cache')}${redisWhere}`,
    `${pad('history')}${plan.cassandra ? `Cassandra ${plan.cassandra}${plan.history.kind === 'spawn' ? ' (started from Maven Central jars)' : ' (external)'}` : `embedded: node:sqlite ${plan.dataDir}/history.sqlite`}`,
    `${pad('data dir')}${plan.dataDir} (logs in ${plan.logDir})`,
  ];
  if (iso) {
    const i = iso.isolation;
    lines.push(
      `${pad('isolated')}every process in its own network namespace on ${i.cidr}; the host reaches them through ${i.hostDev} (${i.hostAddr})`,
      ...i.roles.map((r) => `${pad('')}${r.id.padEnd(11)}${r.addr.padEnd(14)}${r.netns}`),
      `${pad('')}shape a role's own link: pushctl chaos apply PROFILE --target ${i.roles.find((r) => r.id.startsWith('gateway'))?.id ?? 'gateway-1'}`,
    );
  }
  if (plan.mode === 'embedded') {
    lines.push(
      `embedded: ${plan.embeddedParts.join(', ')}; all roles share one process, nothing survives a stop.`,
      'for the full cluster install nats-server and redis-server, or pass --nats URL and --redis URL.',
    );
  } else if (plan.embeddedParts.length > 0) {
    lines.push(`embedded: ${plan.embeddedParts.join(', ')}; install redis-server or pass --redis URL for a shared cache.`);
  }
  const json = {
    mode: plan.mode,
    dataDir: plan.dataDir,
    stateFile: plan.stateFile,
    router: e.routers[0],
    routers: e.routers,
    control: e.control,
    gateways: e.gateways,
    demo: e.gateways[0] ? `${e.gateways[0].http}/demo/` : null,
    servers: e.servers,
    feed: e.feed,
    nats: e.nats ?? null,
    redis: e.redis ?? null,
    cassandra: plan.cassandra ?? null,
    embedded: plan.embeddedParts,
    detached: state.detached,
    pids: Object.fromEntries(state.processes.map((p) => [p.id, p.pid])),
    isolation: iso ? { session: iso.sessionId, ...iso.isolation } : null,
  };
  return { json, lines };
}
