import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Args, Command, Flags } from '@oclif/core';
import { fail } from '../../lib/fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../../lib/data-dir.ts';
import { loadClusterSecrets } from '../../lib/cluster-secrets.ts';
import { readState } from '../../lib/state-file.ts';
import { importCsv, seriesFromFileName } from '../../../system/history/csv-import.ts';
import { CassandraKlineStore } from '../../../system/history/cassandra-store.ts';
import { RedisKlineStore } from '../../../system/history/redis-store.ts';
import { SqliteKlineStore } from '../../../system/history/sqlite-store.ts';
import { DEFAULT_REDIS_HORIZON_MS } from '../../../system/history/service.ts';
import type { KlineStore } from '../../../system/history/kline.ts';

export default class HistoryImport extends Command {
  static override summary = 'Load klines from a Binance CSV dump into the history tiers.';

  static override description = `Takes a kline file as data.binance.vision publishes them (e.g. BTCUSDT-1m-2024-01.csv).

The cold tier is --cassandra host:port, else the embedded node:sqlite file of the data dir's cluster. Candles younger than the Redis horizon also go to Redis (--redis URL, else the running cluster's Redis). Upserts: importing twice is harmless. Servers serve their memory horizon (24 h) from memory: import older history, or restart servers to warm from Redis.`;

  static override examples = [
    '<%= config.bin %> history import BTCUSDT-1m-2024-01.csv',
    '<%= config.bin %> history import dump.csv --symbol ETHUSDT --interval 1h',
  ];

  static override args = { file: Args.string({ description: 'the CSV file', required: true }) };

  static override flags = {
    symbol: Flags.string({ description: 'symbol (default: from the file name)' }),
    interval: Flags.string({ description: 'interval (default: from the file name)' }),
    cassandra: Flags.string({ description: 'Cassandra/Scylla contact points host:port[,…]' }),
    redis: Flags.string({ description: 'Redis URL (default: the running cluster’s)' }),
    'no-redis': Flags.boolean({ description: 'do not write Redis', default: false }),
    'data-dir': Flags.string({ description: DATA_DIR_HELP }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(HistoryImport);
    const fromName = seriesFromFileName(args.file);
    const symbol = flags.symbol ?? fromName?.symbol;
    const interval = flags.interval ?? fromName?.interval;
    if (!symbol || !interval) fail(this, 'cannot tell the symbol and interval from the file name; pass --symbol and --interval', 2);
    let totalBytes: number;
    try {
      totalBytes = statSync(args.file).size;
    } catch (err) {
      fail(this, `cannot read ${args.file}: ${(err as Error).message}`, 2);
    }
    const dataDir = resolveDataDir(flags['data-dir']);
    const stores: KlineStore[] = [];
    try {
      if (flags.cassandra) stores.push(await new CassandraKlineStore({ contactPoints: flags.cassandra }).connect());
      else stores.push(new SqliteKlineStore(join(dataDir, 'history.sqlite')));
      const state = readState(dataDir);
      const redisUrl = flags['no-redis'] ? undefined : (flags.redis ?? state?.endpoints.redis);
      // The redis-server `pushctl up` started takes only the cluster's ACL user.
      const auth = !flags.redis && state?.binaries.redis ? loadClusterSecrets(dataDir).redis : undefined;
      if (redisUrl) stores.push(await new RedisKlineStore({ url: redisUrl, horizonMs: DEFAULT_REDIS_HORIZON_MS, ...(auth ? { auth } : {}) }).connect());
    } catch (err) {
      await Promise.all(stores.map((s) => s.close()));
      fail(this, `cannot open the history stores: ${(err as Error).message}`, 1);
    }
    const tty = process.stderr.isTTY === true;
    const began = Date.now();
    let lastPrint = 0;
    const line = (rows: number, bytes: number) =>
      `pushctl: ${symbol} ${interval}: ${rows} klines (${totalBytes ? Math.round((bytes / totalBytes) * 100) : 100}%, ${Math.round(rows / Math.max(0.001, (Date.now() - began) / 1000))}/s) into ${stores.map((s) => s.name).join(' + ')}`;
    try {
      const done = await importCsv(args.file, { symbol, interval }, stores, (p) => {
        if (Date.now() - lastPrint < 250) return;
        lastPrint = Date.now();
        process.stderr.write(tty ? `\r${line(p.rows, p.bytes)}` : `${line(p.rows, p.bytes)}\n`);
      }, totalBytes);
      if (tty) process.stderr.write('\n');
      this.log(`imported ${done.rows} ${symbol} ${interval} klines${done.skipped ? ` (${done.skipped} lines skipped)` : ''} in ${((Date.now() - began) / 1000).toFixed(1)} s into ${stores.map((s) => s.name).join(' + ')}`);
    } catch (err) {
      fail(this, `import failed: ${(err as Error).message}`, 1);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  }
}
