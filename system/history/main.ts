// `node system/history/main.ts --config <json>`: the history process (role.ts).
// Prints the readiness line the supervisors and tests read, stops on signals
// and when its parent goes (PUSH_EXIT_WITH_PARENT=1).
import { createLogger } from '../common/logger.ts';
import { trustCaFile } from '../common/tls.ts';
import { NatsBus } from '../common/nats-bus.ts';
import { readSecretsFile } from '../common/secrets.ts';
import { installStopHandlers, stopProcessOnce } from '../common/run-role.ts';
import { raiseFdLimitAndLog } from '../common/fd-limit.ts';
import type { Bus } from '../common/bus.ts';
import { HISTORY_ROLE_DEFAULTS, startHistoryRole, type HistoryRoleConfig, type HistoryRoleHandle } from './role.ts';

const i = process.argv.indexOf('--config');
const config = { id: 'history-1', ...HISTORY_ROLE_DEFAULTS, ...(JSON.parse(process.argv[i + 1] ?? '{}') as Partial<HistoryRoleConfig>) } as HistoryRoleConfig;
const log = createLogger(config.id, config.logFile);
let bus: Bus | undefined;
let handle: HistoryRoleHandle | undefined;
const stop = stopProcessOnce(async (code) => {
  try {
    await handle?.stop();
    await bus?.close();
  } catch (err) {
    log.error('stop failed', { err: String(err) });
  }
  await log.close();
  process.exit(code);
});
installStopHandlers(log, stop);
// A REST host holds one socket per chart connection: the same open-file limit as the other roles.
raiseFdLimitAndLog(log);
try {
  if (!config.nats) throw new Error('the history process needs the bus: config.nats');
  const secrets = config.secretsFile ? readSecretsFile(config.secretsFile) : undefined;
  const natsAuth = config.natsAuth || config.storeAuth;
  const redisAuth = config.redisAuth || config.storeAuth;
  if ((natsAuth || redisAuth) && !secrets) throw new Error('natsAuth/redisAuth/storeAuth is set but no secretsFile names the cluster\'s credentials');
  if (natsAuth && !secrets!.nats.history) throw new Error(`secrets file ${config.secretsFile} has no nats.history user (\`pushctl up\` adds it to its own secrets.json; add one to a hand-written file)`);
  if (config.tlsCaFile) trustCaFile(config.tlsCaFile);
  // Its own NATS user: subscribe-only, to candles and trades (cli/lib/nats-server-config.ts).
  bus = await NatsBus.connect(config.nats, config.id, natsAuth ? secrets!.nats.history : undefined);
  handle = await startHistoryRole(config, bus, log, redisAuth ? secrets!.redis : undefined, secrets);
  process.stdout.write(JSON.stringify({ ready: true, id: config.id, role: 'history', pid: process.pid, urls: handle.urls }) + '\n');
} catch (err) {
  process.stderr.write(`${config.id}: start failed: ${err instanceof Error ? err.message : String(err)}\n`);
  await stop(1);
}
