// Entry glue for a role running as its own OS process: config from argv,
// logger, bus connection, readiness line on stdout, clean stop on signals.
import { configFromArgv, type RoleName } from './config.ts';
import { createLogger, type Logger } from './logger.ts';
import type { Bus } from './bus.ts';
import { NatsBus } from './nats-bus.ts';
import type { RegistryStore } from './registry.ts';
import { readSecretsFile, type ClusterSecrets, type Credential } from './secrets.ts';
import { trustCaFile } from './tls.ts';
import { raiseFdLimitAndLog } from './fd-limit.ts';

export interface RoleHandle {
  /** What the readiness line and `pushctl up` print, e.g. { ws: 'ws://…' }. */
  urls: Record<string, string>;
  stop(): Promise<void>;
}

export interface RoleContext {
  log: Logger;
  /** Present when the config names a NATS URL, or in-memory in embedded mode. */
  bus?: Bus;
  /** Embedded mode hands the router an in-memory registry; otherwise it opens the JetStream KV one. */
  registry?: RegistryStore;
  /** The cluster's secrets (config.secretsFile), when the role was given them. */
  secrets?: ClusterSecrets;
}

/**
 * Stops the process cleanly on SIGINT/SIGTERM, on an uncaught exception, and
 * when a supervisor that asked for it (PUSH_EXIT_WITH_PARENT=1: tests,
 * foreground `pushctl up`) dies: its stdin pipe closes, so nothing lingers.
 */
/**
 * Wraps a process's stop so it runs once, whichever signal or error asks
 * first, and the process exits after 10 s even if stopping hangs.
 */
export function stopProcessOnce(stop: (code: number) => Promise<void>): (code: number) => Promise<void> {
  let stopping = false;
  return async (code) => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(code || 1), 10_000).unref();
    await stop(code);
  };
}

export function installStopHandlers(log: Logger, stop: (code: number) => Promise<void>): void {
  if (process.env.PUSH_EXIT_WITH_PARENT === '1') {
    process.stdin.on('end', () => void stop(0));
    process.stdin.on('error', () => void stop(0));
    process.stdin.resume();
  }
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  process.on('uncaughtException', (err) => {
    log.error('uncaught exception', { err: err.stack ?? String(err) });
    void stop(1);
  });
  process.on('unhandledRejection', (err) => {
    log.error('unhandled rejection', { err: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  });
}

/** The NATS user a role connects as: its kind's, when its config says the server takes only the cluster's users. */
export function natsCredential(role: RoleName, config: { natsAuth?: boolean; id: string }, secrets: ClusterSecrets | undefined): Credential | undefined {
  if (!config.natsAuth) return undefined;
  if (!secrets) throw new Error(`${config.id}: natsAuth is set but no secretsFile names the cluster's NATS credentials`);
  return secrets.nats[role];
}

export async function runRole<R extends RoleName>(
  role: R,
  start: (config: ReturnType<typeof configFromArgv<R>>, ctx: RoleContext) => Promise<RoleHandle>,
): Promise<void> {
  const config = configFromArgv(role);
  const log = createLogger(config.id, config.logFile, undefined, { role });
  let handle: RoleHandle | undefined;
  let bus: Bus | undefined;
  const stop = stopProcessOnce(async (code) => {
    try {
      await handle?.stop();
      await bus?.close();
    } catch (err) {
      log.error('stop failed', { err: String(err) });
    }
    log.info('stopped');
    await log.close();
    process.exit(code);
  });
  installStopHandlers(log, stop);
  // Every client connection is a file descriptor: run with the hard limit, and say what it is.
  raiseFdLimitAndLog(log);
  try {
    const secrets = config.secretsFile ? readSecretsFile(config.secretsFile) : undefined;
    if (config.tlsCaFile) trustCaFile(config.tlsCaFile);
    if (config.nats) bus = await NatsBus.connect(config.nats, config.id, natsCredential(role, config, secrets));
    handle = await start(config, { log, bus, ...(secrets ? { secrets } : {}) });
    log.info('ready', { urls: handle.urls });
    process.stdout.write(JSON.stringify({ ready: true, id: config.id, role, pid: process.pid, urls: handle.urls }) + '\n');
  } catch (err) {
    log.error('start failed', { err: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.stderr.write(`${config.id}: start failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await stop(1);
  }
}
