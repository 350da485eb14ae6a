// Starts a single real Apache Cassandra node from the cassandra-all jars that
// scripts/cassandra/fetch.sh resolved from Maven Central: a generated
// cassandra.yaml on free ports, a small fixed heap, Java 17 module flags,
// fast-start flags. Used by the tests and by `pushctl up --history cassandra`.
// The JVM is tied to this process (a shell holding our stdin pipe kills it
// when we die), so a killed parent leaves no Cassandra behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CASSANDRA_VERSION = process.env.CASSANDRA_VERSION ?? '5.0.8';
const FETCH_SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../scripts/cassandra/fetch.sh');

export interface CassandraNode {
  /** host:port of the CQL native transport. */
  contactPoint: string;
  host: string;
  port: number;
  pid: number;
  dataDir: string;
  /** Milliseconds from spawn to CQL readiness. */
  startMs: number;
  /** Resident set size of the JVM in MB, read from /proc. */
  rssMb(): number;
  stop(): Promise<void>;
}

export interface CassandraStartOptions {
  heapMb?: number;
  /** Keep data here instead of a temp dir (deleted on stop unless keepData). */
  dataDir?: string;
  keepData?: boolean;
  timeoutMs?: number;
  /** C1-only JIT: starts faster and spends less CPU compiling (tests); off for throughput. Default on. */
  quickJit?: boolean;
  /** CQL port; default a free one. */
  cqlPort?: number;
  /** Where the JVM's stdout/stderr go; default: a file in the data dir. */
  logFile?: string;
  /** A node of a ring (`--cassandra-nodes N`): its storage (gossip) port, the seeds (host:port,… every node: they may start at once) and its token. */
  ring?: { storagePort: number; seeds: string; initialToken: string };
}

/** Evenly spaced Murmur3 tokens for an n-node ring with one token each (no vnodes: fast, predictable starts). */
export function ringTokens(n: number): string[] {
  const span = 2n ** 64n;
  return Array.from({ length: n }, (_, i) => String(-(2n ** 63n) + (span / BigInt(n)) * BigInt(i)));
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

/** Resolves (and on first use downloads) the jars; returns the lib directory. */
export async function cassandraLib(version = CASSANDRA_VERSION): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn('bash', [FETCH_SCRIPT, version], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('error', rej);
    p.once('exit', (code) => {
      if (code === 0) res(out.trim().split('\n').pop()!);
      else rej(new Error(`fetching cassandra-all ${version} failed (exit ${code}): ${err.slice(-2000)}`));
    });
  });
}

// From Cassandra's conf/jvm17-server.options: without them the daemon stops
// with "FATAL: Cassandra is unable to access required classes".
const JAVA17_FLAGS = [
  ...[
    'java.base/jdk.internal.misc',
    'java.base/jdk.internal.ref',
    'java.base/sun.nio.ch',
    'java.base/java.lang.ref',
    'java.management.rmi/com.sun.jmx.remote.internal.rmi',
    'java.rmi/sun.rmi.registry',
    'java.rmi/sun.rmi.server',
    'java.sql/java.sql',
    'jdk.unsupported/sun.misc',
    'jdk.compiler/com.sun.tools.javac.file',
    'jdk.attach/sun.tools.attach',
  ].map((m) => `--add-exports=${m}=ALL-UNNAMED`),
  ...[
    'java.base/java.lang.module',
    'java.base/jdk.internal.loader',
    'java.base/jdk.internal.ref',
    'java.base/jdk.internal.reflect',
    'java.base/jdk.internal.math',
    'java.base/jdk.internal.module',
    'java.base/jdk.internal.util.jar',
    'java.base/sun.nio.ch',
    'java.base/java.io',
    'java.base/java.nio',
    'java.base/java.lang',
    'java.base/java.lang.reflect',
    'java.base/java.util',
    'java.base/java.util.concurrent',
    'java.base/java.util.concurrent.atomic',
    'jdk.management/com.sun.management.internal',
    'jdk.compiler/com.sun.tools.javac',
  ].map((m) => `--add-opens=${m}=ALL-UNNAMED`),
  '-Djdk.attach.allowAttachSelf=true',
  '-Dio.netty.tryReflectionSetAccessible=true',
];

function yaml(storagePort: number, cqlPort: number, dir: string, ring?: CassandraStartOptions['ring']): string {
  return `cluster_name: market-push
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
num_tokens: 1
initial_token: ${ring?.initialToken ?? 0}
${ring ? 'auto_bootstrap: false\n' : ''}listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: ${storagePort}
native_transport_port: ${cqlPort}
start_native_transport: true
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "${ring?.seeds ?? `127.0.0.1:${storagePort}`}"
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
commitlog_sync: periodic
commitlog_sync_period: 10000ms
auto_snapshot: false
data_file_directories: [${join(dir, 'data')}]
commitlog_directory: ${join(dir, 'commitlog')}
saved_caches_directory: ${join(dir, 'saved_caches')}
hints_directory: ${join(dir, 'hints')}
cdc_raw_directory: ${join(dir, 'cdc_raw')}
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
memtable_allocation_type: heap_buffers
key_cache_size: 8MiB
`;
}

