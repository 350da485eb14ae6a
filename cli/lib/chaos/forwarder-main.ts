// A plain TCP forwarder for inside a chaos namespace (`ip netns exec NS node
// forwarder-main.ts --config JSON`): Node cannot enter a namespace itself.
// Prints one JSON line when listening; stops on SIGTERM/SIGINT.
import { ChaosProxy } from './proxy.ts';

interface Config {
  listen: Array<{ host: string; port: number; targetHost: string; targetPort: number }>;
}

const i = process.argv.indexOf('--config');
const config = JSON.parse(process.argv[i + 1] ?? '{}') as Config;
const proxies = config.listen.map((l) => new ChaosProxy({ listenHost: l.host, listenPort: l.port, targetHost: l.targetHost, targetPort: l.targetPort }));
await Promise.all(proxies.map((p) => p.listen()));
process.stdout.write(JSON.stringify({ ready: true, pid: process.pid, ports: proxies.map((p) => p.port) }) + '\n');
const stop = async () => {
  await Promise.all(proxies.map((p) => p.close()));
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
// Our parent may go (SIGKILL) without telling us; whoever recovers the session stops us by pid.
process.stdout.on('error', () => {});
