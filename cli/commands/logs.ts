import { Args, Command, Flags } from '@oclif/core';
import { join } from 'node:path';
import { fail } from '../lib/fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../lib/data-dir.ts';
import { readState } from '../lib/state-file.ts';
import { formatLogLine, logFiles, mergeByTime, readLines, selectLogs, tailLines } from '../lib/log-format.ts';

export default class Logs extends Command {
  static override summary = "Print a cluster's role logs; -f follows them.";

  static override description = `Reads DATA_DIR/logs/<id>.log, where \`pushctl up\` has every process write: the roles' structured JSON lines (pino: level, time, role, node, msg and fields such as conn), and what nats-server, redis-server and Cassandra print. ROLE is a process id (gateway-2, nats) or a kind (gateway: every gateway). Lines of several files are interleaved by time.

On a terminal each JSON line is shown as "HH:MM:SS.mmm LEVEL node message key=value…"; --json prints the lines as they are (for jq).`;

  static override examples = [
    '<%= config.bin %> logs',
    '<%= config.bin %> logs gateway -f',
    '<%= config.bin %> logs server-1 -n 100 --json',
    '<%= config.bin %> logs nats --data-dir /tmp/c1',
  ];

  static override args = { role: Args.string({ description: 'a process id (gateway-1, nats) or a role kind (gateway); default: every process' }) };

  static override flags = {
    follow: Flags.boolean({ char: 'f', description: 'keep printing new lines until Ctrl-C', default: false }),
    lines: Flags.integer({ char: 'n', description: 'lines to print from the end of each log first', default: 20, min: 0 }),
    json: Flags.boolean({ description: 'print the raw lines (JSON for the roles) instead of formatting them', default: false }),
    'data-dir': Flags.string({ description: DATA_DIR_HELP }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Logs);
    const dataDir = readState(resolveDataDir(flags['data-dir']))?.dataDir ?? resolveDataDir(flags['data-dir']);
    const logDir = join(dataDir, 'logs');
    const all = logFiles(logDir);
    if (all.size === 0) fail(this, `no logs in ${logDir}: start a cluster with \`pushctl up\` (or pass its --data-dir)`, 1);
    const chosen = selectLogs(all, args.role);
    if (typeof chosen === 'string') fail(this, chosen, 2);
    const color = !flags.json && process.stdout.isTTY === true && !process.env.NO_COLOR;
    const several = chosen.size > 1;
    const print = (id: string, line: string) => {
      // A role's readiness line (for the supervisor) repeats its "ready" log line: shown with --json only.
      if (!flags.json && line.startsWith('{"ready":true')) return;
      const text = flags.json ? line : formatLogLine(line, { color });
      // Lines that do not name their process (nats-server's, stack traces) get its id when several are shown.
      const named = flags.json || !several || text.includes(id) ? text : `[${id}] ${text}`;
      process.stdout.write(named + '\n');
    };

    const offsets = new Map<string, number>();
    const first = [...chosen].map(([id, file]) => {
      const t = tailLines(file, flags.lines);
      offsets.set(id, t.offset);
      return { id, lines: t.lines };
    });
    for (const { id, line } of mergeByTime(first)) print(id, line);
    if (!flags.follow) return;

    // Follow: poll the files (and pick up processes that start later) until Ctrl-C.
    process.stderr.write(`pushctl: following ${[...chosen.keys()].join(', ')} in ${logDir} (Ctrl-C to stop)\n`);
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const now = selectLogs(logFiles(logDir), args.role);
        if (typeof now === 'string') return;
        const fresh = [...now].map(([id, file]) => {
          const r = readLines(file, offsets.get(id) ?? 0);
          offsets.set(id, r.offset);
          return { id, lines: r.lines };
        });
        for (const { id, line } of mergeByTime(fresh)) print(id, line);
      }, 250);
      const stop = () => {
        clearInterval(timer);
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  }
}
