import { Args, Command, Flags } from '@oclif/core';
import { fail } from '../../lib/fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../../lib/data-dir.ts';
import { processFault } from '../../lib/chaos/process-faults.ts';

export default class ChaosResume extends Command {
  static override description = 'Continue a role paused by `pushctl chaos pause` (SIGCONT).';

  static override examples = ['<%= config.bin %> chaos resume gateway-1'];

  static override args = { role: Args.string({ description: 'role id as `pushctl status` shows it (e.g. gateway-2)', required: true }) };

  static override flags = { 'data-dir': Flags.string({ description: DATA_DIR_HELP }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(ChaosResume);
    try {
      this.log(await processFault(resolveDataDir(flags['data-dir']), 'resume', args.role));
    } catch (err) {
      fail(this, (err as Error).message, 1);
    }
  }
}
