// A hole in a topic's sequence on the bus (what a NATS restart or a slow
// consumer drop does), published by the test itself so it is exact: the
// push-server sees it, and every client — WebSocket JSON and protobuf, TCP,
// gRPC — gets the events before it, then a resync notice, then the events
// after it; depth subscribers get no diff between the notice and a fresh
// snapshot. The events around the hole arrive in one burst, so they share
// upstream batches (where a notice could overtake the events before it).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { EventSchema } from '../../proto/gen/market_pb.js';
import { adminJson, clusterHeaders, startCluster, waitFor, type TestCluster } from '../helpers/cluster.ts';
import { GrpcClient, TcpClient, WsJsonClient, WsProtobufClient, type ProtoClient } from '../helpers/proto-clients.ts';
import { auditTopic } from '../helpers/gap-audit.ts';

const EPOCH = 7n;
const trade = (seq: number) =>
  toBinary(EventSchema, create(EventSchema, { topic: 'btcusdt@trade', seq: BigInt(seq), epoch: EPOCH, publishTimeUs: BigInt(Date.now() * 1000), payload: { case: 'trade', value: { symbol: 'btcusdt', tradeId: BigInt(seq), price: '1', qty: '1', tradeTime: BigInt(Date.now()) } } }));
const diff = (seq: number) =>
  toBinary(EventSchema, create(EventSchema, { topic: 'btcusdt@depth', seq: BigInt(seq), epoch: EPOCH, publishTimeUs: BigInt(Date.now() * 1000), payload: { case: 'depthUpdate', value: { symbol: 'btcusdt', firstUpdateId: BigInt(seq), finalUpdateId: BigInt(seq) } } }));
const snapshot = (seq: number) =>
  toBinary(EventSchema, create(EventSchema, { topic: 'btcusdt@depth', seq: BigInt(seq), epoch: EPOCH, publishTimeUs: BigInt(Date.now() * 1000), payload: { case: 'depthSnapshot', value: { symbol: 'btcusdt', lastUpdateId: BigInt(seq) } } }));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('a hole in a topic\'s sequence on the bus', () => {
  let cluster: TestCluster;
  let nc: NatsConnection;
  const closers: Array<() => void> = [];

  before(async () => {
    cluster = await startCluster({ servers: 1, gateways: 1, feed: false });
    nc = await connect({ servers: cluster.nats.url });
    // This test is the feed (it publishes by hand): it registers as one, so gateways know the symbol.
    const beat = () =>
      fetch(`${cluster.routerAdminUrl}/v1/heartbeat`, {
        method: 'POST',
        headers: { ...clusterHeaders(), 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'feed-by-hand', role: 'feed', urls: { admin: 'http://127.0.0.1:9' }, meta: { symbols: ['btcusdt'] } }),
      }).then((r) => r.body?.cancel(), () => {});
    await beat();
    const timer = setInterval(() => void beat(), 500);
    closers.push(() => clearInterval(timer));
    await waitFor(async () => (await fetch(`${cluster.gateways[0]!.urls.http}/healthz`)).ok, 10_000, 'the gateway knows the symbol');
  });
  after(async () => {
    for (const c of closers) c();
    await nc?.close();
    await cluster?.stop();
  });

  test('is announced to every client in order, right before the first event after it; depth restarts from a fresh snapshot', async () => {
    const gw = cluster.gateways[0]!.urls;
    const clients: ProtoClient[] = [new WsJsonClient(gw.ws!), new WsProtobufClient(gw.ws!), new TcpClient(gw.tcp!), new GrpcClient(gw.grpc!)];
    for (const c of clients) {
      closers.push(() => c.close());
      await c.open();
      c.send({ kind: 'subscribe', id: 1, topics: ['btcusdt@trade', 'btcusdt@depth'] });
      await c.waitFor(() => c.r.results.has(1), 5_000, 'subscribed');
    }
    await new Promise((r) => setTimeout(r, 500)); // the gateway's upstream subscription reaches the server
    // A book to start from, then one burst: diffs and trades with a hole (seq 41..44 never published).
    nc.publish('md.depthsnap.btcusdt', snapshot(0));
    await nc.flush();
    await Promise.all(clients.map((c) => c.waitFor(() => c.r.events.some((e) => e.snapshot), 5_000, 'first depth snapshot')));
    for (const s of [...range(1, 40), ...range(45, 60)]) {
      nc.publish('md.trade.btcusdt', trade(s));
      nc.publish('md.depth.btcusdt', diff(s));
    }
    await nc.flush();
    await new Promise((r) => setTimeout(r, 300));
    nc.publish('md.depthsnap.btcusdt', snapshot(60)); // the feed's next periodic snapshot
    for (const s of range(61, 65)) nc.publish('md.depth.btcusdt', diff(s));
    await nc.flush();

    for (const c of clients) {
      await c.waitFor(() => c.seqs('btcusdt@trade').at(-1) === 60 && c.seqs('btcusdt@depth').at(-1) === 65, 10_000, `${c.name}: everything delivered`);
      const trades = auditTopic(c.r, 'btcusdt@trade');
      const depth = auditTopic(c.r, 'btcusdt@depth');
      assert.deepEqual(trades.problems, [], `${c.name} trades`);
      assert.deepEqual(depth.problems, [], `${c.name} depth`);
      assert.equal(trades.announcedGaps, 1, `${c.name}: the trade hole was announced`);
      assert.deepEqual(c.seqs('btcusdt@trade'), [...range(1, 40), ...range(45, 60)], `${c.name}: every trade around the hole, in order`);
      const notice = c.r.resyncs.find((n) => n.topic === 'btcusdt@trade')!;
      assert.equal(notice.reason, 'upstream_gap');
      // Depth: the diffs up to the hole, the notice, then nothing until the snapshot at 60, then 61..65.
      const depthEvents = c.r.events.filter((e) => e.topic === 'btcusdt@depth').map((e) => (e.snapshot ? `snap${e.seq}` : e.seq));
      assert.deepEqual(depthEvents, ['snap0', ...range(1, 40), 'snap60', ...range(61, 65)], `${c.name}: depth`);
    }
    const stats = await adminJson<{ counters: Record<string, number> }>(`${cluster.servers[0]!.urls.admin}/stats`);
    assert.equal(stats.counters.input_gaps, 2, 'the push-server saw both holes itself');
  });
});
