import { Command, Flags } from '@oclif/core';
import { fail } from '../lib/fail.ts';
import { startAgent } from '../lib/bench/agent.ts';
import { trustCaFile } from '../../system/common/tls.ts';
import { readSecretsFile } from '../../system/common/secrets.ts';

export default class Agent extends Command {
  static override summary = 'Run a load agent that `pushctl bench --remote` hands a share of the sessions.';

  static override description = `The agent waits on NATS for a plan, replays its share of the scenario's sessions with real WebSocket clients, and reports HDR histograms, counters, its CPU, event-loop delay and clock offset to the controller. It serves runs one after another until Ctrl-C.`;

  static override examples = ['<%= config.bin %> agent --nats nats://10.0.0.5:4222 --name load-1'];

  static override flags = {
    nats: Flags.string({ description: 'NATS URL shared with the controller', required: true }),
    name: Flags.string({ description: 'unique agent name (letters, digits, - and _)', required: true }),
    'tls-ca': Flags.string({ description: 'extra CA certificate (PEM) to trust for a TLS cluster, e.g. its data dir\'s tls/cert.pem' }),
    'secrets-file': Flags.string({ description: 'connect to NATS as this secrets file\'s operator user (a cluster from `pushctl up`: DATA_DIR/secrets.json)' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Agent);
    let agent;
    try {
      if (flags['tls-ca']) trustCaFile(flags['tls-ca']);
      const auth = flags['secrets-file'] ? readSecretsFile(flags['secrets-file']).nats.operator : undefined;
      agent = await startAgent({ nats: flags.nats, name: flags.name, log: (l) => process.stderr.write(`pushctl agent ${flags.name}: ${l}\n`), ...(auth ? { auth } : {}) });
    } catch (err) {
      fail(this, (err as Error).message, 1);
    }
    process.stderr.write(`pushctl agent ${flags.name}: waiting for plans on ${flags.nats}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    // A second signal, or a stop that hangs (NATS unreachable), still ends the process.
    const force = () => process.exit(1);
    process.once('SIGINT', force);
    process.once('SIGTERM', force);
    setTimeout(force, 5_000).unref();
    await agent.stop();
    process.exit(0);
  }
}
