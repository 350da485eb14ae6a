// The secrets of a cluster `pushctl up` runs: generated once into the data
// dir (mode 0600) and read there by every other pushctl command.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { addMissingNatsUsers, generateSecrets, readSecretsFile, writeSecretsFile, type ClusterSecrets } from '../../system/common/secrets.ts';

export const secretsPath = (dataDir: string) => join(dataDir, 'secrets.json');

/** The data dir's secrets, generated on first use (kept across restarts so clients' credentials stay valid). */
export function ensureClusterSecrets(dataDir: string): { path: string; secrets: ClusterSecrets; created: boolean } {
  const path = secretsPath(dataDir);
  if (existsSync(path)) {
    const secrets = readSecretsFile(path);
    // Files generated before the metrics token existed get one: Prometheus should not hold the admin token.
    const noMetricsToken = secrets.metricsToken === undefined;
    if (noMetricsToken) secrets.metricsToken = generateSecrets().metricsToken!;
    // …and files from before the history process had its own NATS user get one.
    if (addMissingNatsUsers(secrets) || noMetricsToken) writeSecretsFile(path, secrets);
    return { path, secrets, created: false };
  }
  const secrets = generateSecrets();
  writeSecretsFile(path, secrets);
  return { path, secrets, created: true };
}

/** The secrets of an existing cluster, for commands that talk to it; a clear error when there are none. */
export function loadClusterSecrets(dataDir: string): ClusterSecrets {
  const path = secretsPath(dataDir);
  if (!existsSync(path)) throw new Error(`no cluster secrets at ${path}: start the cluster with \`pushctl up --data-dir ${dataDir}\` (or pass its data dir)`);
  return readSecretsFile(path);
}

/**
 * The Authorization header pushctl commands send to a cluster's admin
 * listeners: the admin token from --secrets FILE, else the file the cluster
 * was started with (its state file says), else the data dir's secrets.json.
 */
export function operatorAuth(o: { dataDir?: string; secretsFile?: string; recorded?: string }): Record<string, string> {
  const file = o.secretsFile ?? o.recorded ?? (o.dataDir ? secretsPath(o.dataDir) : undefined);
  if (!file) throw new Error('no cluster secrets: pass --secrets FILE (or --data-dir of a cluster `pushctl up` started)');
  if (!existsSync(file)) throw new Error(`no cluster secrets at ${file}: pass --secrets FILE, or the --data-dir of a cluster \`pushctl up\` started`);
  return { authorization: `Bearer ${readSecretsFile(file).adminToken}` };
}
