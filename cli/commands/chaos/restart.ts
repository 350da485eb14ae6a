import { processFaultCommand } from '../../lib/chaos/process-fault-command.ts';

export default processFaultCommand('restart', 'Kill a role with SIGKILL and start it again with the same command line, environment and log; the new pid is recorded so `pushctl down` stops it.');
