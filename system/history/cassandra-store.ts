// The Cassandra (or Scylla) tier: every closed candle, forever. Partitioned
// by (symbol, interval, bucket) so a partition holds at most 1,440 candles
// (a day of 1m, 60 days of 1h), clustered by open time; writes are idempotent
// upserts (the same primary key overwrites). A small index table lists the
// buckets that exist, so a range query visits only partitions with data.
// Each row also carries `row`, the Binance row's JSON bytes as a blob: an
// answer reads that one cell per candle and copies it, with no per-field
// decoding or re-serialising (rows written before it existed have it null and
// are serialised from their columns, as before).
import cassandra from 'cassandra-driver';
import { DEFAULT_CONSISTENCY, DEFAULT_REPLICATION, parseConsistency, parseReplication, replicationCql, type ReplicationSpec } from './cassandra-config.ts';
import { BINANCE_INTERVAL_MS, klineFromRow, type Kline, type KlineStore, type RangeQuery, type StoredKlineRow } from './kline.ts';
import { rowBytes } from './rows.ts';

const { Client, types, concurrent } = cassandra;
type CqlClient = InstanceType<typeof Client>;
const Long = types.Long;

export const ROWS_PER_BUCKET = 1440;
const PROBE_BUCKETS = 2;

export function bucketOf(interval: string, openTime: number): number {
  return Math.floor(openTime / ((BINANCE_INTERVAL_MS[interval] ?? 60_000) * ROWS_PER_BUCKET));
}

export interface CassandraStoreOptions {
  /** host:port[,host:port…] */
  contactPoints: string;
  keyspace?: string;
  localDataCenter?: string;
  replicationFactor?: number;
  /** Keyspace replication: SimpleStrategy:RF or NetworkTopologyStrategy:DC=RF,… (wins over replicationFactor). */
  replication?: string;
  /** Consistency levels (ONE, LOCAL_ONE, QUORUM, …); default LOCAL_ONE. */
  readConsistency?: string;
  writeConsistency?: string;
  concurrency?: number;
  requestTimeoutMs?: number;
}

/** The columns a Kline is built from. */
const COLUMNS = 'open_time, close_time, open, high, low, close, volume, quote_volume, trades, taker_buy_base, taker_buy_quote';

/** At most how many candles of the query's range bucket b can hold. */
function slotsIn(q: RangeQuery, b: number): number {
  const ms = BINANCE_INTERVAL_MS[q.interval] ?? 60_000;
  const start = Math.max(q.from, b * ms * ROWS_PER_BUCKET);
  const end = Math.min(q.to, (b + 1) * ms * ROWS_PER_BUCKET - 1);
  return end < start ? 0 : Math.floor((end - start) / ms) + 1;
}

const num = (v: unknown): number => (v instanceof Long ? v.toNumber() : Number(v));

export class CassandraKlineStore implements KlineStore {
  readonly name = 'cassandra';
  readonly client: CqlClient;
  readonly keyspace: string;
  #opts: CassandraStoreOptions;
  #knownBuckets = new Set<string>();
  readonly replication: ReplicationSpec;

  constructor(opts: CassandraStoreOptions) {
    this.#opts = opts;
    this.keyspace = opts.keyspace ?? 'market_push';
    this.replication = parseReplication(opts.replication ?? (opts.replicationFactor ? `SimpleStrategy:${opts.replicationFactor}` : DEFAULT_REPLICATION));
    // Reads and writes each run under their own profile: their consistency levels differ.
    const read = parseConsistency(opts.readConsistency ?? DEFAULT_CONSISTENCY, 'read');
    const write = parseConsistency(opts.writeConsistency ?? DEFAULT_CONSISTENCY, 'write');
    this.client = new Client({
      profiles: [new cassandra.ExecutionProfile('read', { consistency: read }), new cassandra.ExecutionProfile('write', { consistency: write })],
      // Every statement is a read or an upsert of a fixed primary key: safe to retry on another
      // replica when a node dies mid-request (the driver retries only idempotent statements).
      queryOptions: { isIdempotent: true },
      contactPoints: opts.contactPoints.split(','),
      // Blobs as views into the response frame, not copies: a row blob is copied once, into the answer.
      encoding: { copyBuffer: false },
      localDataCenter: opts.localDataCenter ?? 'datacenter1',
      socketOptions: { readTimeout: opts.requestTimeoutMs ?? 10_000, connectTimeout: 5_000 },
      policies: {
        reconnection: new cassandra.policies.reconnection.ConstantReconnectionPolicy(1_000),
      },
    });
  }

