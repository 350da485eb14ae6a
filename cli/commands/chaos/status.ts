import { Command, Flags } from '@oclif/core';
import { fail } from '../../lib/fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../../lib/data-dir.ts';
import { recoverStale, reportLines } from '../../lib/chaos/session.ts';
import { readChaosState } from '../../lib/chaos/state.ts';

export default class ChaosStatus extends Command {
  static override summary = 'Show the active chaos sessions and every resource they recorded.';

  static override description = 'For each session: its profile, target, which backend realised each field, its proxies, and every resource recorded.';

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
        if (s.isolation) {
          const i = s.isolation;
          this.log(`isolation ${s.id}: \`pushctl up --isolate\` namespaces on ${i.cidr} since ${s.createdAt} (hub ${i.hub}, host end ${i.hostDev} ${i.hostAddr}); \`pushctl down\` removes them`);
          for (const r of i.roles) this.log(`  ${r.id.padEnd(12)} ${r.addr.padEnd(15)} ${r.netns} (veth ${r.dev} ↔ ${r.hubDev} in ${i.hub})`);
          continue;
        }
        this.log(`session ${s.id}: ${s.profile} on ${s.target}${s.roles ? ` (isolated: ${s.roles.join(', ')})` : ''} (backend ${s.backend}), held by pid ${s.ownerPid} since ${s.createdAt}`);
        for (const l of reportLines(s.report)) this.log(l);
        for (const p of s.proxies) this.log(`  proxy ${p.listen} → ${p.target}`);
        for (const r of s.resources) this.log(`  resource ${JSON.stringify(r)}`);
      }
    } catch (err) {
      fail(this, (err as Error).message, 1);
    }
  }
}
