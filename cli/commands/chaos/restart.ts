import { Args, Command, Flags } from '@oclif/core';
import { fail } from '../../lib/fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../../lib/data-dir.ts';
import { processFault } from '../../lib/chaos/process-faults.ts';

export default class ChaosRestart extends Command {
  static override description = 'Kill a role with SIGKILL and start it again with the same command line, environment and log; the new pid is recorded so `pushctl down` stops it.';

  static override examples = ['<%= config.bin %> chaos restart gateway-1'];

  static override args = { role: Args.string({ description: 'role id as `pushctl status` shows it (e.g. gateway-2)', required: true }) };

  static override flags = { 'data-dir': Flags.string({ description: DATA_DIR_HELP }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(ChaosRestart);
    try {
      this.log(await processFault(resolveDataDir(flags['data-dir']), 'restart', args.role));
    } catch (err) {
      fail(this, (err as Error).message, 1);
    }
  }
}
