import { Command, Flags } from '@oclif/core';
import { fail } from '../lib/fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../lib/data-dir.ts';
import { isAlive, stopInReverse } from '../lib/processes.ts';
import { liveProcesses, readState, removeState } from '../lib/state-file.ts';
import { findIsolation, removeIsolation } from '../lib/chaos/isolate.ts';
import { stopSessions } from '../lib/chaos/session.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export default class Down extends Command {
  static override summary = 'Stop the cluster `pushctl up` started from a data dir, and every process it recorded.';

  static override description = `Stops in reverse start order: SIGTERM to each process group, up to 5 s, then SIGKILL. Running it when nothing runs is fine. A cluster started with --isolate also loses its namespaces, veths and bridge, and the chaos sessions shaping its roles.`;

  static override examples = ['<%= config.bin %> down', '<%= config.bin %> down --data-dir /tmp/cluster-a'];

  static override flags = {
    'data-dir': Flags.string({ description: DATA_DIR_HELP }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Down);
    const dataDir = resolveDataDir(flags['data-dir']);
    const state = readState(dataDir);
    if (!state) {
      // An `up --isolate` that died before recording its processes may still have left its namespaces.
      if (findIsolation(dataDir)) await this.#unisolate(dataDir);
      this.log(`nothing to stop: no cluster is recorded in ${dataDir}`);
      return;
    }

    // A foreground `up` owns its cluster: ask it to stop, so it cleans up as on Ctrl-C.
    if (!state.detached && state.supervisorPid !== process.pid && isAlive(state.supervisorPid, state.supervisorStartTime)) {
      this.log(`asking pushctl up (pid ${state.supervisorPid}) to stop the cluster`);
      try {
        process.kill(state.supervisorPid, 'SIGTERM');
      } catch {
        // it just exited
      }
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && isAlive(state.supervisorPid, state.supervisorStartTime)) await sleep(100);
      if (!readState(dataDir) && liveProcesses(state).length === 0) {
        await this.#unisolate(dataDir);
        this.log(`cluster in ${dataDir} is down (stopped by pushctl up, pid ${state.supervisorPid})`);
        return;
      }
    }

    const live = liveProcesses(state);
    if (live.length === 0) {
      removeState(dataDir);
      await this.#unisolate(dataDir);
      this.log(`nothing was running from ${dataDir}; removed its stale state file`);
      return;
    }
    const survivors = await stopInReverse(live, {
      onStopped: (p, gone) => this.log(`${gone ? 'stopped' : 'could not stop'} ${p.id} (pid ${p.pid})`),
    });
    if (survivors.length > 0) {
      fail(this, `still running: ${survivors.join(', ')}; the state file ${dataDir}/cluster.json is kept`, 1);
    }
    removeState(dataDir);
    await this.#unisolate(dataDir);
    this.log(`cluster in ${dataDir} is down (${live.length} process${live.length === 1 ? '' : 'es'} stopped)`);
  }

  /** Chaos sessions on the isolated roles first (their qdiscs and rules live in the namespaces), then the namespaces. */
  async #unisolate(dataDir: string): Promise<void> {
    if (!findIsolation(dataDir)) return;
    const print = (l: string) => this.log(l);
    const { left } = await stopSessions(dataDir, (s) => s.roles !== undefined, print);
    if (!(await removeIsolation(dataDir, print)) || left > 0) fail(this, `some of the cluster's namespaces or chaos sessions could not be removed; they stay in ${dataDir}/chaos.json for the next \`pushctl down\``, 1);
    this.log(`removed the cluster's network namespaces`);
  }
}
