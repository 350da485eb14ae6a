// Structured JSON logs through pino, one line per event:
//   {"level":"info","time":"…","role":"gateway","node":"gateway-1","pid":…,"msg":"…",…fields}
// Lines go out through an asynchronous destination (sonic-boom, sync:false):
// a write never waits for the disk. When the destination is backed up past a
// cap, lines are dropped and counted (`dropped`, and market_push_log_dropped_lines_total)
// instead of buffered without bound or awaited. `pushctl logs` reads and
// pretty-prints these files (cli/lib/log-format.ts).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger as PinoLogger } from 'pino';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error'];

export interface Logger {
  debug(msg: string, fields?: object): void;
  info(msg: string, fields?: object): void;
  warn(msg: string, fields?: object): void;
  error(msg: string, fields?: object): void;
  /** A logger whose every line also carries `bindings` (a connection or request id); shares this one's destination. */
  child(bindings: Record<string, unknown>): Logger;
  readonly dropped: number;
  close(): Promise<void>;
}

export interface LoggerOptions {
  /** The role kind (router, gateway, …); by default the node id without its "-N" suffix. */
  role?: string;
  /** Bytes the destination may hold before lines are dropped (default 4 MiB). */
  maxBufferBytes?: number;
}

/** gateway-1 → gateway; embedded → embedded. */
export const roleOfNode = (id: string): string => id.replace(/-\d+$/, '');

const levelOf = (v: string | undefined): Level => (LEVELS.includes(v as Level) ? (v as Level) : 'info');

export function createLogger(name: string, file?: string, level: Level = levelOf(process.env.PUSH_LOG_LEVEL), opts: LoggerOptions = {}): Logger {
  if (file) mkdirSync(dirname(file), { recursive: true });
  const dest = pino.destination({
    ...(file ? { dest: file, append: true } : { fd: 2 }),
    sync: false,
    maxLength: opts.maxBufferBytes ?? 4 * 1024 * 1024,
  });
  const counter = { dropped: 0 };
  dest.on('drop', () => counter.dropped++);
  // A failing disk must not crash the role: the lines are lost and counted.
  dest.on('error', () => counter.dropped++);
  const root = pino(
    {
      level: LEVELS.includes(level) ? level : 'info',
      base: { role: opts.role ?? roleOfNode(name), node: name, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= new Promise<void>((resolve) => {
      const done = () => resolve();
      // stderr stays open for whoever else writes to it: only flush it.
      if (!file) {
        try {
          dest.flush(done);
        } catch {
          resolve();
        }
        return;
      }
      dest.once('close', done);
      dest.once('error', done);
      try {
        dest.end();
      } catch {
        resolve();
      }
    }));
  return wrap(root, counter, close);
}

function wrap(p: PinoLogger, counter: { dropped: number }, close: () => Promise<void>): Logger {
  return {
    debug: (m, f) => (f ? p.debug(f, m) : p.debug(m)),
    info: (m, f) => (f ? p.info(f, m) : p.info(m)),
    warn: (m, f) => (f ? p.warn(f, m) : p.warn(m)),
    error: (m, f) => (f ? p.error(f, m) : p.error(m)),
    child: (bindings) => wrap(p.child(bindings), counter, close),
    get dropped() {
      return counter.dropped;
    },
    close,
  };
}
