import { Command, Flags } from '@oclif/core';
import { fail } from '../lib/fail.ts';
import { findOnPath } from '../lib/binaries.ts';
import { assertIsolatable, createIsolation, removeIsolation, type CreatedIsolation } from '../lib/chaos/isolate.ts';
import { recoverStale, stopSessions } from '../lib/chaos/session.ts';
import { commandExists } from '../lib/chaos/shell.ts';
import { writeStoreConfigs } from '../lib/store-configs.ts';
import { chooseBackends, planCluster, portCount, portsFromBase, portsFromList, type ClusterPlan, type HistoryChoice, type PlanInput } from '../lib/cluster-plan.ts';
import { cassandraShape, ENGINE_FLAGS, engineAfterTier, enginePlanInput, spawnedCassandra } from '../lib/engine-flags.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../lib/data-dir.ts';
import { LiveView } from '../lib/live-view.ts';
import { freePorts } from '../lib/ports.ts';
import { listenersOf, readState, type ClusterState } from '../lib/state-file.ts';
import { assertLocalAddress, planJoin } from '../lib/join.ts';
import { formatListeners, restLines } from '../lib/status-view.ts';
import { ensureClusterSecrets, operatorAuth } from '../lib/cluster-secrets.ts';
import { readSecretsFile } from '../../system/common/secrets.ts';
import { resolve } from 'node:path';
import { assertNoLiveCluster, Supervisor } from '../lib/supervisor.ts';
import { cpuBudget, defaultRoleCounts } from '../lib/cpu-budget.ts';
import { resolveClusterTls, trustHints, type ClusterTls } from '../lib/cluster-tls.ts';
import { trustCaFile } from '../../system/common/tls.ts';
import { authLines, parseAuthFlags, type ClusterAuth } from '../lib/auth-plan.ts';
import { metricsSummary, scrapeTargets, writePrometheusFiles, type PrometheusFiles } from '../lib/scrape-targets.ts';
import { checkReplayFiles, parseFeedFlags, REPLAY_FLAGS } from '../lib/replay-flags.ts';
import type { ReplayConfig } from '../../system/common/config.ts';

export default class Up extends Command {
  static override summary = 'Start a local cluster: routers, control, servers, gateways and a feed, each its own process.';

  static override description = `NATS: --nats URL, else nats-server from PATH (started on the port plan), else an embedded in-memory bus. Redis: --redis URL, else redis-server from PATH, else servers keep their cache in memory. Without NATS everything runs in ONE embedded process (in-memory bus, registry and cache), each role still on its own port.

Ports from --port-base B: routers B+i, control B+90, gateways B+100+i, server gRPC B+200+i, server admin B+300+i, feed admin B+400, nats B+500, redis B+600, gateway raw TCP B+700+i, gateway gRPC B+800+i, gateway admin B+900+i, router admin B+1000+i, history (REST host) B+1100+i. --port-base 0 picks free ports.

Two planes: clients use the routers' and gateways' client ports; every admin listener (router admin, control, gateway admin, server admin, feed) binds the cluster's own address (loopback here) and needs a Bearer token. The cluster's secrets (admin and cluster tokens, NATS and Redis users) are generated into DATA_DIR/secrets.json (mode 0600) on first start, or taken from --secrets FILE; every pushctl command reads them from there.

Client tokens (--auth): hs256 (default) signs and checks JWTs with a key generated into the secrets file (\`pushctl token --user alice\` mints one); jwks:URL or jwks:FILE checks RS256/ES256/EdDSA tokens from your identity provider; none gives gateways no key, so private streams are refused. Public market data needs no token in any mode.

Metrics: every admin listener serves GET /metrics (Prometheus) to the metrics token in secrets.json or the admin token; up prints these scrape targets and writes DATA_DIR/prometheus/ (prometheus.yml, targets.json, metrics-token) for \`prometheus --config.file\`. Role logs (JSON lines) are in DATA_DIR/logs: \`pushctl logs [ROLE] -f\`.

In the foreground it shows a live status view; Ctrl-C stops everything it started. With --detach it returns once the cluster is healthy; stop it with \`pushctl down\`.

--isolate (root) starts every process, nats-server and redis-server included, in a network namespace of its own, joined by a veth to a bridge (in a hub namespace) that the host also joins: each binds and advertises its own 10.2xx.N.K address, and \`pushctl chaos apply PROFILE --target gateway-1\` shapes that role's own link (tc and nft on its veth, both directions) with nothing re-pointed. \`pushctl down\` (or Ctrl-C) removes the namespaces.`;

