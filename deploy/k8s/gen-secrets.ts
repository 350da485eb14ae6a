// Writes the files an overlay's secretGenerator reads (never committed):
//   secrets.json   the cluster's secrets (system/common/secrets.ts), Secret market-push-secrets
//   auth.conf      nats-server users with each role kind's permissions (cli/lib/nats-server-config.ts)
//   cluster.conf   the NATS cluster block: route user and routes to nats-0 … nats-(N-1) (empty for one node)
// Usage: node deploy/k8s/gen-secrets.ts DIR [--nats-replicas N] [--from SECRETS.json] [--rotate]
// Existing files are kept unless --rotate: new secrets would lock out running roles and clients.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { natsPermissions } from '../../cli/lib/nats-server-config.ts';
import { generateSecrets, NATS_USERS, readSecretsFile, type ClusterSecrets } from '../../system/common/secrets.ts';

export const SECRET_FILES = ['secrets.json', 'auth.conf', 'cluster.conf'] as const;

/** nats-server `authorization` block: one user per role kind, allow-lists as `pushctl up` writes them. */
export function natsAuthConf(secrets: ClusterSecrets): string {
  const users = NATS_USERS.map((kind) => ({ user: secrets.nats[kind].user, password: secrets.nats[kind].password, permissions: natsPermissions(kind) }));
  return `authorization: ${JSON.stringify({ users }, null, 2)}\n`;
}

/**
 * The cluster block: route credential and routes (pod DNS names of the StatefulSet through
 * nats-headless). One node gets none: with a cluster block it would wait for routes, and
 * JetStream would never start.
 */
export function natsClusterConf(routeUser: { user: string; password: string }, replicas: number): string {
  if (replicas === 1) return '# one NATS node: no cluster block (deploy/k8s/gen-secrets.ts --nats-replicas 1)\n';
  const routes = Array.from({ length: replicas }, (_, i) => `nats-route://${routeUser.user}:${routeUser.password}@nats-${i}.nats-headless:6222`);
  const cluster = {
    name: 'market-push',
    listen: '0.0.0.0:6222',
    // Routes are listed here; clients use the Service, so no cluster URLs are gossiped to them.
    no_advertise: true,
    authorization: { user: routeUser.user, password: routeUser.password },
    routes,
  };
  return `cluster: ${JSON.stringify(cluster, null, 2)}\n`;
}

export function writeSecretFiles(dir: string, o: { natsReplicas: number; from?: string; rotate?: boolean }): string[] {
  if (!Number.isInteger(o.natsReplicas) || o.natsReplicas < 1 || o.natsReplicas > 32) throw new Error('--nats-replicas must be an integer from 1 to 32');
  const present = SECRET_FILES.filter((f) => existsSync(join(dir, f)));
  if (present.length > 0 && !o.rotate)
    throw new Error(`${dir} already holds ${present.join(', ')}; keep them, or pass --rotate to replace them (running roles and clients then need the new ones)`);
  const secrets = o.from ? readSecretsFile(o.from) : generateSecrets();
  const route = { user: 'mp-route', password: randomBytes(24).toString('base64url') };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files: Array<[string, string]> = [
    ['secrets.json', JSON.stringify(secrets, null, 2) + '\n'],
    ['auth.conf', natsAuthConf(secrets)],
    ['cluster.conf', natsClusterConf(route, o.natsReplicas)],
  ];
  for (const [name, text] of files) {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    chmodSync(path, 0o600);
  }
  return files.map(([name]) => join(dir, name));
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { 'nats-replicas': { type: 'string', default: '3' }, from: { type: 'string' }, rotate: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1) throw new Error('usage: node deploy/k8s/gen-secrets.ts DIR [--nats-replicas N] [--from SECRETS.json] [--rotate]');
  const written = writeSecretFiles(resolve(positionals[0]!), {
    natsReplicas: Number(values['nats-replicas']),
    ...(values.from ? { from: values.from } : {}),
    rotate: values.rotate ?? false,
  });
  for (const f of written) process.stdout.write(`wrote ${f} (mode 0600)\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`gen-secrets: ${(err as Error).message}\n`);
    process.exit(2);
  }
}
