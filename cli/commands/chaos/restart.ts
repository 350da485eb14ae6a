import { processFaultCommand } from '../../lib/chaos/process-fault-command.ts';

export default processFaultCommand('restart', 'Kill a role (or take one already killed) and start it again as it was started.',
  'It starts again with the same command line, working directory and log; the new pid is recorded so `pushctl down` stops it.');
