// `pushctl up --feed sim|replay:FILE[,FILE…]` and the replay flags: parsed,
// and the files read through before anything starts, so a malformed row or a
// missing file fails `up` at once (naming file and line) and the user sees
// what will be replayed and what is skipped.
import { resolve } from 'node:path';
import { Flags } from '@oclif/core';
import type { ReplayConfig } from '../../system/common/config.ts';
import { scanReplayFile, summaryLine, type ReplayFileSummary } from '../../system/feed/replay-source.ts';

export const REPLAY_FLAGS = {
  feed: Flags.string({
    description: 'market data: sim (the simulator) or replay:FILE[,FILE…] (Binance trades/aggTrades/klines CSV from data.binance.vision, .jsonl stream-frame captures; .gz too)',
    default: 'sim',
  }),
  'replay-speed': Flags.custom<number>({
    description: 'replay pace: 1 is the original timing, N is N times faster',
    parse: async (v) => {
      const n = Number(v);
      if (!(n > 0 && n <= 1_000_000)) throw new Error(`--replay-speed ${v}: a number above 0 (1 = the original pace), at most 1000000`);
      return n;
    },
  })(),
  'replay-loop': Flags.boolean({ description: 'start each replayed file over when it ends', default: false }),
  'replay-symbol': Flags.string({ description: 'symbol of replayed CSV files whose name carries none (Binance names them BTCUSDT-aggTrades-2024-01-01.csv)' }),
};

export interface ReplayFlagValues {
  feed: string;
  'replay-speed'?: number | undefined;
  'replay-loop': boolean;
  'replay-symbol'?: string | undefined;
}

/** The replay config the flags ask for; undefined for the simulator. Throws on a bad combination. */
export function parseFeedFlags(f: ReplayFlagValues, cwd = process.cwd()): ReplayConfig | undefined {
  if (f.feed === 'sim') {
    const stray: string[] = (['replay-speed', 'replay-symbol'] as const).filter((k) => f[k] !== undefined);
    if (f['replay-loop']) stray.push('replay-loop');
    if (stray.length > 0) throw new Error(`${stray.map((k) => `--${k}`).join(', ')} only go with --feed replay:FILE`);
    return undefined;
  }
  if (!f.feed.startsWith('replay:')) throw new Error(`--feed ${f.feed}: expected sim or replay:FILE[,FILE…]`);
  const files = f.feed.slice('replay:'.length).split(',').map((x) => x.trim());
  if (files.some((x) => x === '')) throw new Error(`--feed ${f.feed}: name the file(s) to replay, e.g. replay:BTCUSDT-aggTrades-2024-01-01.csv`);
  return {
    files: files.map((x) => resolve(cwd, x)),
    speed: f['replay-speed'] ?? 1,
    loop: f['replay-loop'],
    ...(f['replay-symbol'] ? { symbol: f['replay-symbol'].toLowerCase() } : {}),
  };
}

/** Reads every file through; returns one summary line each (the feed reads them again when it starts). */
export async function checkReplayFiles(replay: ReplayConfig): Promise<{ summaries: ReplayFileSummary[]; lines: string[] }> {
  const summaries: ReplayFileSummary[] = [];
  for (const file of replay.files) summaries.push(await scanReplayFile(file, replay.symbol ? { symbol: replay.symbol } : {}));
  return { summaries, lines: summaries.map((s) => `replay ${summaryLine(s, replay.speed)}${replay.loop ? ', looped' : ''}`) };
}
