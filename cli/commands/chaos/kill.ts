import { processFaultCommand } from '../../lib/chaos/process-fault-command.ts';

export default processFaultCommand('kill', 'Kill a role with SIGKILL (its whole process group), as a crash would.');