  static override examples = [
    '<%= config.bin %> up',
    '<%= config.bin %> up --gateways 4 --servers 3 --symbols 100 --rate 50',
    '<%= config.bin %> up --detach --json --port-base 0',
    '<%= config.bin %> up --nats nats://10.0.0.5:4222 --redis redis://10.0.0.6:6379',
    '<%= config.bin %> up --isolate --detach --gateways 2 --servers 1',
    '<%= config.bin %> up --tls --detach',
    '<%= config.bin %> up --tls-cert /etc/push/cert.pem --tls-key /etc/push/key.pem',
    '<%= config.bin %> up --auth jwks:https://idp.example/jwks.json --auth-issuer idp',
    '<%= config.bin %> up --feed replay:BTCUSDT-aggTrades-2024-01-01.csv --replay-speed 10',
  ];

  static override flags = {
    routers: Flags.integer({ description: 'router processes', default: 1, min: 1 }),
    gateways: Flags.integer({ description: 'gateway processes (default: one per 2 usable CPUs, at least 2)', min: 1 }),
    servers: Flags.integer({ description: 'push-server processes (default: one per 4 usable CPUs, at least 2)', min: 1 }),
    symbols: Flags.integer({ description: 'symbols the feed simulates', default: 20, min: 1 }),
    rate: Flags.integer({ description: 'trades per second per symbol', default: 10, min: 0 }),
    users: Flags.integer({ description: 'simulated users trading against the books (private order streams; needs NATS)', default: 3, min: 0, max: 10_000 }),
    'order-rate': Flags.custom<number>({
      description: 'order actions (place, amend, cancel) per second per simulated user',
      default: 0.5,
      parse: async (v) => {
        const n = Number(v);
        if (!(n >= 0 && n <= 1000)) throw new Error(`--order-rate ${v}: a number from 0 to 1000`);
        return n;
      },
    })(),
    'history-procs': Flags.integer({
      description: 'history processes: the cluster\'s REST host (klines and every public market route, at nice 10, off the stream path); 0: none, REST on the gateways only',
      default: 1,
      min: 0,
      max: 100,
    }),
    'flush-ms': Flags.integer({
      description: 'least ms between a gateway\'s write rounds: fewer write syscalls for at most this much added latency (default 0: every event-loop turn)',
      min: 0,
      max: 1000,
    }),
    'silent-feed': Flags.boolean({ description: 'the feed publishes nothing (no trades, tickers, klines, depth or orders; --rate 0 only stops trades): an idle cluster, as bench:idle measures it', default: false }),
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
    secrets: Flags.string({ description: "use this secrets file (mode 0600, system/common/secrets.ts format) instead of generating DATA_DIR/secrets.json" }),
    isolate: Flags.boolean({
      description: 'every process in its own network namespace on its own address (root), so `chaos apply --target ROLE` shapes its own link',
      default: false,
    }),
    tls: Flags.boolean({
      description: 'client ports (gateways, routers) over TLS with a self-signed certificate made once into the data dir (local use; its fingerprint is printed)',
      default: false,
    }),
    'tls-cert': Flags.string({ description: 'client ports over TLS with this certificate chain (PEM); with --tls-key' }),
    'tls-key': Flags.string({ description: 'the private key (PEM) of --tls-cert' }),
    // Client tokens for private streams (auth-plan.ts).
    auth: Flags.string({ description: 'how gateways check client JWTs: hs256 (the key in the secrets file), jwks:URL, jwks:FILE, or none', default: 'hs256' }),
    'auth-issuer': Flags.string({ description: 'accept only tokens with this iss claim' }),
    'auth-audience': Flags.string({ description: 'accept only tokens with this aud claim' }),
    'auth-allow-no-exp': Flags.boolean({ description: 'accept tokens without exp (they never expire); refused by default', default: false }),
    ...ENGINE_FLAGS,
    ...REPLAY_FLAGS,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Up);
    const dataDir = resolveDataDir(flags['data-dir']);
    if (flags.join) return this.#join(flags.join, flags.gateways ?? 2, dataDir, flags);
    // Unset counts follow the CPUs this process may use (cgroup quota included).
    const budget = cpuBudget();
    const sized = defaultRoleCounts(budget.cpus);
    const counts = { routers: flags.routers, gateways: flags.gateways ?? sized.gateways, servers: flags.servers ?? sized.servers, historyProcs: flags['history-procs'] };
    if (flags.gateways === undefined || flags.servers === undefined)
      this.logToStderr(`sizing for ${budget.source}: ${counts.gateways} gateways, ${counts.servers} servers (--gateways/--servers to choose)`);
    const host = '127.0.0.1';

