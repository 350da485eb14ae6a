// Writes the config files of the nats-server and redis-server `pushctl up`
// starts, with the cluster's credentials in them, mode 0600 (only the user
// running the cluster may read them), before those processes start.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ClusterPlan, StoreConfigFile } from './cluster-plan.ts';
import { natsServerConfig } from './nats-server-config.ts';
import { redisServerConfig } from './redis-server-config.ts';
import { natsClusterBlock } from './nats-cluster.ts';
import { redisAdminCredential } from './redis-cluster.ts';
import type { ClusterSecrets } from '../../system/common/secrets.ts';

export function storeConfigText(f: StoreConfigFile, secrets: ClusterSecrets): string {
  return f.kind === 'nats-server'
    ? natsServerConfig({ host: f.host, port: f.port, storeDir: f.dir, secrets, ...(f.natsCluster ? { cluster: natsClusterBlock(f.natsCluster, secrets) } : {}) })
    : redisServerConfig({
        host: f.host, port: f.port, dir: f.dir, user: secrets.redis,
        ...(f.redisClusterBusPort ? { cluster: { busPort: f.redisClusterBusPort, admin: redisAdminCredential(secrets) } } : {}),
      });
}

/** Writes every store config file the plan names; returns their paths. */
export function writeStoreConfigs(plan: ClusterPlan, secrets: ClusterSecrets): string[] {
  const written: string[] = [];
  for (const p of plan.processes) {
    if (!p.configFile) continue;
    mkdirSync(dirname(p.configFile.path), { recursive: true, mode: 0o700 });
    writeFileSync(p.configFile.path, storeConfigText(p.configFile, secrets), { mode: 0o600 });
    chmodSync(p.configFile.path, 0o600); // an existing file keeps its old mode through writeFileSync
    written.push(p.configFile.path);
  }
  return written;
}