const LOGBACK = `<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level %logger{20} %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="STDOUT"/></root>
  <logger name="org.apache.cassandra.transport.Server" level="INFO"/>
  <logger name="org.apache.cassandra.service.CassandraDaemon" level="INFO"/>
</configuration>
`;

/** Starts one node and resolves when it accepts CQL connections. */
export async function startCassandra(opts: CassandraStartOptions = {}): Promise<CassandraNode> {
  const lib = await cassandraLib();
  const dir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'mp-cassandra-'));
  for (const sub of ['data', 'commitlog', 'saved_caches', 'hints', 'triggers', 'cdc_raw', 'logs']) mkdirSync(join(dir, sub), { recursive: true });
  const storagePort = opts.ring?.storagePort ?? (await freePort());
  const cqlPort = opts.cqlPort ?? (await freePort());
  writeFileSync(join(dir, 'cassandra.yaml'), yaml(storagePort, cqlPort, dir, opts.ring));
  writeFileSync(join(dir, 'logback.xml'), LOGBACK);
  const heap = opts.heapMb ?? 512;
  const logFile = opts.logFile ?? join(dir, 'logs', 'stdout.log');
  const args = [
    `-Xms${heap}m`,
    `-Xmx${heap}m`,
    '-Xss512k',
    '-XX:+UseG1GC',
    '-XX:+UseStringDeduplication',
    // A small node for tests: keep off-heap and thread pools small too.
    '-XX:MaxDirectMemorySize=256m',
    ...(opts.quickJit === false ? [] : ['-XX:TieredStopAtLevel=1']),
    `-javaagent:${join(lib, 'jamm-0.4.0.jar')}`,
    '-Djava.net.preferIPv4Stack=true',
    '-Dcassandra-foreground=yes',
    `-Dcassandra.config=file://${join(dir, 'cassandra.yaml')}`,
    `-Dcassandra.storagedir=${dir}`,
    `-Dcassandra.logdir=${join(dir, 'logs')}`,
    `-Dlogback.configurationFile=${join(dir, 'logback.xml')}`,
    '-Dcassandra.skip_wait_for_gossip_to_settle=0',
    '-Dcassandra.ring_delay_ms=100',
    '-Dcassandra.unsafesystem=true',
    '-Dcassandra.jmx.local.port=0',
    ...JAVA17_FLAGS,
    '-cp',
    `${lib}/*`,
    'org.apache.cassandra.service.CassandraDaemon',
  ];
  const began = Date.now();
  // Tied: the shell holds our stdin pipe and kills the JVM when the pipe closes.
  const script = `"$@" >>${JSON.stringify(logFile)} 2>&1 & child=$!; echo $child; trap 'kill $child 2>/dev/null; wait $child' EXIT INT TERM; read -r _; exit 0`;
  const proc: ChildProcess = spawn('bash', ['-c', script, 'tied', 'java', ...args], { stdio: ['pipe', 'pipe', 'ignore'] });
  const pid = await new Promise<number>((res, rej) => {
    proc.stdout!.once('data', (d: Buffer) => res(Number(d.toString().trim())));
    proc.once('exit', () => rej(new Error('cassandra launcher exited')));
  });
  const alive = () => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  const stop = async () => {
    // Signal the JVM itself (its shutdown hook flushes), then let the tie shell go.
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    const until = Date.now() + 10_000;
    while (alive() && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    if (alive()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.stdin!.end();
      const t = setTimeout(() => proc.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(t);
    }
    if (!opts.keepData) rmSync(dir, { recursive: true, force: true });
  };
  const deadline = began + (opts.timeoutMs ?? 180_000);
  for (;;) {
    if (await portOpen(cqlPort)) break;
    const died = proc.exitCode !== null || !alive();
    if (died || Date.now() > deadline) {
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-3000) : '';
      await stop();
      throw new Error(`cassandra ${died ? 'exited' : 'did not open its CQL port in time'}; log tail:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const startMs = Date.now() - began;
  return {
    contactPoint: `127.0.0.1:${cqlPort}`,
    host: '127.0.0.1',
    port: cqlPort,
    pid,
    dataDir: dir,
    startMs,
    rssMb() {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        return m ? Math.round(Number(m[1]) / 1024) : 0;
      } catch {
        return 0;
      }
    },
    stop,
  };
}
