// The open-file limit (RLIMIT_NOFILE) a role runs with: every client
// connection is a file descriptor, so a gateway whose soft limit is below its
// hard limit refuses connections it could have held. Node has no setrlimit,
// but Node's own startup (PlatformInit in src/node.cc) already raises the
// soft limit to the hard one; where that did not happen (a runtime built
// without it, a limit lowered after start) the role asks util-linux `prlimit`
// to set its own pid's soft limit to the hard one. Raising the soft limit up
// to the hard one needs no privilege.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface FdLimit {
  soft: number;
  /** Infinity for "unlimited". */
  hard: number;
}

/** "Max open files" of /proc/<pid>/limits (Linux); undefined elsewhere. */
export function readFdLimit(pid: number | 'self' = 'self'): FdLimit | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/limits`, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!m) return undefined;
  const num = (s: string) => (s === 'unlimited' ? Infinity : Number(s));
  return { soft: num(m[1]!), hard: num(m[2]!) };
}

export interface FdLimitResult extends FdLimit {
  /** The soft limit found before anything was done here. */
  before: number;
  /** 'already': soft was at hard (Node's startup raised it); 'prlimit': raised here; 'failed': still below. */
  how: 'already' | 'prlimit' | 'failed' | 'unknown';
  error?: string;
}

/** Raises this process's soft RLIMIT_NOFILE to its hard limit when it is lower. */
export function raiseFdLimit(): FdLimitResult {
  const start = readFdLimit();
  if (!start) return { soft: NaN, hard: NaN, before: NaN, how: 'unknown', error: 'no /proc/self/limits (not Linux)' };
  if (start.soft >= start.hard) return { ...start, before: start.soft, how: 'already' };
  const hard = start.hard === Infinity ? 'unlimited' : String(start.hard);
  const r = spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${hard}:${hard}`], { encoding: 'utf8', timeout: 5_000 });
  const after = readFdLimit() ?? start;
  if (after.soft >= after.hard) return { ...after, before: start.soft, how: 'prlimit' };
  const why = r.error ? r.error.message : (r.stderr || `exit ${r.status}`).trim();
  return { ...after, before: start.soft, how: 'failed', error: `prlimit: ${why} (install util-linux, or start the role with \`ulimit -n ${hard}\`)` };
}

/** Raises the limit and says so in the role's log (warn when it stays below the hard limit). */
export function raiseFdLimitAndLog(log: { info(m: string, f?: object): void; warn(m: string, f?: object): void }): FdLimitResult {
  const r = raiseFdLimit();
  const fields = { soft: fmt(r.soft), hard: fmt(r.hard), before: fmt(r.before), how: r.how, ...(r.error ? { error: r.error } : {}) };
  if (r.how === 'failed' || r.how === 'unknown') log.warn('open files limit', fields);
  else log.info('open files limit', fields);
  return r;
}

const fmt = (n: number) => (n === Infinity ? 'unlimited' : n);
