// Where a local cluster keeps its state file, logs and engine data.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** --data-dir, else $PUSHCTL_HOME, else ~/.pushctl/default. */
export function resolveDataDir(flag?: string): string {
  if (flag) return resolve(flag);
  if (process.env.PUSHCTL_HOME) return resolve(process.env.PUSHCTL_HOME);
  return join(homedir(), '.pushctl', 'default');
}

export const DATA_DIR_HELP = 'directory for the state file, logs and engine data (default $PUSHCTL_HOME, else ~/.pushctl/default)';
