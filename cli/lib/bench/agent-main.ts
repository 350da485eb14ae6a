// A local load agent process, spawned by `pushctl bench --agents N`:
//   node cli/lib/bench/agent-main.ts --nats URL --name NAME
// Prints one JSON readiness line; exits on SIGTERM/SIGINT or when its parent goes (stdin closes).
import { startAgent } from './agent.ts';

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
const agent = await startAgent({ nats, name, log: (l) => process.stderr.write(`${name}: ${l}\n`) });
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
