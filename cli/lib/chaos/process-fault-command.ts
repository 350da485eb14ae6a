// `pushctl chaos kill|pause|resume|restart ROLE`: one command shape, four
// faults. Each command file is this class with its fault and description.
import { Args, Command, Flags } from '@oclif/core';
import { fail } from '../fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../data-dir.ts';
import { processFault, type ProcessFault } from './process-faults.ts';

export function processFaultCommand(fault: ProcessFault, summary: string, description?: string): typeof Command {
  return class ProcessFaultCommand extends Command {
    static override summary = summary;
    static override description = description ?? summary;

    static override examples = [`<%= config.bin %> chaos ${fault} gateway-1`];

    static override args = { role: Args.string({ description: 'role id as `pushctl status` shows it (e.g. gateway-2)', required: true }) };

    static override flags = { 'data-dir': Flags.string({ description: DATA_DIR_HELP }) };

    async run(): Promise<void> {
      const { args, flags } = await this.parse(ProcessFaultCommand);
      try {
        this.log(await processFault(resolveDataDir(flags['data-dir']), fault, args.role));
      } catch (err) {
        fail(this, (err as Error).message, 1);
      }
    }
  };
}
