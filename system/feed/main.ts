import { runRole } from '../common/run-role.ts';
import { startFeed } from './feed.ts';

void runRole('feed', startFeed);
