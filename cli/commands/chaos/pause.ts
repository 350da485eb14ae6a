import { processFaultCommand } from '../../lib/chaos/process-fault-command.ts';

export default processFaultCommand('pause', 'Freeze a role with SIGSTOP (it keeps its sockets but answers nothing), until `pushctl chaos resume`.');
