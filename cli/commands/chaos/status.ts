import { Command, Flags } from '@oclif/core';
import { fail } from '../../lib/fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../../lib/data-dir.ts';
import { recoverStale, reportLines } from '../../lib/chaos/session.ts';
import { readChaosState } from '../../lib/chaos/state.ts';

export default class ChaosStatus extends Command {
  static override description = 'Show the chaos sessions that are active: profile, target, which backend realised each field, proxies, and every resource recorded.';

  static override flags = {
    'data-dir': Flags.string({ description: DATA_DIR_HELP }),
    json: Flags.boolean({ description: 'print one JSON object', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ChaosStatus);
    const dataDir = resolveDataDir(flags['data-dir']);
    try {
      await recoverStale(dataDir, (l) => this.log(l));
      const { sessions } = readChaosState(dataDir);
      if (flags.json) {
        this.log(JSON.stringify({ sessions }, null, 2));
        return;
      }
      if (sessions.length === 0) {
        this.log('chaos: nothing applied');
        return;
      }
      for (const s of sessions) {
        this.log(`session ${s.id}: ${s.profile} on ${s.target} (backend ${s.backend}), held by pid ${s.ownerPid} since ${s.createdAt}`);
        for (const l of reportLines(s.report)) this.log(l);
        for (const p of s.proxies) this.log(`  proxy ${p.listen} → ${p.target}`);
        for (const r of s.resources) this.log(`  resource ${JSON.stringify(r)}`);
      }
    } catch (err) {
      fail(this, (err as Error).message, 1);
    }
  }
}
