// Container entry point of one role: `node deploy/container/role.ts <role>`.
// Reads the role's config from a file (a ConfigMap, $MP_CONFIG_FILE, default
// /etc/market-push/<role>.json), fills in what only the pod knows (its id
// from $MP_ID or $POD_NAME, the address it binds and advertises from
// $MP_HOST or $POD_IP, the secrets file from $MP_SECRETS_FILE), and runs the
// role in this process exactly as `pushctl up` starts it
// (`system/<role>/main.ts --config <json>`). Role-specific Node flags
// (system/common/node-flags.ts) go on the container's command line.
import { readFileSync } from 'node:fs';
import { defaults, type RoleName } from '../../system/common/config.ts';

// The history process (the REST host) is a role of its own with no entry in config.ts' defaults.
const ROLES = [...(Object.keys(defaults) as RoleName[]), 'history'] as const;

export function containerConfig(role: string, fileText: string, env: NodeJS.ProcessEnv): Record<string, unknown> {
  if (!(ROLES as readonly string[]).includes(role)) throw new Error(`unknown role "${role}" (one of ${ROLES.join(', ')})`);
  let given: unknown;
  try {
    given = JSON.parse(fileText);
  } catch (err) {
    throw new Error(`config is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw new Error('config must be a JSON object');
  const config: Record<string, unknown> = { ...(given as Record<string, unknown>) };
  const id = env.MP_ID || env.POD_NAME;
  if (id) config.id = id;
  const host = env.MP_HOST || env.POD_IP;
  if (host) {
    config.host = host;
    // The admin plane binds the pod's address too; NetworkPolicies and the tokens keep it to the cluster.
    if (config.adminHost === undefined) config.adminHost = host;
  }
  if (env.MP_SECRETS_FILE) config.secretsFile = env.MP_SECRETS_FILE;
  if (typeof config.id !== 'string' || config.id === '') throw new Error('no id: set MP_ID or POD_NAME (the downward API), or "id" in the config');
  return config;
}

async function main(): Promise<void> {
  const role = process.argv[2] ?? '';
  const file = process.env.MP_CONFIG_FILE || `/etc/market-push/${role}.json`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the ${role} config ${file}: ${(err as Error).message}`);
  }
  const config = containerConfig(role, text, process.env);
  // The role reads its config from argv (system/common/config.ts configFromArgv).
  process.argv = [process.argv[0]!, `system/${role}/main.ts`, '--config', JSON.stringify(config)];
  await import(`../../system/${role}/main.ts`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: Error) => {
    process.stderr.write(`market-push: ${err.message}\n`);
    process.exit(2);
  });
}
