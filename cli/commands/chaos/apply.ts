import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Args, Command, Flags } from '@oclif/core';
import { fail } from '../../lib/fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../../lib/data-dir.ts';
import { BACKEND_CHOICES, type BackendChoice } from '../../lib/chaos/plan.ts';
import { parseDuration, resolveProfile } from '../../lib/chaos/profile.ts';
import { applyProfile, clientPorts, recoverStale, reportLines } from '../../lib/chaos/session.ts';
import { readChaosState } from '../../lib/chaos/state.ts';

export default class ChaosApply extends Command {
  static override summary = 'Apply a weak-network profile until Ctrl-C or --duration, then undo it.';

  static override description = `Targets (--target):

clients: a network namespace joined to the host by a veth pair (10.200.N.0/30). The profile is put on that link (tc qdiscs on both ends, nft/iptables rules inside); the proxy adds what the kernel cannot. The cluster's router, control and gateway ports (and every --port) are reachable inside it at 127.0.0.1 as usual. Run clients in it with \`ip netns exec <netns> …\` (printed), or use \`chaos exec\`.

gateway, server, nats, redis, router, control, feed, a role id, or tcp:127.0.0.1:PORT: internal links. In a cluster started with \`pushctl up --isolate\`, the role's own veth is shaped: tc on both ends, nft inside its namespace, every link of the role (clients, other roles, NATS) in both directions, open connections included; the proxy (delay, jitter) only for connections made to it. Otherwise a proxy is put in front of the role's port: point the client side at the printed address. Connections already open are not affected (see docs/chaos.md).

--iface NAME shapes a host interface you name (egress, and ingress through an ifb device); never done without it.

--backend auto picks per field what this machine supports and prints which backend realised each field. Everything created is recorded in <data-dir>/chaos.json first and undone on exit, by \`chaos off\`, or by the next chaos command after a crash.`;

  static override examples = [
    '<%= config.bin %> chaos apply devtools-slow-3g --target clients',
    '<%= config.bin %> chaos apply flapping-partition --target gateway-1 --duration 2m',
    '<%= config.bin %> chaos apply comcast-gprs --target clients --dry-run',
  ];

  static override args = { profile: Args.string({ description: 'profile name in netem/ or a path to a YAML file', required: true }) };

