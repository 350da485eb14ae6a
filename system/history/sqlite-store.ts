// The embedded history store (`pushctl up` without Cassandra): Node's
// built-in node:sqlite, one table keyed by (symbol, interval, open time).
// It stands in for the Cassandra tier; it is not meant for a cluster.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { klineFromRow, type Kline, type KlineStore, type RangeQuery, type StoredKlineRow } from './kline.ts';

interface Row extends StoredKlineRow {
  symbol: string;
  interval: string;
}

export class SqliteKlineStore implements KlineStore {
  readonly name: string;
  #db: DatabaseSync;
  #insert: StatementSync;
  #asc: StatementSync;
  #desc: StatementSync;

  /** `path` is a file, or ':memory:'. */
  constructor(path: string, name = 'embedded') {
    this.name = name;
    this.#db = new DatabaseSync(path);
    // Several servers of one `pushctl up` may share the file: wait for each other's locks.
    this.#db.exec(`PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
      CREATE TABLE IF NOT EXISTS klines (
        symbol TEXT NOT NULL, interval TEXT NOT NULL, open_time INTEGER NOT NULL, close_time INTEGER NOT NULL,
        open TEXT, high TEXT, low TEXT, close TEXT, volume TEXT, quote_volume TEXT, trades INTEGER,
        taker_buy_base TEXT, taker_buy_quote TEXT,
        PRIMARY KEY (symbol, interval, open_time)) WITHOUT ROWID;`);
    this.#insert = this.#db.prepare(
      'INSERT OR REPLACE INTO klines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const sel = 'SELECT * FROM klines WHERE symbol = ? AND interval = ? AND open_time >= ? AND open_time <= ? ORDER BY open_time';
    this.#asc = this.#db.prepare(`${sel} ASC LIMIT ?`);
    this.#desc = this.#db.prepare(`${sel} DESC LIMIT ?`);
  }

  async put(klines: readonly Kline[]): Promise<void> {
    this.#db.exec('BEGIN');
    try {
      for (const k of klines) {
        this.#insert.run(k.symbol, k.interval, k.openTime, k.closeTime, k.open, k.high, k.low, k.close, k.volume, k.quoteVolume, k.trades, k.takerBuyBase, k.takerBuyQuote);
      }
      this.#db.exec('COMMIT');
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  async query(q: RangeQuery): Promise<Kline[]> {
    if (q.limit <= 0) return [];
    const stmt = q.order === 'asc' ? this.#asc : this.#desc;
    const from = Math.max(q.from, Number.MIN_SAFE_INTEGER);
    const to = Math.min(q.to, Number.MAX_SAFE_INTEGER);
    const rows = stmt.all(q.symbol.toUpperCase(), q.interval, from, to, q.limit) as unknown as Row[];
    return rows.map((r) => klineFromRow(r, r.symbol, r.interval));
  }

  async symbols(): Promise<string[]> {
    return (this.#db.prepare('SELECT DISTINCT symbol FROM klines').all() as Array<{ symbol: string }>).map((r) => r.symbol);
  }

  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
  }
}
