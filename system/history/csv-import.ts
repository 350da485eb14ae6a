// Loads Binance's public kline dumps (data.binance.vision, e.g.
// BTCUSDT-1m-2024-01.csv: open_time,open,high,low,close,volume,close_time,
// quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore) into
// history stores, in batches, reporting progress. Newer dumps carry a header
// line and microsecond timestamps; both are handled.
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { isInterval, type Kline, type KlineStore } from './kline.ts';

/** SYMBOL and interval from a dump's file name, e.g. BTCUSDT-1m-2024-01.csv. */
export function seriesFromFileName(path: string): { symbol: string; interval: string } | undefined {
  const m = /^([A-Z0-9]{2,20})-(\d+[smhdwM])-/.exec(basename(path));
  return m && isInterval(m[2]!) ? { symbol: m[1]!, interval: m[2]! } : undefined;
}

const ms = (v: string): number => {
  const n = Number(v);
  return n > 1e14 ? Math.floor(n / 1000) : n; // microseconds in dumps from 2025 on
};

export function parseCsvLine(line: string, symbol: string, interval: string): Kline | undefined {
  const f = line.trim().split(',');
  if (f.length < 11 || !/^\d+$/.test(f[0]!)) return undefined; // header or blank
  return {
    symbol,
    interval,
    openTime: ms(f[0]!),
    open: f[1]!,
    high: f[2]!,
    low: f[3]!,
    close: f[4]!,
    volume: f[5]!,
    closeTime: ms(f[6]!),
    quoteVolume: f[7]!,
    trades: Number(f[8]),
    takerBuyBase: f[9]!,
    takerBuyQuote: f[10]!,
  };
}

export interface ImportProgress {
  rows: number;
  skipped: number;
  bytes: number;
  totalBytes: number;
}

export async function importCsv(
  path: string,
  series: { symbol: string; interval: string },
  stores: KlineStore[],
  onProgress: (p: ImportProgress) => void,
  totalBytes = 0,
  batchSize = 2_000,
): Promise<ImportProgress> {
  const stream = createReadStream(path);
  const p: ImportProgress = { rows: 0, skipped: 0, bytes: 0, totalBytes };
  stream.on('data', (c) => (p.bytes += c.length));
  let batch: Kline[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const b = batch;
    batch = [];
    await Promise.all(stores.map((s) => s.put(b)));
    p.rows += b.length;
    onProgress(p);
  };
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
    const k = parseCsvLine(line, series.symbol.toUpperCase(), series.interval);
    if (!k) {
      if (line.trim() !== '') p.skipped++;
      continue;
    }
    batch.push(k);
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  return p;
}
