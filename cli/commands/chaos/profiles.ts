import { Command, Flags } from '@oclif/core';
import { fail } from '../../lib/fail.ts';
import { loadProfiles, PROFILE_DIR, summarize } from '../../lib/chaos/profile.ts';

export default class ChaosProfiles extends Command {
  static override summary = 'List the weak-network profiles in netem/, their numbers and sources.';

  static override description = `Delay is one way, per direction (a 400 ms RTT preset adds 200 ms each way); bandwidth down is towards the weak side.`;

  static override examples = ['<%= config.bin %> chaos profiles', '<%= config.bin %> chaos profiles --json'];

  static override flags = {
    json: Flags.boolean({ description: 'print one JSON array', default: false }),
    sources: Flags.boolean({ description: 'print each profile\'s source line', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ChaosProfiles);
    let profiles;
    try {
      profiles = loadProfiles();
    } catch (err) {
      fail(this, (err as Error).message, 1);
    }
    if (flags.json) {
      this.log(JSON.stringify(profiles, null, 2));
      return;
    }
    const w = Math.max(...profiles.map((p) => p.name.length));
    this.log(`profiles in ${PROFILE_DIR}:`);
    for (const p of profiles) {
      this.log(`  ${p.name.padEnd(w)}  ${summarize(p)}`);
      if (flags.sources) this.log(`  ${''.padEnd(w)}  source: ${p.source}`);
    }
  }
}