  static override flags = {
    target: Flags.string({ description: 'clients | gateway | server | nats | redis | router | control | feed | ROLE-ID | tcp:127.0.0.1:PORT', default: 'clients' }),
    backend: Flags.string({ description: 'which backend realises the profile', options: [...BACKEND_CHOICES], default: 'auto' }),
    duration: Flags.string({ description: 'undo after this long (e.g. 30s, 5m); default: until Ctrl-C / SIGTERM / chaos off' }),
    'dry-run': Flags.boolean({ description: 'print every command instead of running it', default: false }),
    iface: Flags.string({ description: 'a host interface to shape (refused unless named here)' }),
    port: Flags.integer({ description: 'a loopback port to make reachable through the clients link (repeatable)', multiple: true }),
    detach: Flags.boolean({ description: 'hold the profile in a background pushctl (log in the data dir) and return once it is active', default: false }),
    'data-dir': Flags.string({ description: DATA_DIR_HELP }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(ChaosApply);
    const dataDir = resolveDataDir(flags['data-dir']);
    const print = (l: string) => this.log(l);
    let durationMs: number | undefined;
    if (flags.detach && !flags['dry-run']) return this.#detach(dataDir);
    try {
      if (!flags['dry-run']) await recoverStale(dataDir, print);
      if (flags.duration) durationMs = parseDuration(flags.duration, '--duration');
      const profile = resolveProfile(args.profile);
      const ports = [...(flags.port ?? [])];
      if (flags.target === 'clients' && !flags.iface) for (const p of clientPorts(dataDir)) if (!ports.includes(p)) ports.push(p);
      const active = await applyProfile({
        dataDir,
        profile,
        target: flags.target,
        backend: flags.backend as BackendChoice,
        ...(flags.iface ? { iface: flags.iface } : {}),
        dryRun: flags['dry-run'],
        ports,
        print,
      });
      for (const n of active.caps.notes) this.log(`note: ${n}`);
      this.log(`profile ${profile.name} on ${active.session.target}, per field:`);
      for (const l of reportLines(active.plan.report)) this.log(l);
      for (const r of active.isolated ?? [])
        this.log(`isolated ${r.id} (${r.addr}): down (towards it) on ${r.hubDev} in the hub namespace, up (from it) on ${r.dev} in ${r.netns}`);
      if (active.link) this.log(`namespace ${active.link.netns}: run clients with \`ip netns exec ${active.link.netns} CMD\` (host end ${active.link.hostAddr}, weak end ${active.link.peerAddr})`);
      for (const p of active.session.proxies) this.log(`proxy ${p.listen} → ${p.target}`);
      if (flags['dry-run']) return;
      if (active.plan.report.every((r) => r.backend === null)) {
        await active.revert();
        fail(this, `nothing of ${profile.name} can be realised on ${active.session.target} here (see above); nothing was left applied`, 1);
      }
      this.log(`chaos: session ${active.session.id} active${durationMs !== undefined ? ` for ${flags.duration}` : ''}; Ctrl-C or \`pushctl chaos off\` undoes it`);
      // Signal handlers do not keep Node running: a profile realised by the kernel alone (no proxy) needs this.
      const hold = setInterval(() => {}, 1 << 30);
      const why = await new Promise<string>((resolve) => {
        process.once('SIGINT', () => resolve('SIGINT'));
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGHUP', () => resolve('SIGHUP'));
        if (durationMs !== undefined) setTimeout(() => resolve(`${flags.duration} elapsed`), durationMs);
      });
      clearInterval(hold);
      // A second signal while undoing must not leave it half done.
      const ignore = () => process.stderr.write('pushctl: still undoing…\n');
      process.on('SIGINT', ignore);
      process.on('SIGTERM', ignore);
      this.log(`chaos: ${why}: undoing session ${active.session.id}`);
      for (const l of await active.revert()) this.log(`  ${l}`);
      if (readChaosState(dataDir).sessions.some((s) => s.id === active.session.id))
        fail(this, `session ${active.session.id} could not be undone completely; \`pushctl chaos off\` retries it`, 1);
      this.log('chaos: everything undone');
      process.exit(0);
    } catch (err) {
      if ((err as { oclif?: unknown }).oclif) throw err; // an exit already decided (fail above)
      fail(this, (err as Error).message, 1);
    }
  }

  /** The same command without --detach, in its own session, logging to the data dir; returns once it is active. */
  async #detach(dataDir: string): Promise<void> {
    mkdirSync(dataDir, { recursive: true });
    const log = join(dataDir, `chaos-apply-${Date.now()}.log`);
    const fd = openSync(log, 'a');
    const argv = this.argv.filter((a) => a !== '--detach');
    if (!argv.some((a) => a === '--data-dir' || a.startsWith('--data-dir='))) argv.push('--data-dir', dataDir);
    const child = spawn(process.execPath, [join(import.meta.dirname, '..', '..', '..', 'bin', 'run.js'), 'chaos', 'apply', ...argv], {
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    let exited: number | null | undefined;
    child.once('exit', (code) => (exited = code));
    const deadline = Date.now() + 60_000;
    let text = '';
    while (Date.now() < deadline) {
      text = readFileSync(log, 'utf8');
      if (/session \w+ active/.test(text) || exited !== undefined) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    process.stdout.write(text);
    if (exited !== undefined || !/session \w+ active/.test(text)) fail(this, `the background chaos apply did not become active (log ${log})`, 1);
    child.unref();
    this.log(`chaos: held by pid ${child.pid} (log ${log}); \`pushctl chaos off\` undoes it`);
  }
}
