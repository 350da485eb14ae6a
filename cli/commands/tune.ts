import { Command, Flags } from '@oclif/core';
import { fail } from '../lib/fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../lib/data-dir.ts';
import { runQuiet, Shell } from '../lib/chaos/shell.ts';
import { readHostFacts } from '../lib/host-checks.ts';
import { applyTune, planTune, readTuneInputs, readTuneRecord, tuneRecordPath, undoTune } from '../lib/host-tune.ts';
import { PORT_SPAN } from '../lib/port-plan.ts';
import { defaults } from '../../system/common/config.ts';
import { rmSync } from 'node:fs';

export default class Tune extends Command {
  static override summary = 'Apply the kernel settings `pushctl doctor` asks for; --undo puts the old values back.';

  static override description = `Raises net.core.somaxconn and tcp_max_syn_backlog, turns on tcp_tw_reuse, reserves the port plan inside the ephemeral range (ip_local_reserved_ports), switches to BBR with fq when the kernel has it, and raises fs.nr_open / fs.file-max for --connections. Only keys that fall short are changed.

Every key's old value is recorded in <data-dir>/tune.json before it is written; \`pushctl tune --undo\` writes them back and removes the record. Tuning twice keeps the first old value. Sysctls are host-wide: they stay after pushctl exits, until --undo (or a reboot).

--netns NAME tunes a network namespace instead of the host: only the keys the kernel keeps per namespace (net.core.somaxconn, net.ipv4.*), recorded in <data-dir>/tune-netns-NAME.json; host-wide keys are listed as skipped. The open-file limit itself is not a sysctl: see the fix \`pushctl doctor\` prints.`;

  static override examples = ['<%= config.bin %> tune --dry-run', '<%= config.bin %> tune', '<%= config.bin %> tune --undo', '<%= config.bin %> tune --netns gw-test'];

  static override flags = {
    'dry-run': Flags.boolean({ description: 'print the sysctl commands instead of running them', default: false }),
    undo: Flags.boolean({ description: 'put back the values recorded by an earlier tune', default: false }),
    netns: Flags.string({ description: 'tune this network namespace (per-namespace keys only) instead of the host' }),
    connections: Flags.integer({ description: 'client connections this host should hold', default: defaults.gateway().maxConnections, min: 1 }),
    'port-base': Flags.integer({ description: 'first port of the port plan (pushctl up --port-base)', default: 7100, min: 1, max: 65535 - PORT_SPAN + 1 }),
    'data-dir': Flags.string({ description: DATA_DIR_HELP }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Tune);
    const dataDir = resolveDataDir(flags['data-dir']);
    const dryRun = flags['dry-run'];
    const netns = flags.netns;
    const target = netns ? { netns } : {};
    const where = netns ? `network namespace ${netns}` : 'this host';
    try {
      if (netns !== undefined && !/^[\w.-]+$/.test(netns)) throw new Error(`--netns "${netns}" is not a namespace name`);
      if (!dryRun && process.getuid?.() !== 0) throw new Error('writing sysctls needs root; --dry-run prints the commands');
      const nsExists = netns === undefined || runQuiet(['ip', 'netns', 'list'], { tolerate: true }).split('\n').some((l) => l.split(' ')[0] === netns);
      const shell = new Shell({ dryRun, print: (l) => this.log(l) });
      if (flags.undo) {
        const rec = readTuneRecord(dataDir, netns);
        if (!rec) return this.log(`tune: nothing to undo for ${where} (no ${tuneRecordPath(dataDir, netns)})`);
        if (!nsExists) {
          // The namespace is gone, and its settings with it.
          if (!dryRun) rmSync(tuneRecordPath(dataDir, netns), { force: true });
          return this.log(`tune: ${where} no longer exists; its settings went with it (record removed)`);
        }
        const { restored, failed } = undoTune(shell, dataDir, target);
        if (failed.length > 0) fail(this, `could not restore ${failed.join('; ')}; the record stays in ${tuneRecordPath(dataDir, netns)}`, 1);
        if (!dryRun) this.log(`tune: restored ${restored.map((r) => `${r.key}=${r.value}`).join(', ')} on ${where}`);
        return;
      }
      if (!nsExists) throw new Error(`no network namespace "${netns}" (ip netns list)`);
      const plan = planTune(readTuneInputs(target), { connections: flags.connections, portBase: flags['port-base'], portSpan: PORT_SPAN }, {
        ...(netns ? { netns } : {}),
        bbrLoadable: readHostFacts({ netem: false }).bbrLoadable,
      });
      for (const s of plan.skipped) this.log(`# skipped ${s.key} ${s.from} → ${s.to}: host-wide, not set inside a namespace`);
      if (plan.changes.length === 0) return this.log(`tune: nothing to change on ${where}`);
      for (const c of plan.changes) this.log(`# ${c.key}: ${c.from} → ${c.to} (${c.why})`);
      applyTune(shell, dataDir, plan, target);
      if (!dryRun) this.log(`tune: ${plan.changes.length} setting${plan.changes.length > 1 ? 's' : ''} changed on ${where}; undo with \`pushctl tune --undo${netns ? ` --netns ${netns}` : ''}\` (record: ${tuneRecordPath(dataDir, netns)})`);
    } catch (err) {
      if ((err as { oclif?: unknown }).oclif) throw err;
      fail(this, (err as Error).message, 1);
    }
  }
}
