import { runRole } from '../common/run-role.ts';
import { startRouter } from './router.ts';

void runRole('router', startRouter);
