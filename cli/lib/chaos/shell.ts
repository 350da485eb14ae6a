// Runs the system commands chaos needs (ip, tc, nft, iptables), or with
// --dry-run prints each one instead, so a user can see and audit exactly what
// would be done to the machine.
import { spawnSync } from 'node:child_process';

export interface RunOptions {
  /** stdin (nft -f -) */
  input?: string;
  /** An expected failure (e.g. deleting something already gone): no throw. */
  tolerate?: boolean;
}

export class Shell {
  readonly dryRun: boolean;
  readonly printed: string[] = [];
  readonly #print: (line: string) => void;

  constructor(opts: { dryRun?: boolean; print?: (line: string) => void } = {}) {
    this.dryRun = opts.dryRun ?? false;
    this.#print = opts.print ?? ((l) => process.stdout.write(l + '\n'));
  }

  /** Returns stdout; in dry-run mode prints the command and returns ''. */
  run(argv: string[], opts: RunOptions = {}): string {
    if (this.dryRun) {
      const line = argv.map(quote).join(' ') + (opts.input ? ` <<'EOF'\n${opts.input.trimEnd()}\nEOF` : '');
      this.printed.push(line);
      this.#print(line);
      return '';
    }
    return runQuiet(argv, opts);
  }
}

/** Runs for real, also in dry-run mode: only for read-only queries. */
export function runQuiet(argv: string[], opts: RunOptions = {}): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { input: opts.input, encoding: 'utf8', timeout: 15_000 });
  if (r.error || r.status !== 0) {
    if (opts.tolerate) return '';
    const why = r.error ? r.error.message : (r.stderr || r.stdout).trim() || `exit ${r.status}`;
    throw new Error(`${argv.map(quote).join(' ')}: ${why}`);
  }
  return r.stdout;
}

export function commandExists(name: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const r = spawnSync('test', ['-x', `${dir}/${name}`]);
    if (r.status === 0) return true;
  }
  return false;
}

const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
