import { spawn } from 'node:child_process';
import { Args, Command, Flags } from '@oclif/core';
import { fail } from '../../lib/fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../../lib/data-dir.ts';
import { BACKEND_CHOICES, type BackendChoice } from '../../lib/chaos/plan.ts';
import { resolveProfile } from '../../lib/chaos/profile.ts';
import { applyProfile, clientPorts, recoverStale, reportLines } from '../../lib/chaos/session.ts';
import { readChaosState } from '../../lib/chaos/state.ts';

export default class ChaosExec extends Command {
  static override summary = 'Run a command in a fresh namespace behind a weak-network profile, then undo it.';

  static override description = `The namespace is joined to the host by a veth pair with the profile on that link; everything is undone when the command ends, and its exit code is pushctl's.

Inside, the cluster's router, control and gateway ports (and every --port) answer at 127.0.0.1 as on the host, through the shaped link; the host end is also in $PUSHCTL_CHAOS_HOST. Needs root.`;

  static override examples = [
    '<%= config.bin %> chaos exec devtools-slow-3g -- node my-client.js',
    '<%= config.bin %> chaos exec loss-10pct --port 8080 -- curl http://127.0.0.1:8080/',
  ];

  static override strict = false;

  static override args = { profile: Args.string({ description: 'profile name in netem/ or a path to a YAML file', required: true }) };

  static override flags = {
    backend: Flags.string({ description: 'which backend realises the profile', options: [...BACKEND_CHOICES], default: 'auto' }),
    port: Flags.integer({ description: 'a loopback port to make reachable inside (repeatable)', multiple: true }),
    'dry-run': Flags.boolean({ description: 'print every command instead of running it', default: false }),
    quiet: Flags.boolean({ description: 'print nothing but the command\'s own output', default: false }),
    'data-dir': Flags.string({ description: DATA_DIR_HELP }),
  };

  async run(): Promise<void> {
    const dash = this.argv.indexOf('--');
    if (dash < 0 || dash === this.argv.length - 1) fail(this, 'usage: pushctl chaos exec <profile> [flags] -- CMD [ARGS…]', 2);
    const cmd = this.argv.slice(dash + 1);
    this.argv = this.argv.slice(0, dash);
    const { args, flags } = await this.parse(ChaosExec);
    const dataDir = resolveDataDir(flags['data-dir']);
    const say = (l: string) => {
      if (!flags.quiet) process.stderr.write(l + '\n');
    };
    let code = 1;
    try {
      if (!flags['dry-run']) await recoverStale(dataDir, say);
      const ports = [...(flags.port ?? [])];
      for (const p of clientPorts(dataDir)) if (!ports.includes(p)) ports.push(p);
      const active = await applyProfile({
        dataDir,
        profile: resolveProfile(args.profile),
        target: 'exec',
        backend: flags.backend as BackendChoice,
        dryRun: flags['dry-run'],
        ports,
        print: flags['dry-run'] ? (l) => this.log(l) : say,
      });
      for (const n of active.caps.notes) say(`note: ${n}`);
      for (const l of reportLines(active.plan.report)) say(l);
      if (flags['dry-run']) {
        this.log(['ip', 'netns', 'exec', active.link?.netns ?? 'mpchaos-<id>', ...cmd].join(' '));
        return;
      }
      const netns = active.link!.netns;
      const child = spawn('ip', ['netns', 'exec', netns, ...cmd], {
        stdio: 'inherit',
        env: { ...process.env, PUSHCTL_CHAOS_HOST: active.link!.hostAddr, PUSHCTL_CHAOS_NETNS: netns },
      });
      const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
      process.on('SIGINT', forward('SIGINT'));
      process.on('SIGTERM', forward('SIGTERM'));
      code = await new Promise<number>((resolve) => {
        child.once('error', (err) => {
          say(`pushctl: ${err.message}`);
          resolve(127);
        });
        child.once('exit', (c, sig) => resolve(c ?? (sig ? 128 + 15 : 1)));
      });
      for (const l of await active.revert()) say(`  ${l}`);
      if (readChaosState(dataDir).sessions.some((s) => s.id === active.session.id)) {
        process.stderr.write(`pushctl: session ${active.session.id} could not be undone completely; \`pushctl chaos off\` retries it\n`);
        if (code === 0) code = 1;
      }
    } catch (err) {
      fail(this, (err as Error).message, 1);
    }
    process.exit(code);
  }
}
