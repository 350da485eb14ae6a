// Reading replay files: lines streamed from disk (gzip too), the CSV's kind
// and symbol settled from its name, header or columns, each row parsed
// (replay-parse.ts) with its line number, skips counted by reason. scanReplay
// reads a file once through before anything is published, so a malformed row
// fails the start (naming file and line) and the symbol list is known up front.
import { createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import {
  csvKindOf, csvNameInfo, isCsvHeader, isSkip, parseCsvRow, parseJsonlLine, rowError,
  type CsvContext, type ReplayEvent,
} from './replay-parse.ts';

export interface ReplayFileOptions {
  /** The symbol of CSV files whose name does not carry one (Binance's do: BTCUSDT-aggTrades-2024-01-01.csv). */
  symbol?: string;
}

export type ReplayFormat = 'csv' | 'jsonl';

export interface ReplayFileSummary {
  path: string;
  format: ReplayFormat;
  /** CSV only: trades, aggTrades or klines_<interval>. */
  kind?: string;
  events: number;
  /** Lines not replayed, by reason (headers and blank lines are not counted). */
  skipped: Record<string, number>;
  symbols: string[];
  /** Original times of the first and last timed event (ms). */
  firstMs?: number;
  lastMs?: number;
}

export function replayFormat(path: string): ReplayFormat {
  const name = path.toLowerCase().replace(/\.gz$/, '');
  if (name.endsWith('.csv')) return 'csv';
  if (name.endsWith('.jsonl') || name.endsWith('.ndjson') || name.endsWith('.json')) return 'jsonl';
  throw new Error(`${path}: unknown replay file type: expected .csv (Binance's trades, aggTrades or klines files) or .jsonl (stream frames), optionally .gz`);
}

async function* fileLines(path: string): AsyncGenerator<string> {
  try {
    if (!statSync(path).isFile()) throw new Error('not a regular file');
  } catch (err) {
    throw new Error(`replay file ${path}: ${(err as Error).message}`);
  }
  const raw = createReadStream(path);
  const input = path.toLowerCase().endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
  const rl = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of rl) yield line;
  } finally {
    rl.close();
    raw.destroy();
  }
}

/** An event with its line, its time carried forward from the previous timed one when it has none. */
export interface ReplayRow {
  event: ReplayEvent;
  line: number;
}

/**
 * Every event of a file, in file order. Throws `FILE:LINE: why` on a
 * malformed row; calls onSkip for a well-formed row that is not replayed.
 */
export interface ReadHooks {
  onSkip?: (reason: string, line: number) => void;
  /** A CSV file's kind and symbol, once settled. */
  onCsv?: (ctx: CsvContext) => void;
}

export async function* readReplayFile(path: string, opts: ReplayFileOptions = {}, hooks: ReadHooks = {}): AsyncGenerator<ReplayRow> {
  const onSkip = hooks.onSkip ?? (() => {});
  const format = replayFormat(path);
  const name = csvNameInfo(path);
  let csv: CsvContext | undefined;
  let lineNo = 0;
  let lastTime: number | undefined;
  // Trades and aggregates of one symbol would both go to md.<sym>.trade: the first kind seen is replayed.
  const tradeKinds = new Map<string, string>();
  for await (const line of fileLines(path)) {
    lineNo++;
    if (line.trim() === '') continue;
    let event: ReplayEvent;
    try {
      if (format === 'jsonl') {
        const r = parseJsonlLine(line);
        if (r === undefined) continue;
        if (isSkip(r)) {
          onSkip(r.skip, lineNo);
          continue;
        }
        event = r;
        if (event.tradeKind) {
          const first = tradeKinds.get(event.symbol);
          if (first === undefined) tradeKinds.set(event.symbol, event.tradeKind);
          else if (first !== event.tradeKind) {
            onSkip(`${event.tradeKind} of a symbol whose ${first}s are replayed (both would be its @trade)`, lineNo);
            continue;
          }
        }
      } else {
        if (!csv) {
          const header = isCsvHeader(line);
          csv = csvContext(line, header, name, opts);
          hooks.onCsv?.(csv);
          if (header) continue;
        }
        event = parseCsvRow(line, csv);
      }
    } catch (err) {
      throw rowError(path, lineNo, err);
    }
    if (event.timeMs === undefined) event.timeMs = lastTime;
    else lastTime = event.timeMs;
    yield { event, line: lineNo };
  }
}

function csvContext(line: string, header: boolean, name: ReturnType<typeof csvNameInfo>, opts: ReplayFileOptions): CsvContext {
  const fromRow = csvKindOf(line.split(','), header);
  const kind = name.kind ?? fromRow;
  if (!kind) throw new Error(`cannot tell whether this is a trades, aggTrades or klines file: name it as Binance does (SYMBOL-aggTrades-2024-01-01.csv) or give it Binance's header row`);
  if (name.kind && fromRow && header && fromRow !== name.kind) throw new Error(`the file name says ${name.kind} but the header row is a ${fromRow} header`);
  const symbol = opts.symbol?.toLowerCase() ?? name.symbol;
  if (!symbol) throw new Error(`a CSV file carries no symbol: name it as Binance does (BTCUSDT-${kind}-2024-01-01.csv) or pass --replay-symbol`);
  if (kind === 'klines' && !name.interval) throw new Error('a klines file needs its interval in the file name, as Binance names them (BTCUSDT-1m-2024-01-01.csv)');
  return { kind, symbol, ...(name.interval ? { interval: name.interval } : {}) };
}

/** Reads a file through: what it holds, or the first malformed row's error. */
export async function scanReplayFile(path: string, opts: ReplayFileOptions = {}): Promise<ReplayFileSummary> {
  const s: ReplayFileSummary = { path, format: replayFormat(path), events: 0, skipped: {}, symbols: [] };
  const symbols = new Set<string>();
  const hooks: ReadHooks = {
    onSkip: (reason) => (s.skipped[reason] = (s.skipped[reason] ?? 0) + 1),
    onCsv: (ctx) => (s.kind = ctx.kind === 'klines' ? `kline_${ctx.interval}` : ctx.kind),
  };
  for await (const { event } of readReplayFile(path, opts, hooks)) {
    s.events++;
    symbols.add(event.symbol);
    if (event.timeMs !== undefined) {
      s.firstMs ??= event.timeMs;
      s.lastMs = event.timeMs;
    }
  }
  if (s.events === 0) throw new Error(`${path}: no event to replay${Object.keys(s.skipped).length > 0 ? ` (skipped: ${skippedText(s.skipped)})` : ''}`);
  s.symbols = [...symbols].sort();
  return s;
}

export function skippedText(skipped: Record<string, number>): string {
  return Object.entries(skipped).map(([why, n]) => `${n} × ${why}`).join('; ');
}

/** One line about a scanned file, for logs and `pushctl up`. */
export function summaryLine(s: ReplayFileSummary, speed: number): string {
  const span = s.firstMs !== undefined && s.lastMs !== undefined ? s.lastMs - s.firstMs : 0;
  const skipped = Object.values(s.skipped).reduce((a, b) => a + b, 0);
  return `${s.path}: ${s.events} ${s.kind ?? 'stream'} events of ${s.symbols.map((x) => x.toUpperCase()).join(', ')} over ${(span / 1000).toFixed(1)} s (${(span / speed / 1000).toFixed(1)} s at ${speed}×)` +
    (skipped > 0 ? `; ${skipped} lines skipped: ${skippedText(s.skipped)}` : '');
}