    let plan: ClusterPlan;
    let input: PlanInput;
    let secretsFile: string;
    let clientAuth: ClusterAuth;
    try {
      clientAuth = parseAuthFlags({ auth: flags.auth, issuer: flags['auth-issuer'], audience: flags['auth-audience'], allowNoExp: flags['auth-allow-no-exp'] });
    } catch (err) {
      fail(this, (err as Error).message, 2);
    }
    // --feed replay:FILE: the files are read through now, so a bad row fails here (file and line), before anything starts.
    let replay: ReplayConfig | undefined;
    try {
      replay = parseFeedFlags(flags);
      if (replay) for (const line of (await checkReplayFiles(replay)).lines) this.logToStderr(line);
    } catch (err) {
      fail(this, (err as Error).message, 2);
    }
    try {
      if (flags.secrets) {
        secretsFile = resolve(flags.secrets);
        readSecretsFile(secretsFile); // refuses a missing, malformed or world-readable file now, not in every role
      } else {
        const made = ensureClusterSecrets(dataDir);
        secretsFile = made.path;
        if (made.created) this.logToStderr(`generated the cluster's secrets: ${made.path} (mode 0600)`);
      }
    } catch (err) {
      fail(this, (err as Error).message, 2);
    }
    try {
      const { bus, cache } = chooseBackends(
        { ...(flags.nats ? { nats: flags.nats } : {}), ...(flags.redis ? { redis: flags.redis } : {}), embedded: flags.embedded },
        { natsServer: findOnPath('nats-server'), redisServer: findOnPath('redis-server') },
      );
      const ports = flags['port-base'] === 0 ? portsFromList(await freePorts(portCount(counts), host), counts) : portsFromBase(flags['port-base'], counts);
      const history: HistoryChoice = flags.cassandra
        ? { kind: 'external', contactPoints: flags.cassandra }
        : flags.history === 'cassandra'
          ? await spawnedCassandra(flags, host)
          : { kind: 'embedded' };
      const shape = cassandraShape(flags, history);
      if (flags.isolate) assertIsolatable({ bus: bus.kind, cache: cache.kind, history: history.kind });
      input = {
        ...(await enginePlanInput(flags, ports, host)),
        ...(shape ? { cassandraShape: shape } : {}),
        ...counts, symbols: flags.symbols, rate: flags.rate, users: flags.users, orderRate: flags['order-rate'], host, dataDir, bus, cache, ports, history, secretsFile, clientAuth,
        ...(flags['flush-ms'] !== undefined ? { flushMs: flags['flush-ms'] } : {}),
        ...(flags['publish-ms'] !== undefined ? { publishMs: flags['publish-ms'] } : {}),
        ...(replay ? { replay } : {}),
        ...(flags['silent-feed'] ? { silentFeed: true } : {}),
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
        input = { ...input, isolate: byId };
        plan = planCluster(input);
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
    // TLS last: a self-signed certificate must name the addresses the roles advertise (--isolate's included).
    let tls: ClusterTls | undefined;
    try {
      tls = resolveClusterTls(flags, dataDir, plan.roles.map((r) => String(r.config.host)));
      if (tls) {
        plan = planCluster({ ...input, tls: { certFile: tls.certFile, keyFile: tls.keyFile, caFile: tls.caFile } });
        trustCaFile(tls.caFile); // this process's health checks call the https ports
      }
    } catch (err) {
      await unisolate();
      fail(this, (err as Error).message, 2);
    }
    // nats-server and redis-server read their users from files with the cluster's secrets in them.
    try {
      assertNoLiveCluster(dataDir); // a running cluster's store configs stay as they are
      writeStoreConfigs(plan, readSecretsFile(secretsFile!));
    } catch (err) {
      await unisolate();
      fail(this, (err as Error).message, 1);
    }
    const supervisor = new Supervisor(plan, {
      timeoutMs: flags.timeout * 1000, detached: flags.detach, onProgress: progress,
      afterTier: engineAfterTier(plan, readSecretsFile(secretsFile!), flags.timeout * 1000, progress),
    });

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
    // Scrape targets, always: Prometheus needs them whenever the cluster runs, and they cost four lines.
    const targets = scrapeTargets(state.endpoints);
    let promFiles: PrometheusFiles | undefined;
    try {
      promFiles = writePrometheusFiles(dataDir, targets, readSecretsFile(secretsFile!));
    } catch (err) {
      progress(`warning: could not write the Prometheus files: ${(err as Error).message}`);
    }
    const metrics = metricsSummary(targets, promFiles);
    summary.lines.push(...metrics.lines);
    (summary.json as Record<string, unknown>).metrics = metrics.json;
    if (flags.json) this.log(JSON.stringify({ ...summary.json, tls: tls ? { certFile: tls.certFile, caFile: tls.caFile, fingerprint256: tls.fingerprint256, selfSigned: tls.selfSigned } : null }));
    else for (const line of [...summary.lines, ...(tls ? trustHints(tls) : [])]) this.log(line);

    if (flags.detach) {
      supervisor.detach();
      if (!flags.json) this.log(`detached; stop it with: pushctl down --data-dir ${dataDir}`);
      return;
    }
    await this.#foreground(supervisor, state, flags.json, unisolate);
  }

  /** `--join DIR`: only gateways, on this host, registered with the cluster recorded in DIR. */
  async #join(mainDir: string, gateways: number, dataDir: string, flags: { secrets?: string | undefined; 'join-name': string; 'join-host': string; 'port-base': number; detach: boolean; json: boolean; timeout: number; 'flush-ms'?: number | undefined }): Promise<void> {
    const host = flags['join-host'];
    let plan: ClusterPlan;
    try {
      assertLocalAddress(host, '--join-host');
      if (resolve(mainDir) === dataDir) throw new Error('--join: give this host its own --data-dir (the cluster\'s is where it records itself)');
      const main = readState(resolve(mainDir));
      if (!main) throw new Error(`--join: no cluster is recorded in ${resolve(mainDir)} (cluster.json)`);
      const secretsFile = flags.secrets ? resolve(flags.secrets) : main.endpoints.secretsFile;
      if (!secretsFile) throw new Error('--join: the cluster names no secrets file; pass --secrets FILE (a copy of the cluster\'s)');
      readSecretsFile(secretsFile);
      const base = flags['port-base'];
      const ports = base === 0 ? await freePorts(4 * gateways, host) : (() => {
        const p = portsFromBase(base, { routers: 1, gateways, servers: 1 });
        return p.gateways.flatMap((g, i) => [g, p.gatewayTcp[i]!, p.gatewayGrpc[i]!, p.gatewayAdmin[i]!]);
      })();
      plan = planJoin({ main, name: flags['join-name'], gateways, ports, host, dataDir, secretsFile, ...(flags['flush-ms'] !== undefined ? { flushMs: flags['flush-ms'] } : {}) });
      assertNoLiveCluster(dataDir);
    } catch (err) {
      fail(this, (err as Error).message, 2);
    }
    const progress = (msg: string) => process.stderr.write(`pushctl: ${msg}\n`);
    const supervisor = new Supervisor(plan, { timeoutMs: flags.timeout * 1000, detached: flags.detach, onProgress: progress });
    const stopOnSignal = () => supervisor.abort();
    process.once('SIGINT', stopOnSignal);
    process.once('SIGTERM', stopOnSignal);
    let state: ClusterState;
    try {
      state = await supervisor.start();
    } catch (err) {
      fail(this, (err as Error).message, 1);
    } finally {
      process.off('SIGINT', stopOnSignal);
      process.off('SIGTERM', stopOnSignal);
    }
    const mine = state.endpoints.gateways.filter((g) => plan.registeredIds.includes(g.id));
    if (flags.json) this.log(JSON.stringify({ joined: resolve(mainDir), dataDir, gateways: mine, pids: Object.fromEntries(state.processes.map((p) => [p.id, p.pid])) }));
    else for (const g of mine) this.log(`${g.id.padEnd(16)}${g.ws}  admin ${g.admin}  (joined the cluster of ${resolve(mainDir)})`);
    if (flags.detach) {
      supervisor.detach();
      if (!flags.json) this.log(`detached; stop this host's gateways with: pushctl down --data-dir ${dataDir}`);
      return;
    }
    await this.#foreground(supervisor, state, flags.json, async () => {});
  }

