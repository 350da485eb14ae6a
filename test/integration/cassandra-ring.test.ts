// `pushctl up --history cassandra --cassandra-nodes 2`: a two-node ring of
// real Cassandra (from Maven Central's jars), the keyspace with replication
// factor 2, reads and writes at consistency ONE. kill -9 of one node's JVM:
// /api/v3/klines keeps answering from the cold tier with every candle, and a
// write at ONE still succeeds. Slow (each node takes about a minute): one
// test, bounded by the up timeout.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import cassandra from 'cassandra-driver';
import { CassandraKlineStore } from '../../system/history/cassandra-store.ts';
import { toRow } from '../../system/history/kline.ts';
import { makeKlines, expected } from '../helpers/klines.ts';
import { waitFor } from '../helpers/cluster.ts';
import { upDetached, type UpCluster } from '../helpers/engine-cluster.ts';

const H = 3600_000;

/** The JVM pid a node's launcher printed (scripts/cassandra/start.ts's ready line). */
function jvmPid(c: UpCluster, id: string): { pid: number; rssMb: number } {
  const line = readFileSync(join(c.dataDir, 'logs', `${id}.log`), 'utf8').split('\n').find((l) => l.includes('"ready":true'));
  if (!line) throw new Error(`${id} printed no ready line`);
  const j = JSON.parse(line) as { pid: number; rssMb: number };
  return j;
}

const rssMb = (pid: number) => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024);

describe('pushctl up --history cassandra --cassandra-nodes 2', () => {
  let c: UpCluster;
  let store: CassandraKlineStore | undefined;
  let cql: InstanceType<typeof cassandra.Client> | undefined;

  before(async () => {
    c = await upDetached(
      [
        '--history', 'cassandra', '--cassandra-nodes', '2', '--cassandra-heap-mb', '384',
        '--cassandra-replication', 'SimpleStrategy:2', '--cassandra-read-cl', 'ONE', '--cassandra-write-cl', 'ONE',
        '--gateways', '1', '--servers', '1', '--symbols', '2', '--timeout', '420',
      ],
      480_000,
    );
  });
  after(async () => {
    // A driver still reconnecting to the killed node may take long to shut down: bounded.
    const bounded = (p: Promise<unknown> | undefined) => Promise.race([p?.catch(() => {}), new Promise((r) => setTimeout(r, 10_000).unref())]);
    await bounded(store?.close());
    await bounded(cql?.shutdown());
    await c?.down();
  });

  test('a ring of two, RF 2; one node killed: history answers from the other at CL ONE, writes at ONE go on', async () => {
    const points = String(c.json.cassandra).split(',');
    assert.equal(points.length, 2, 'the servers get both contact points');
    const jvms = ['cassandra-1', 'cassandra-2'].map((id) => jvmPid(c, id));
    console.log(`# Cassandra RSS per node (384 MB heap): ${jvms.map((j) => `${rssMb(j.pid)} MB`).join(', ')}`);

    cql = new cassandra.Client({ contactPoints: points, localDataCenter: 'datacenter1' });
    await cql.connect();
    // Both nodes in one ring: they start at once, so gossip may take a few seconds more to join them.
    await waitFor(async () => (await cql!.execute('SELECT peer FROM system.peers_v2')).rowLength === 1, 180_000, 'the coordinator sees its one peer');
    // The server created the keyspace with the configured replication.
    await waitFor(async () => (await cql!.execute(`SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = 'market_push'`)).rowLength === 1, 60_000, 'the keyspace');
    const repl = (await cql.execute(`SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = 'market_push'`)).first().replication as Record<string, string>;
    assert.equal(repl.class, 'org.apache.cassandra.locator.SimpleStrategy');
    assert.equal(repl.replication_factor, '2');

    // Candles a month old (the cold tier only), written at ALL so both replicas hold them.
    store = new CassandraKlineStore({ contactPoints: points.join(','), writeConsistency: 'ALL', readConsistency: 'ONE' });
    const first = Math.floor((Date.now() - 40 * 24 * H) / H) * H;
    const all = makeKlines('BTCUSDT', '1h', first, H, 48);
    await store.put(all);

    const gw = (c.json.gateways[0] as { http: string }).http;
    const q = { startTime: first, endTime: first + 47 * H, limit: 100 };
    const want = JSON.parse(JSON.stringify(expected(all, q).map(toRow)));
    const ask = async () => {
      const r = await fetch(`${gw}/api/v3/klines?symbol=BTCUSDT&interval=1h&startTime=${q.startTime}&endTime=${q.endTime}&limit=${q.limit}`, { signal: AbortSignal.timeout(20_000) });
      return { status: r.status, tiers: r.headers.get('x-mp-tiers') ?? '', degraded: r.headers.get('x-mp-degraded') ?? '', rows: (await r.json()) as unknown };
    };
    const before = await ask();
    assert.equal(before.status, 200);
    assert.equal(before.tiers, 'cassandra');
    assert.deepEqual(before.rows, want);

    // kill -9 of node 1's JVM: the first contact point, the node every client met first.
    process.kill(jvms[0]!.pid, 'SIGKILL');
    console.log('# killed cassandra-1 (kill -9 of its JVM)');
    for (let i = 0; i < 8; i++) {
      const r = await ask();
      assert.equal(r.status, 200, `answer ${i} with a node down: ${JSON.stringify(r).slice(0, 300)}`);
      assert.equal(r.degraded, '', 'nothing degraded: RF 2 at CL ONE needs one replica');
      assert.equal(r.tiers, 'cassandra');
      assert.deepEqual(r.rows, want, `answer ${i}: every candle`);
    }
    // Writes at ONE go on (the dead replica gets a hint).
    const more = makeKlines('ETHUSDT', '1h', first, H, 5);
    const one = new CassandraKlineStore({ contactPoints: points[1]!, writeConsistency: 'ONE', readConsistency: 'ONE' });
    try {
      await one.put(more);
      const back = await one.query({ symbol: 'ETHUSDT', interval: '1h', from: first, to: first + 10 * H, limit: 10, order: 'asc' });
      assert.equal(back.length, 5, 'written and read back at ONE with a node down');
      // At ALL the same write must fail: the test can tell a down node from a live one.
      const strict = new CassandraKlineStore({ contactPoints: points[1]!, writeConsistency: 'ALL' });
      try {
        await assert.rejects(strict.put(makeKlines('ETHUSDT', '1h', first + 10 * H, H, 1)), /consistency (level )?ALL/i);
      } finally {
        await strict.close();
      }
    } finally {
      await one.close();
    }
  });
});
