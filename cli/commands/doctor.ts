import { Command, Flags } from '@oclif/core';
import { hostChecks, readHostFacts } from '../lib/host-checks.ts';
import { PORT_SPAN } from '../lib/port-plan.ts';
import { defaults } from '../../system/common/config.ts';

export default class Doctor extends Command {
  static override summary = 'Check what a gateway host needs: open files, backlog, ports, TIME-WAIT, BBR, netem, CPU quota.';

  static override description = `Reads this machine and prints OK or WARN for each check, with the fix:

  open-file limit   the hard RLIMIT_NOFILE (every role raises its soft limit to it at start) and fs.nr_open against --connections + 1024
  accept backlog    net.core.somaxconn and net.ipv4.tcp_max_syn_backlog (reconnect storms)
  ephemeral ports   net.ipv4.ip_local_port_range against the port plan (--port-base … +${PORT_SPAN - 1}), and its size
  TIME-WAIT reuse   net.ipv4.tcp_tw_reuse
  congestion        the congestion control in use and whether BBR is available
  netem             adds a netem qdisc to a veth in a throwaway network namespace, then removes the namespace (root)
  CPU quota         the cgroup's CPU quota, which pushctl up sizes roles from

\`pushctl tune\` applies the sysctl fixes (and undoes them). Exit code 0; with --strict, 1 when any check warns.`;

  static override examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --connections 350000 --json'];

  static override flags = {
    connections: Flags.integer({ description: 'client connections this host should hold', default: defaults.gateway().maxConnections, min: 1 }),
    'port-base': Flags.integer({ description: 'first port of the port plan (pushctl up --port-base)', default: 7100, min: 1, max: 65535 - PORT_SPAN + 1 }),
    netem: Flags.boolean({ description: 'try a netem qdisc in a throwaway namespace (--no-netem skips it)', default: true, allowNo: true }),
    json: Flags.boolean({ description: 'print the checks as JSON', default: false }),
    strict: Flags.boolean({ description: 'exit 1 when any check warns', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Doctor);
    const facts = readHostFacts({ netem: flags.netem });
    const checks = hostChecks(facts, { connections: flags.connections, portBase: flags['port-base'], portSpan: PORT_SPAN });
    const warns = checks.filter((c) => c.status === 'warn').length;
    if (flags.json) {
      this.log(JSON.stringify({ checks, warnings: warns, target: { connections: flags.connections, portBase: flags['port-base'], portSpan: PORT_SPAN } }, null, 2));
    } else {
      for (const c of checks) {
        this.log(`${c.status === 'ok' ? 'OK  ' : 'WARN'}  ${c.title}: ${c.detail}`);
        if (c.fix) this.log(`      fix: ${c.fix}`);
      }
      this.log(warns === 0 ? 'all checks passed' : `${warns} warning${warns > 1 ? 's' : ''}`);
    }
    if (flags.strict && warns > 0) this.exit(1);
  }
}
