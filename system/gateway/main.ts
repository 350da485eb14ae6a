import { runRole } from '../common/run-role.ts';
import { startGateway } from './gateway.ts';

await runRole('gateway', startGateway);
