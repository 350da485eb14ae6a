import { Command, Flags } from '@oclif/core';
import { fail } from '../lib/fail.ts';
import { startAgent } from '../lib/bench/agent.ts';

export default class Agent extends Command {
  static override description = `Run a load agent for \`pushctl bench --remote\`: it waits on NATS for a plan, replays its share of
the scenario's sessions with real WebSocket clients, and reports HDR histograms, counters, its CPU, event-loop delay
and clock offset to the controller. Serves runs one after another until Ctrl-C.`;

  static override examples = ['<%= config.bin %> agent --nats nats://10.0.0.5:4222 --name load-1'];

  static override flags = {
    nats: Flags.string({ description: 'NATS URL shared with the controller', required: true }),
    name: Flags.string({ description: 'unique agent name (letters, digits, - and _)', required: true }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Agent);
    let agent;
    try {
      agent = await startAgent({ nats: flags.nats, name: flags.name, log: (l) => process.stderr.write(`pushctl agent ${flags.name}: ${l}\n`) });
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