  #ready?: Promise<void>;

  /** Connects and creates the keyspace and tables when missing; retried by the next call after a failure. */
  async connect(): Promise<this> {
    this.#ready ??= this.#setup().catch((err: unknown) => {
      this.#ready = undefined;
      throw err;
    });
    await this.#ready;
    return this;
  }

  async #setup(): Promise<void> {
    await this.client.connect();
    await this.client.execute(`CREATE KEYSPACE IF NOT EXISTS ${this.keyspace} WITH replication = ${replicationCql(this.replication)}`);
    await this.client.execute(`CREATE TABLE IF NOT EXISTS ${this.keyspace}.klines (
      symbol text, interval text, bucket bigint, open_time bigint, close_time bigint,
      open text, high text, low text, close text, volume text, quote_volume text, trades bigint,
      taker_buy_base text, taker_buy_quote text, row blob,
      PRIMARY KEY ((symbol, interval, bucket), open_time)) WITH CLUSTERING ORDER BY (open_time ASC)`);
    // A table made before the row blob existed gains the column (its old rows keep it null).
    const cols = await this.client.execute(
      'SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?',
      [this.keyspace, 'klines'],
      { prepare: true },
    );
    if (!cols.rows.some((r) => r.column_name === 'row')) await this.client.execute(`ALTER TABLE ${this.keyspace}.klines ADD row blob`);
    await this.client.execute(`CREATE TABLE IF NOT EXISTS ${this.keyspace}.kline_buckets (
      symbol text, interval text, bucket bigint, PRIMARY KEY ((symbol, interval), bucket))`);
  }

  async put(klines: readonly Kline[]): Promise<void> {
    if (klines.length === 0) return;
    await this.connect();
    const ks = this.keyspace;
    const rows: unknown[][] = [];
    const buckets: unknown[][] = [];
    for (const k of klines) {
      const b = bucketOf(k.interval, k.openTime);
      rows.push([
        k.symbol, k.interval, Long.fromNumber(b), Long.fromNumber(k.openTime), Long.fromNumber(k.closeTime),
        k.open, k.high, k.low, k.close, k.volume, k.quoteVolume, Long.fromNumber(k.trades), k.takerBuyBase, k.takerBuyQuote, rowBytes(k),
      ]);
      const bk = `${k.symbol}:${k.interval}:${b}`;
      if (!this.#knownBuckets.has(bk)) buckets.push([k.symbol, k.interval, Long.fromNumber(b), bk]);
    }
    const opts = { concurrencyLevel: this.#opts.concurrency ?? 64, raiseOnFirstError: true, executionProfile: 'write' };
    await concurrent.executeConcurrent(
      this.client,
      `INSERT INTO ${ks}.klines (symbol, interval, bucket, open_time, close_time, open, high, low, close, volume, quote_volume, trades, taker_buy_base, taker_buy_quote, row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      rows,
      opts,
    );
    if (buckets.length > 0) {
      const unique = new Map(buckets.map((b) => [b[3] as string, b.slice(0, 3)]));
      await concurrent.executeConcurrent(this.client, `INSERT INTO ${ks}.kline_buckets (symbol, interval, bucket) VALUES (?, ?, ?)`, [...unique.values()], opts);
      for (const k of unique.keys()) this.#knownBuckets.add(k);
    }
  }

  async query(q: RangeQuery): Promise<Kline[]> {
    const symbol = q.symbol.toUpperCase();
    return (await this.#select(q, COLUMNS)).map((r) => klineFromRow(r as unknown as StoredKlineRow, symbol, q.interval, num));
  }

  /** The rows' JSON bytes as stored (one blob cell per candle), byte-identical to JSON.stringify(toRow(k)). */
  async queryRows(q: RangeQuery): Promise<Buffer[]> {
    const rows = await this.#select(q, 'row');
    if (rows.every((r) => r.row)) return rows.map((r) => r.row as Buffer);
    // Some rows predate the blob column: serialise them all from their columns (the old path).
    return (await this.#select(q, `${COLUMNS}, row`)).map(
      (r) =>
        (r.row as Buffer | null) ??
        Buffer.from(JSON.stringify([num(r.open_time), r.open, r.high, r.low, r.close, r.volume, num(r.close_time), r.quote_volume, num(r.trades), r.taker_buy_base, r.taker_buy_quote, '0'])),
    );
  }

  async #select(q: RangeQuery, columns: string): Promise<Array<Record<string, unknown>>> {
    if (q.limit <= 0 || q.to < q.from) return [];
    await this.connect();
    const symbol = q.symbol.toUpperCase();
    const ks = this.keyspace;
    const lo = bucketOf(q.interval, Math.max(q.from, 0));
    const hi = bucketOf(q.interval, Math.min(q.to, Number.MAX_SAFE_INTEGER));
    const asc = q.order === 'asc';
    const dir = asc ? 'ASC' : 'DESC';
    // A chart query usually needs the one or two buckets at the near end of its range: read those
    // directly (one partition each), and list the series' buckets only when more are needed.
    const probes: number[] = [];
    for (let i = 0; i < PROBE_BUCKETS && lo + i <= hi; i++) probes.push(asc ? lo + i : hi - i);
    const listed = async (): Promise<unknown[]> => {
      const rlo = asc ? lo + probes.length : lo;
      const rhi = asc ? hi : hi - probes.length;
      if (rlo > rhi) return [];
      const res = await this.#read(
        `SELECT bucket FROM ${ks}.kline_buckets WHERE symbol = ? AND interval = ? AND bucket >= ? AND bucket <= ? ORDER BY bucket ${dir}`,
        [symbol, q.interval, Long.fromNumber(rlo), Long.fromNumber(rhi)],
        { prepare: true, executionProfile: 'read' },
      );
      return res.rows.map((r) => r.bucket);
    };
    const from = Long.fromNumber(Math.max(q.from, 0));
    const to = Long.fromNumber(Math.min(q.to, Number.MAX_SAFE_INTEGER));
    // Prepared, one partition, only the columns asked for, and a page as large as the LIMIT
    // (≤ 1000 rows): one round trip per partition, never a second page.
    const partition = async (bucket: unknown, limit: number) =>
      (
        await this.#read(
          `SELECT ${columns} FROM ${ks}.klines WHERE symbol = ? AND interval = ? AND bucket = ? AND open_time >= ? AND open_time <= ? ORDER BY open_time ${dir} LIMIT ?`,
          [symbol, q.interval, bucket, from, to, limit],
          { prepare: true, fetchSize: Math.max(limit, 1), executionProfile: 'read' },
        )
      ).rows as unknown as Array<Record<string, unknown>>;
    let buckets: unknown[] = probes.map((b) => Long.fromNumber(b));
    // When the first bucket cannot hold `limit` candles of the range, the second is needed anyway:
    // read both at once (one round trip of latency instead of two; the extra rows are dropped).
    const ahead = probes.length === 2 && slotsIn(q, probes[0]!) < q.limit ? partition(buckets[1], q.limit) : undefined;
    ahead?.catch(() => {}); // awaited below; a failure of the first read must not leave it unhandled
    const out: Array<Record<string, unknown>> = [];
    for (let i = 0; ; i++) {
      if (out.length >= q.limit) break;
      if (i === probes.length) buckets = buckets.concat(await listed());
      if (i >= buckets.length) break;
      const left = q.limit - out.length;
      const rows = i === 1 && ahead ? await ahead : await partition(buckets[i], left);
      for (const r of rows) out.push(r);
    }
    if (out.length > q.limit) out.length = q.limit;
    return out;
  }

  /**
   * A read under the read profile, tried once more when the connection itself failed (a node
   * dying mid-request): the driver then knows the node is down and picks another replica.
   */
  async #read(query: string, params: unknown[], options: { prepare: boolean; executionProfile: string; fetchSize?: number }) {
    try {
      return await this.client.execute(query, params, options);
    } catch (err) {
      if (err instanceof cassandra.errors.ResponseError) throw err; // the server answered: not a connection failure
      return this.client.execute(query, params, options);
    }
  }

  async symbols(): Promise<string[]> {
    await this.connect();
    // DISTINCT over the partition key of the small bucket index.
    const res = await this.client.execute(`SELECT DISTINCT symbol, interval FROM ${this.keyspace}.kline_buckets`, [], { executionProfile: 'read' });
    return [...new Set(res.rows.map((r) => r.symbol as string))];
  }

  async close(): Promise<void> {
    await this.client.shutdown();
  }
}
