import { Command, Flags } from '@oclif/core';
import { detectCapabilities } from '../../lib/chaos/kernel.ts';

export default class ChaosBackends extends Command {
  static override summary = 'Probe which chaos backends this machine supports.';

  static override description = `Probes in a scratch namespace (deleted at once) for root, network namespaces, tc netem, tc tbf, nft (numgen), iptables (statistic) and the proxy (always there), and says which backends remain.`;

  static override flags = { json: Flags.boolean({ description: 'print one JSON object', default: false }) };

  async run(): Promise<void> {
    const { flags } = await this.parse(ChaosBackends);
    const caps = detectCapabilities();
    if (flags.json) {
      this.log(JSON.stringify(caps));
      return;
    }
    const yes = (b: boolean) => (b ? 'yes' : 'no');
    this.log(`root ${yes(caps.root)} · namespaces ${yes(caps.netns)} · tc netem ${yes(caps.netem)} · tc tbf ${yes(caps.tbf)} · nft ${yes(caps.nft)} · iptables ${yes(caps.iptables)} · proxy yes`);
    const remaining = [caps.netem || caps.tbf ? 'tc' : '', caps.nft ? 'nft' : '', caps.iptables ? 'iptables' : '', 'proxy'].filter(Boolean);
    this.log(`backends available: ${remaining.join(', ')}`);
    for (const n of caps.notes) this.log(`note: ${n}`);
  }
}
