import { runRole } from '../common/run-role.ts';
import { startControl } from './control.ts';

void runRole('control', startControl);
