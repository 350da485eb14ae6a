// Reading a cluster's role logs (DATA_DIR/logs/<id>.log, written by the
// roles' pino logger plus whatever the process printed) and printing them
// for a person: `HH:MM:SS.mmm LEVEL node message key=value …`. Lines that
// are not our JSON (nats-server, redis-server, readiness lines) pass through.
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { basename, join } from 'node:path';

const LEVEL_COLOR: Record<string, string> = { debug: '\x1b[90m', info: '\x1b[36m', warn: '\x1b[33m', error: '\x1b[31m', fatal: '\x1b[35m' };
const RESET = '\x1b[0m';
/** Fields every line carries: shown in the prefix, or left out. */
const FIXED = new Set(['level', 'time', 'role', 'node', 'pid', 'msg', 'hostname']);

const showValue = (v: unknown): string => {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return typeof v === 'string' && /[\s="]/.test(v) ? JSON.stringify(v) : s;
};

/** One log line for a terminal; `undefined` never (a line that is not ours comes back as it is). */
export function formatLogLine(line: string, o: { color: boolean }): string {
  if (!line.startsWith('{')) return line;
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (typeof j.msg !== 'string' || typeof j.level !== 'string') return line;
  const t = typeof j.time === 'string' && !Number.isNaN(Date.parse(j.time)) ? j.time.slice(11, 23) : '';
  const lvl = j.level.toUpperCase().padEnd(5);
  const level = o.color ? `${LEVEL_COLOR[j.level] ?? ''}${lvl}${RESET}` : lvl;
  const rest = Object.entries(j)
    .filter(([k]) => !FIXED.has(k))
    .map(([k, v]) => `${k}=${showValue(v)}`);
  return [t, level, String(j.node ?? ''), j.msg, ...rest].filter((x) => x !== '').join(' ');
}

/**
 * The time of a log line (ms), if it has one: the roles' JSON "time", or the
 * timestamps nats-server ("2026/12/03 13:13:51.910890") and redis-server
 * ("03 Dec 2026 13:13:51.966") print, both in local time.
 */
export function timeOf(line: string): number | undefined {
  const m =
    /"time":"([^"]+)"/.exec(line) ??
    /\b(\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}\.\d{3})\d*/.exec(line) ??
    /\b(\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2}\.\d{3})\b/.exec(line);
  if (!m) return undefined;
  const t = Date.parse(m[1]!);
  return Number.isNaN(t) ? undefined : t;
}

/** Log files in a cluster's log dir, by process id (gateway-1, nats, …). */
export function logFiles(logDir: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(logDir)) return out;
  for (const f of readdirSync(logDir).sort()) if (f.endsWith('.log')) out.set(basename(f, '.log'), join(logDir, f));
  return out;
}

/**
 * Which ids a ROLE argument names: an exact id (gateway-2), or a kind
 * (gateway: every gateway-N). A string when nothing matches, saying what does.
 */
export function selectLogs(files: Map<string, string>, role: string | undefined): Map<string, string> | string {
  if (!role) return files;
  const exact = files.get(role);
  if (exact) return new Map([[role, exact]]);
  const kind = new Map([...files].filter(([id]) => id.replace(/-\d+$/, '') === role));
  if (kind.size > 0) return kind;
  return `no log for "${role}"; there are: ${[...files.keys()].join(', ') || '(none)'}`;
}

/** Reads a file from `offset` up to its last complete line: the lines and the offset after them. */
export function readLines(file: string, offset: number): { lines: string[]; offset: number } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return { lines: [], offset };
  }
  try {
    const size = fstatSync(fd).size;
    if (size < offset) offset = 0; // truncated or replaced: start over
    if (size === offset) return { lines: [], offset };
    const buf = Buffer.alloc(size - offset);
    readSync(fd, buf, 0, buf.length, offset);
    const end = buf.lastIndexOf(0x0a);
    if (end < 0) return { lines: [], offset };
    return { lines: buf.subarray(0, end).toString('utf8').split('\n'), offset: offset + end + 1 };
  } finally {
    closeSync(fd);
  }
}

/** The last `n` lines of a file and the offset of its end (a follow starts there). */
export function tailLines(file: string, n: number): { lines: string[]; offset: number } {
  const all = readLines(file, 0);
  return { lines: n > 0 ? all.lines.slice(-n) : [], offset: all.offset };
}

/**
 * Interleaves several files' lines by time: a line without one (a stack
 * trace, nats-server's own format) keeps its place after the line before it.
 */
export function mergeByTime(perFile: Array<{ id: string; lines: string[] }>): Array<{ id: string; line: string }> {
  const tagged: Array<{ id: string; line: string; t: number; i: number }> = [];
  let i = 0;
  for (const f of perFile) {
    const times = f.lines.map(timeOf);
    // Lines before a file's first timed one (a readiness line) take that one's time.
    let last = times.find((t) => t !== undefined) ?? 0;
    f.lines.forEach((line, k) => {
      last = times[k] ?? last;
      tagged.push({ id: f.id, line, t: last, i: i++ });
    });
  }
  tagged.sort((a, b) => a.t - b.t || a.i - b.i);
  return tagged.map(({ id, line }) => ({ id, line }));
}
