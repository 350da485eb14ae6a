// A local load agent process, spawned by `pushctl bench --agents N`:
//   node cli/lib/bench/agent-main.ts --nats URL --name NAME [--secrets-file FILE]
// (--secrets-file: connect as that secrets file's operator user.)
// Prints one JSON readiness line; exits on SIGTERM/SIGINT or when its parent goes (stdin closes).
import { startAgent } from './agent.ts';
import { trustCaFile } from '../../../system/common/tls.ts';
import { AGENT_CA_ENV } from '../cluster-tls.ts';
import { readSecretsFile } from '../../../system/common/secrets.ts';

const arg = (k: string) => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const nats = arg('--nats');
const name = arg('--name');
if (!nats || !name) {
  process.stderr.write('usage: agent-main.ts --nats URL --name NAME\n');
  process.exit(2);
}
// The bench trusts a `pushctl up --tls` cluster's certificate, and hands it down here.
if (process.env[AGENT_CA_ENV]) trustCaFile(process.env[AGENT_CA_ENV]);
const secretsFile = arg('--secrets-file');
const auth = secretsFile ? readSecretsFile(secretsFile).nats.operator : undefined;
const agent = await startAgent({ nats, name, log: (l) => process.stderr.write(`${name}: ${l}\n`), ...(auth ? { auth } : {}) });
process.stdout.write(JSON.stringify({ ready: true, name, pid: process.pid }) + '\n');
let stopping = false;
const bye = async () => {
  if (stopping) return;
  stopping = true;
  const t = setTimeout(() => process.exit(1), 5_000);
  await agent.stop();
  clearTimeout(t);
  process.exit(0);
};
process.on('SIGTERM', () => void bye());
process.on('SIGINT', () => void bye());
process.stdin.on('end', () => void bye());
process.stdin.on('error', () => void bye());
process.stdin.resume();
