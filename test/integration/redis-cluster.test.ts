// `pushctl up --redis-cluster 3`: a real Redis Cluster (3 masters, 3
// replicas) joined with redis-cli, the kline tier on ioredis' Cluster client,
// one symbol's series on one slot (hash tags). kill -9 of the master that
// holds a symbol: /api/v3/klines keeps answering — saying `x-mp-degraded:
// redis` while it reads around Redis — and once the replica has taken over
// answers from Redis again with every candle.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from 'ioredis';
import { closeRedisClient } from '../../system/history/redis-client.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RedisKlineStore } from '../../system/history/redis-store.ts';
import { redisAdminCredential } from '../../cli/lib/redis-cluster.ts';
import { makeKlines, expected } from '../helpers/klines.ts';
import { toRow } from '../../system/history/kline.ts';
import { waitFor } from '../helpers/cluster.ts';
import { sleep, upDetached, type UpCluster } from '../helpers/engine-cluster.ts';

const H = 3600_000;

describe('pushctl up --redis-cluster 3', () => {
  let c: UpCluster;
  let admin: Cluster | undefined;
  let store: RedisKlineStore | undefined;

  before(async () => {
    c = await upDetached(['--redis-cluster', '3', '--gateways', '1', '--servers', '1', '--symbols', '2']);
  });
  after(async () => {
    await store?.close();
    if (admin) closeRedisClient(admin);
    await c?.down();
  });

  test('6 nodes in one cluster; a symbol on one slot; kill -9 of its master: history answers throughout and from the promoted replica after', async () => {
    const url = String(c.json.redis);
    const seeds = url.replace('redis://', '').split(',');
    assert.equal(seeds.length, 6, '3 masters + 3 replicas, every node a seed');
    for (let i = 1; i <= 6; i++) assert.ok(c.pid(`redis-${i}`) > 0, `redis-${i} runs as its own process`);

    // The operator's view (the admin user pushctl derives for creating the cluster).
    const a = redisAdminCredential(c.secrets);
    admin = new Cluster(seeds.map((s) => ({ host: s.split(':')[0]!, port: Number(s.split(':')[1]) })), { redisOptions: { username: a.user, password: a.password } });
    admin.on('error', () => {});
    assert.match(String(await admin.cluster('INFO')), /cluster_state:ok/);
    const roles = String(await admin.cluster('NODES')).trim().split('\n').map((l) => l.split(' ')[2]!);
    assert.equal(roles.filter((r) => r.includes('master')).length, 3);
    assert.equal(roles.filter((r) => r.includes('slave')).length, 3);

    // One symbol's series share a slot (hash tag), different symbols may not.
    const slot = async (k: string) => Number(await admin!.cluster('KEYSLOT', k));
    const btc = await slot(RedisKlineStore.key('BTCUSDT', '1h'));
    assert.equal(await slot(RedisKlineStore.key('BTCUSDT', '1m')), btc);
    assert.equal(await slot(RedisKlineStore.key('btcusdt', '1d')), btc);

    // Candles 2–3 days old: past the memory tier, inside Redis's horizon. Written as the role user through the Cluster client.
    store = await new RedisKlineStore({ url, auth: c.secrets.redis, horizonMs: 15 * 24 * H }).connect();
    const first = Math.floor((Date.now() - 3 * 24 * H) / H) * H;
    const all = makeKlines('BTCUSDT', '1h', first, H, 24);
    await store.put(all);
    assert.equal((await store.query({ symbol: 'BTCUSDT', interval: '1h', from: first, to: first + 24 * H, limit: 100, order: 'asc' })).length, 24);
    assert.ok((await store.seriesKeys()).some((s) => s.symbol === 'BTCUSDT' && s.interval === '1h'), 'SCAN walks every master');

    const gw = (c.json.gateways[0] as { http: string }).http;
    const q = { startTime: first, endTime: first + 23 * H, limit: 100 };
    const ask = async () => {
      const r = await fetch(`${gw}/api/v3/klines?symbol=BTCUSDT&interval=1h&startTime=${q.startTime}&endTime=${q.endTime}&limit=${q.limit}`, { signal: AbortSignal.timeout(10_000) });
      return { status: r.status, tiers: r.headers.get('x-mp-tiers') ?? '', degraded: r.headers.get('x-mp-degraded') ?? '', rows: (await r.json()) as unknown[] };
    };
    const want = expected(all, q).map(toRow);
    const ok = await ask();
    assert.equal(ok.status, 200, JSON.stringify(ok.rows).slice(0, 300));
    assert.equal(ok.tiers, 'redis');
    assert.deepEqual(ok.rows, JSON.parse(JSON.stringify(want)));

    // kill -9 the master that holds BTCUSDT's slot.
    const nodes = String(await admin.cluster('NODES')).trim().split('\n').map((l) => l.split(' '));
    const owner = nodes.find((n) => n[2]!.includes('master') && n.slice(8).some((r) => {
      const [lo, hi] = r.split('-').map(Number);
      return btc >= lo! && btc <= (hi ?? lo)!;
    }))!;
    const ownerPort = Number(owner[1]!.split('@')[0]!.split(':')[1]);
    const victim = seeds.findIndex((s) => Number(s.split(':')[1]) === ownerPort);
    assert.ok(victim >= 0, `the slot's master ${owner[1]} is one of ours`);
    process.kill(c.pid(`redis-${victim + 1}`), 'SIGKILL');
    console.log(`# killed redis-${victim + 1} (master of slot ${btc})`);

    // Every answer meanwhile is 200: from Redis, or read around it and saying so.
    const seen: string[] = [];
    let back = false;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const r = await ask();
      assert.equal(r.status, 200, `history answers while the master is down (${JSON.stringify(r)})`);
      seen.push(`${r.tiers}${r.degraded ? ` (degraded ${r.degraded})` : ''}`);
      if (r.degraded) assert.ok(!r.tiers.split(',').includes('redis'), 'a degraded answer does not claim Redis');
      if (!r.degraded && r.tiers === 'redis') {
        assert.deepEqual(r.rows, JSON.parse(JSON.stringify(want)), 'the promoted replica has every candle');
        if (seen.some((s) => s.includes('degraded'))) {
          back = true;
          break;
        }
      }
      await sleep(250);
    }
    console.log(`# answers after the kill: ${[...new Set(seen)].map((s) => `${s} ×${seen.filter((x) => x === s).length}`).join('; ')}`);
    // Either the failover was invisible, or answers came back to Redis after the degraded ones.
    const lastIsRedis = seen.at(-1) === 'redis';
    if (!(back || lastIsRedis)) {
      const view = await admin.cluster('NODES').catch((e: Error) => e.message);
      assert.fail(`answers do not come from Redis again after the failover; the cluster:\n${view}\nserver log:\n${readFileSync(join(c.dataDir, 'logs', 'server-1.log'), 'utf8').slice(-3000)}`);
    }
    await waitFor(async () => /cluster_state:ok/.test(String(await admin!.cluster('INFO').catch(() => ''))), 30_000, 'the cluster is ok again');
  });
});
