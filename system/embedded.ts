// The embedded default of `pushctl up`: every role in this one process, on a
// shared in-memory bus, routers on a shared in-memory registry, each role
// still on its own port. Started as
//   node system/embedded.ts --config '{"id":"embedded","logFile":…,"roles":[{"role":"router","config":{…}},…]}'
// Prints one readiness line listing every role's URLs; stops all roles in
// reverse order on SIGINT/SIGTERM.
import { MemoryBus } from './common/bus.ts';
import { defaults, type RoleName } from './common/config.ts';
import { createLogger, type Logger } from './common/logger.ts';
import { MemoryRegistry } from './common/registry.ts';
import { readSecretsFile } from './common/secrets.ts';
import { trustCaFile } from './common/tls.ts';
import { raiseFdLimitAndLog } from './common/fd-limit.ts';
import { HISTORY_ROLE_DEFAULTS } from './history/role.ts';
import { installStopHandlers, stopProcessOnce, type RoleContext, type RoleHandle } from './common/run-role.ts';

type Start = (config: never, ctx: RoleContext) => Promise<RoleHandle>;

// Imported on demand so a broken role names itself in the error.
// The history process (the cluster's REST host) is not a RoleName: its config has defaults of its own.
type EmbeddedRole = RoleName | 'history';
const starters: Record<EmbeddedRole, () => Promise<Start>> = {
  router: async () => (await import('./router/router.ts')).startRouter as Start,
  control: async () => (await import('./control/control.ts')).startControl as Start,
  server: async () => (await import('./server/server.ts')).startServer as Start,
  gateway: async () => (await import('./gateway/gateway.ts')).startGateway as Start,
  feed: async () => (await import('./feed/feed.ts')).startFeed as Start,
  history: async () => (await import('./history/role.ts')).startHistory as Start,
};
const roleDefaults = (role: EmbeddedRole): Record<string, unknown> => (role === 'history' ? { ...HISTORY_ROLE_DEFAULTS } : { ...defaults[role]() });

interface EmbeddedConfig {
  id: string;
  logFile?: string;
  roles: Array<{ role: EmbeddedRole; config: Record<string, unknown> }>;
}

function readConfig(argv = process.argv.slice(2)): EmbeddedConfig {
  const i = argv.indexOf('--config');
  if (i < 0 || !argv[i + 1]) throw new Error('usage: node system/embedded.ts --config <json>');
  const cfg = JSON.parse(argv[i + 1]!) as Partial<EmbeddedConfig>;
  if (!Array.isArray(cfg.roles) || cfg.roles.length === 0) throw new Error('config.roles must list the roles to start');
  return { id: cfg.id ?? 'embedded', roles: cfg.roles, ...(cfg.logFile ? { logFile: cfg.logFile } : {}) };
}

async function main(): Promise<void> {
  const cfg = readConfig();
  const log = createLogger(cfg.id, cfg.logFile, undefined, { role: 'embedded' });
  const bus = new MemoryBus();
  const routerExpiry = cfg.roles.find((r) => r.role === 'router')?.config.expiryMs;
  const registry = new MemoryRegistry(typeof routerExpiry === 'number' ? routerExpiry : defaults.router().expiryMs);
  const started: Array<{ id: string; role: EmbeddedRole; handle: RoleHandle; log: Logger }> = [];
  const loggers: Logger[] = [log];

  const stop = stopProcessOnce(async (code) => {
    for (const s of [...started].reverse()) {
      try {
        await s.handle.stop();
        s.log.info('stopped');
      } catch (err) {
        log.error('stop failed', { id: s.id, err: String(err) });
      }
    }
    await bus.close();
    await registry.close();
    log.info('stopped');
    await Promise.all(loggers.map((l) => l.close()));
    process.exit(code);
  });
  installStopHandlers(log, stop);
  raiseFdLimitAndLog(log);

  let current = '';
  try {
    for (const { role, config: given } of cfg.roles) {
      const config = { ...roleDefaults(role), ...given } as Record<string, unknown> & { id: string; logFile?: string };
      current = config.id;
      const roleLog = createLogger(config.id, config.logFile, undefined, { role });
      loggers.push(roleLog);
      const start = await starters[role]();
      const secrets = typeof config.secretsFile === 'string' ? readSecretsFile(config.secretsFile) : undefined;
      // One process: the CAs every role trusts are the process's.
      if (typeof config.tlsCaFile === 'string') trustCaFile(config.tlsCaFile);
      const ctx: RoleContext = { log: roleLog, bus, ...(role === 'router' ? { registry } : {}), ...(secrets ? { secrets } : {}) };
      const handle = await start(config as never, ctx);
      started.push({ id: config.id, role, handle, log: roleLog });
      roleLog.info('ready', { urls: handle.urls, embedded: true });
    }
  } catch (err) {
    log.error('start failed', { id: current, err: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.stderr.write(`${cfg.id}: ${current} failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
    await stop(1);
    return;
  }
  const nodes = started.map((s) => ({ id: s.id, role: s.role, urls: s.handle.urls }));
  log.info('ready', { nodes });
  process.stdout.write(JSON.stringify({ ready: true, id: cfg.id, role: 'embedded', pid: process.pid, urls: {}, nodes }) + '\n');
}

await main();
