import { Command, Flags } from '@oclif/core';
import { fail } from '../../lib/fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../../lib/data-dir.ts';
import { revertAll } from '../../lib/chaos/kernel.ts';
import { recoverStale, stopSessions } from '../../lib/chaos/session.ts';
import { Shell } from '../../lib/chaos/shell.ts';
import { readChaosState } from '../../lib/chaos/state.ts';

export default class ChaosOff extends Command {
  static override summary = 'Undo everything pushctl chaos applied from this data dir.';

  static override description = `Removes namespaces, veths, qdiscs, nft tables, iptables rules and proxies. It asks each holding \`chaos apply\` to stop (it undoes its own session), then undoes what is left itself. The namespaces of a cluster started with \`pushctl up --isolate\` are the cluster's: \`pushctl down\` removes them.`;

  static override flags = {
    'data-dir': Flags.string({ description: DATA_DIR_HELP }),
    'dry-run': Flags.boolean({ description: 'print every command instead of running it', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ChaosOff);
    const dataDir = resolveDataDir(flags['data-dir']);
    try {
      const print = (l: string) => this.log(l);
      if (flags['dry-run']) {
        for (const s of readChaosState(dataDir).sessions.filter((x) => !x.isolation)) {
          this.log(`# session ${s.id} (${s.profile} on ${s.target}, held by pid ${s.ownerPid})`);
          await revertAll(new Shell({ dryRun: true, print }), s.resources);
        }
        return;
      }
      const recovered = await recoverStale(dataDir, print);
      const { count, left } = await stopSessions(dataDir, (s) => !s.isolation, print);
      if (left > 0) fail(this, `${left} session(s) could not be undone completely; see above and ${dataDir}/chaos.json`, 1);
      this.log(count + recovered === 0 ? 'chaos: nothing was applied' : 'chaos: everything undone');
    } catch (err) {
      if ((err as { oclif?: unknown }).oclif) throw err;
      fail(this, (err as Error).message, 1);
    }
  }
}
