import { runRole } from '../common/run-role.ts';
import { startServer } from './server.ts';

await runRole('server', startServer);
