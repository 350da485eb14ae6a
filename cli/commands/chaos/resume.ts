import { processFaultCommand } from '../../lib/chaos/process-fault-command.ts';

export default processFaultCommand('resume', 'Continue a role paused by `pushctl chaos pause` (SIGCONT).');
