// A logger that never blocks the event loop: lines go to an async file
// stream (or stderr); when the stream is backed up past a cap, lines are
// dropped and counted instead of awaited.
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: object): void;
  info(msg: string, fields?: object): void;
  warn(msg: string, fields?: object): void;
  error(msg: string, fields?: object): void;
  readonly dropped: number;
  close(): Promise<void>;
}

export function createLogger(name: string, file?: string, level: Level = (process.env.PUSH_LOG_LEVEL as Level) || 'info'): Logger {
  let out: WriteStream | NodeJS.WriteStream;
  if (file) {
    mkdirSync(dirname(file), { recursive: true });
    out = createWriteStream(file, { flags: 'a' });
  } else {
    out = process.stderr;
  }
  const capBytes = 4 * 1024 * 1024;
  let dropped = 0;
  const min = ORDER[level] ?? 20;
  const write = (lvl: Level, msg: string, fields?: object) => {
    if (ORDER[lvl] < min) return;
    if (out.writableLength > capBytes) {
      dropped++;
      return;
    }
    const line = JSON.stringify({ t: new Date().toISOString(), lvl, name, msg, ...fields });
    out.write(line + '\n');
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    get dropped() {
      return dropped;
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (out === process.stderr) return resolve();
        (out as WriteStream).end(() => resolve());
      }),
  };
}
