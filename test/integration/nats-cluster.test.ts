// `pushctl up --nats-cluster 3`: three real nats-servers joined by routes,
// JetStream streams and the KV registry with 3 replicas. kill -9 of the node
// the feed publishes into, under live WebSocket and raw-TCP clients: every
// market gap a client sees is announced (resync notice, fresh snapshot), data
// keeps flowing, the roles reconnect to the other nodes, and the replicated
// registry keeps taking heartbeats and answering.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { REGISTRY_BUCKET } from '../../system/common/kv-registry.ts';
import { ORDERS_STREAM } from '../../system/gateway/orders.ts';
import { KLINE_STREAM } from '../../system/history/kline-stream.ts';
import { getJson, waitFor } from '../helpers/cluster.ts';
import { TcpClient, WsJsonClient, type ProtoClient } from '../helpers/proto-clients.ts';
import { auditTopic } from '../helpers/gap-audit.ts';
import { operatorJson, peerPortsOf, sleep, upDetached, type UpCluster } from '../helpers/engine-cluster.ts';

describe('pushctl up --nats-cluster 3', () => {
  let c: UpCluster;
  let nc: NatsConnection | undefined;
  const closers: Array<() => void> = [];

  before(async () => {
    c = await upDetached(['--nats-cluster', '3', '--gateways', '1', '--servers', '1', '--symbols', '2', '--rate', '40']);
  });
  after(async () => {
    for (const x of closers) x();
    await nc?.close();
    await c?.down();
  });

  test('three nodes, replicated streams and registry; kill -9 of a node under live clients: no unannounced gap, registry answers', async () => {
    const urls = String(c.json.nats).split(',');
    assert.equal(urls.length, 3, 'every role gets the three nodes\' URLs');
    const nodePorts = urls.map((u) => Number(new URL(u).port));
    for (const id of ['nats-1', 'nats-2', 'nats-3']) assert.ok(c.pid(id) > 0, `${id} runs as its own process`);

    // JetStream state as the router's user (it owns the registry bucket); the operator may not read the registry.
    const router = c.secrets.nats.router;
    nc = await connect({ servers: urls, user: router.user, pass: router.password, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const jsm = await jetstreamManager(nc);
    const reg = await jsm.streams.info(`KV_${REGISTRY_BUCKET}`);
    assert.equal(reg.config.num_replicas, 3, 'the KV registry keeps 3 replicas');
    assert.equal(reg.cluster?.replicas?.length, 2, 'a leader and two current followers');
    // The other streams: each role user may read only its own.
    for (const [kind, stream] of [['gateway', ORDERS_STREAM], ['feed', KLINE_STREAM]] as const) {
      const u = c.secrets.nats[kind];
      const nc2 = await connect({ servers: urls, user: u.user, pass: u.password });
      try {
        assert.equal((await (await jetstreamManager(nc2)).streams.info(stream)).config.num_replicas, 3, `${stream} keeps 3 replicas`);
      } finally {
        await nc2.close();
      }
    }

    // Live clients on every topic of both symbols.
    const gw = c.json.gateways[0] as { ws: string; tcp: string; admin: string };
    const symbols = (await getJson<{ symbols: string[] }>(`${c.json.router}/v1/symbols`)).symbols.map((s) => s.toLowerCase());
    assert.equal(symbols.length, 2);
    const topics = symbols.flatMap((s) => [`${s}@trade`, `${s}@depth`, `${s}@ticker`]);
    const clients: ProtoClient[] = [new WsJsonClient(gw.ws), new TcpClient(gw.tcp)];
    for (const cl of clients) {
      closers.push(() => cl.close());
      await cl.open();
      cl.send({ kind: 'subscribe', id: 1, topics });
    }
    for (const cl of clients) await cl.waitFor(() => topics.every((t) => cl.r.events.some((e) => e.topic === t)), 20_000, 'every topic flowing');

    // The victim: the node the feed publishes into (read from the kernel's socket table), so market
    // data published while the feed reconnects is lost on the way and must show as announced gaps.
    const roleIds = ['router-1', 'server-1', 'feed-1', 'gateway-1'];
    const onNode = nodePorts.map((port) => roleIds.filter((id) => peerPortsOf(c.pid(id)).includes(port)));
    const victim = onNode.findIndex((ids) => ids.includes('feed-1'));
    assert.ok(victim >= 0, `the feed is connected to one of the nodes (${JSON.stringify(onNode)})`);
    const moved = onNode[victim]!;
    const kv = await new Kvm(nc).open(REGISTRY_BUCKET);
    const before = await kv.get('node.gateway-1');
    assert.ok(before && before.operation === 'PUT', 'gateway-1 is in the registry');
    const eventsBefore = clients.map((cl) => cl.r.events.length);

    process.kill(c.pid(`nats-${victim + 1}`), 'SIGKILL');
    const killedAt = Date.now();
    console.log(`# killed nats-${victim + 1} (roles on it: ${moved.join(', ')})`);

    // The roles that were on it reconnect to a surviving node.
    const survivors = nodePorts.filter((_, i) => i !== victim);
    await waitFor(() => moved.every((id) => peerPortsOf(c.pid(id)).some((p) => survivors.includes(p))), 20_000, 'roles reconnected to another node');

    // The replicated registry takes new heartbeats (a quorum of 2 of 3) and answers reads.
    await waitFor(async () => {
      const e = await kv.get('node.gateway-1').catch(() => null);
      return !!e && e.revision > before.revision && (e.json<{ seenAt: number }>().seenAt ?? 0) > killedAt;
    }, 30_000, 'a heartbeat after the kill stored in the registry');
    const nodes = await operatorJson<{ nodes: Array<{ id: string }> }>(c, `${c.json.routerAdmins[0]}/v1/nodes`);
    for (const id of ['gateway-1', 'server-1']) assert.ok(nodes.nodes.some((n) => n.id === id), `the router lists ${id} after the kill`);

    // Market data keeps flowing on every topic; any gap is announced.
    await sleep(6_000);
    for (const [i, cl] of clients.entries()) {
      const after = cl.r.events.slice(eventsBefore[i]);
      for (const t of topics) {
        assert.ok(after.some((e) => e.topic === t), `${t}: flowing after the kill`);
        const a = auditTopic(cl.r, t);
        assert.deepEqual(a.problems, [], `${t}: ${a.gaps} gaps, ${a.announcedGaps} announced, ${a.notices} notices`);
      }
      assert.ok(!cl.closed, 'the client stays connected');
    }
    const gwStats = await operatorJson<{ counters: Record<string, number> }>(c, `${gw.admin}/stats`);
    console.log(`# gateway upstream_gaps=${gwStats.counters.upstream_gaps ?? 0} gap_fills=${gwStats.counters.gap_fills ?? 0}; resync notices: ${clients.map((cl) => cl.r.resyncs.length).join(', ')}`);
  });
});
