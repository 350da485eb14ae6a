import { Command, Flags } from '@oclif/core';
import { fail } from '../lib/fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../lib/data-dir.ts';
import { readState, type ClusterState } from '../lib/state-file.ts';
import { formatTable, totalsOf } from '../lib/status-view.ts';
import { collectStatus } from '../lib/topology.ts';

export default class Status extends Command {
  static override description = `Show the cluster topology from push-control: every node's role, address, health, connections,
subscriptions, message rates, CPU and event-loop delay.

Finds control from --control, else from the cluster recorded in the data dir.`;

  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json', '<%= config.bin %> status --control http://10.0.0.7:7190'];

  static override flags = {
    control: Flags.string({ description: 'push-control URL', exclusive: ['data-dir'] }),
    'data-dir': Flags.string({ description: DATA_DIR_HELP }),
    json: Flags.boolean({ description: 'print one JSON object', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Status);
    let state: ClusterState | undefined;
    let control = flags.control;
    if (!control) {
      const dataDir = resolveDataDir(flags['data-dir']);
      state = readState(dataDir);
      if (!state) fail(this, `no cluster is recorded in ${dataDir}; start one with \`pushctl up\` or pass --control URL`, 1);
      control = state.endpoints.control;
    }
    const snap = await collectStatus(control, state);
    if (flags.json) {
      this.log(
        JSON.stringify({
          control,
          ...(state ? { mode: state.mode, dataDir: state.dataDir, embedded: state.embeddedParts } : {}),
          nodes: snap.rows,
          totals: totalsOf(snap.rows),
          ...(snap.error ? { error: snap.error } : {}),
        }),
      );
    } else {
      if (state) this.log(`cluster in ${state.dataDir} (${state.mode}${state.embeddedParts.length ? `; ${state.embeddedParts.join(', ')}` : ''})`);
      this.log(`control ${control}`);
      if (snap.rows.length > 0) for (const line of formatTable(snap.rows)) this.log(line);
    }
    if (snap.error) fail(this, snap.error, 1);
  }
}