  async #foreground(supervisor: Supervisor, state: ClusterState, json: boolean, unisolate: () => Promise<void>): Promise<void> {
    const view = new LiveView({
      title: `market-push${state.mode === "embedded" ? " (embedded)" : ""} · control ${state.endpoints.control}`,
      state,
      auth: operatorAuth({ dataDir: state.dataDir, ...(state.endpoints.secretsFile ? { recorded: state.endpoints.secretsFile } : {}) }),
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
    ...e.gateways.map((g) => `${pad(g.id)}${g.ws}  ${g.http}${g.tcp ? `  tcp ${g.tcp}` : ''}${g.grpc ? `  grpc ${g.grpc}` : ''}  admin ${g.admin}`),
    ...(e.gateways[0] ? [`${pad('demo')}${e.gateways[0].http}/demo/  (live ticker and klines over gRPC-web or WebSocket)`] : []),
    ...restLines(e, plan.mode === 'embedded'),
    ...e.servers.map((s) => `${pad(s.id)}grpc ${s.grpc}  admin ${s.admin}`),
    `${pad('feed')}${e.feed}`,
    `${pad('bus')}${natsWhere}`,
    `${pad('cache')}${redisWhere}`,
    `${pad('history')}${plan.cassandra ? `Cassandra ${plan.cassandra}${plan.history.kind === 'spawn' ? ' (started from Maven Central jars)' : ' (external)'}` : `embedded: node:sqlite ${plan.dataDir}/history.sqlite`}`,
    `${pad('data dir')}${plan.dataDir} (logs in ${plan.logDir})`,
    `${pad('secrets')}${e.secretsFile ?? '(none)'} (admin token for admin listeners; pushctl commands read it)`,
    ...(plan.clientAuth ? authLines(plan.clientAuth, { dataDir: plan.dataDir, secretsFile: e.secretsFile }) : []),
    ...formatListeners(listenersOf(e)),
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
      `embedded: ${plan.embeddedParts.join(', ')}; all roles share one process, and what is in memory does not survive a stop` +
        (plan.history.kind === 'embedded' ? ` (kline history does: ${plan.dataDir}/history.sqlite).` : '.'),
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
    routerAdmins: e.routerAdmins ?? [],
    control: e.control,
    gateways: e.gateways,
    demo: e.gateways[0] ? `${e.gateways[0].http}/demo/` : null,
    servers: e.servers,
    feed: e.feed,
    rest: e.rest?.[0]?.http ?? null,
    restHosts: e.rest ?? [],
    nats: e.nats ?? null,
    redis: e.redis ?? null,
    secretsFile: e.secretsFile ?? null,
    auth: plan.clientAuth ?? null,
    listeners: listenersOf(e),
    cassandra: plan.cassandra ?? null,
    embedded: plan.embeddedParts,
    detached: state.detached,
    pids: Object.fromEntries(state.processes.map((p) => [p.id, p.pid])),
    isolation: iso ? { session: iso.sessionId, ...iso.isolation } : null,
  };
  return { json, lines };
}
