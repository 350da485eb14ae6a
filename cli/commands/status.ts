import { trustClusterCert } from '../lib/cluster-tls.ts';
import { Command, Flags } from '@oclif/core';
import { fail } from '../lib/fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../lib/data-dir.ts';
import { operatorAuth } from '../lib/cluster-secrets.ts';
import { listenersOf, readState, type ClusterState } from '../lib/state-file.ts';
import { formatListeners, formatTable, restLines, totalsOf } from '../lib/status-view.ts';
import { collectStatus } from '../lib/topology.ts';
import { metricsSummary, prometheusFiles, scrapeTargets } from '../lib/scrape-targets.ts';

export default class Status extends Command {
  static override summary = "Show the cluster's topology and every node's health and load.";

  static override description = `For every node: role, address, health, connections, subscriptions, message rates, CPU and event-loop delay; with --json also every listener and its audience.

Finds control from --control, else from the cluster recorded in the data dir. Control needs the operator's admin token: read from --secrets FILE, else from the secrets file of the cluster recorded in the data dir.`;

  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json', '<%= config.bin %> status --control http://10.0.0.7:7190'];

  static override flags = {
    control: Flags.string({ description: 'push-control URL', exclusive: ['data-dir'] }),
    'data-dir': Flags.string({ description: DATA_DIR_HELP }),
    json: Flags.boolean({ description: 'print one JSON object', default: false }),
    secrets: Flags.string({ description: "the cluster's secrets file (default: the one `pushctl up` used for the data dir)" }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Status);
    let state: ClusterState | undefined;
    let control = flags.control;
    const dataDir = flags.control ? undefined : resolveDataDir(flags['data-dir']);
    if (dataDir) {
      trustClusterCert(dataDir); // health checks of a --tls cluster's routers and gateways
      state = readState(dataDir);
      if (!state) fail(this, `no cluster is recorded in ${dataDir}; start one with \`pushctl up\` or pass --control URL`, 1);
      control = state.endpoints.control;
    }
    let auth: Record<string, string>;
    try {
      auth = operatorAuth({ ...(dataDir ? { dataDir } : {}), ...(flags.secrets ? { secretsFile: flags.secrets } : {}), ...(state?.endpoints.secretsFile ? { recorded: state.endpoints.secretsFile } : {}) });
    } catch (err) {
      fail(this, (err as Error).message, 1);
    }
    const snap = await collectStatus(control!, auth, state);
    const metrics = state ? metricsSummary(scrapeTargets(state.endpoints), prometheusFiles(state.dataDir)) : undefined;
    if (flags.json) {
      this.log(
        JSON.stringify({
          control,
          ...(state ? { mode: state.mode, dataDir: state.dataDir, embedded: state.embeddedParts, auth: state.auth ?? null } : {}),
          ...(state ? { rest: state.endpoints.rest?.[0]?.http ?? null, restHosts: state.endpoints.rest ?? [] } : {}),
          nodes: snap.rows,
          ...(state ? { listeners: listenersOf(state.endpoints) } : {}),
          ...(metrics ? { metrics: metrics.json } : {}),
          totals: totalsOf(snap.rows),
          ...(snap.error ? { error: snap.error } : {}),
        }),
      );
    } else {
      if (state) this.log(`cluster in ${state.dataDir} (${state.mode}${state.embeddedParts.length ? `; ${state.embeddedParts.join(', ')}` : ''})`);
      if (state?.auth) this.log(`client auth ${state.auth.mode}${state.auth.jwksUrl ?? state.auth.jwksFile ? ` (${state.auth.jwksUrl ?? state.auth.jwksFile})` : ''}`);
      this.log(`control ${control}`);
      if (state) for (const line of restLines(state.endpoints, state.mode === 'embedded')) this.log(line);
      if (snap.rows.length > 0) for (const line of formatTable(snap.rows)) this.log(line);
      if (state) for (const line of formatListeners(listenersOf(state.endpoints))) this.log(line);
      if (metrics) for (const line of metrics.lines) this.log(line);
    }
    if (snap.error) fail(this, snap.error, 1);
  }
}
