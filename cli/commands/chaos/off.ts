import { Command, Flags } from '@oclif/core';
import { fail } from '../../lib/fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../../lib/data-dir.ts';
import { isAlive } from '../../lib/processes.ts';
import { revertAll } from '../../lib/chaos/kernel.ts';
import { recoverStale, undoSession } from '../../lib/chaos/session.ts';
import { Shell } from '../../lib/chaos/shell.ts';
import { readChaosState } from '../../lib/chaos/state.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export default class ChaosOff extends Command {
  static override description = `Undo everything pushctl chaos applied from this data dir: namespaces, veths, qdiscs, nft tables, iptables rules,
proxies. Asks each holding \`chaos apply\` to stop (it undoes its own session), undoes what is left itself.`;

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
        for (const s of readChaosState(dataDir).sessions) {
          this.log(`# session ${s.id} (${s.profile} on ${s.target}, held by pid ${s.ownerPid})`);
          await revertAll(new Shell({ dryRun: true, print }), s.resources);
        }
        return;
      }
      const recovered = await recoverStale(dataDir, print);
      const sessions = readChaosState(dataDir).sessions;
      for (const s of sessions) {
        this.log(`asking pid ${s.ownerPid} to undo session ${s.id} (${s.profile} on ${s.target})`);
        try {
          process.kill(s.ownerPid, 'SIGTERM');
        } catch {
          // gone
        }
      }
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline && readChaosState(dataDir).sessions.some((s) => isAlive(s.ownerPid, s.ownerStartTime))) await sleep(100);
      let left = 0;
      for (const s of readChaosState(dataDir).sessions) {
        this.log(`session ${s.id}: its holder did not finish${isAlive(s.ownerPid, s.ownerStartTime) ? '' : ' (or could not undo everything)'}; undoing it here`);
        if (!(await undoSession(dataDir, s, new Shell(), print))) left++;
      }
      if (left > 0) fail(this, `${left} session(s) could not be undone completely; see above and ${dataDir}/chaos.json`, 1);
      this.log(sessions.length + recovered === 0 ? 'chaos: nothing was applied' : 'chaos: everything undone');
    } catch (err) {
      if ((err as { oclif?: unknown }).oclif) throw err;
      fail(this, (err as Error).message, 1);
    }
  }
}
