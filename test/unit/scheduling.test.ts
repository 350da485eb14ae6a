import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EMPTY_LOAD, type NodeLoad, type NodeRecord, type Role } from '../../system/common/registry.ts';
import { chooseGateways, routableServers, routeTopic, supportsProtocol, symbolUnion } from '../../system/router/scheduling.ts';

function node(id: string, role: Role, over: Partial<Omit<NodeRecord, 'load'>> & { load?: Partial<NodeLoad> } = {}): NodeRecord {
  return {
    id,
    role,
    urls: {},
    protocols: [],
    draining: false,
    startedAt: 0,
    seenAt: 0,
    ...over,
    load: { ...EMPTY_LOAD, ...over.load },
  };
}

const gw = (id: string, connections: number, cpu = 0, over: Partial<NodeRecord> = {}) =>
  node(id, 'gateway', { urls: { ws: `ws://${id}`, http: `http://${id}` }, load: { connections, cpu }, ...over });

test('gateways: least connections first, then cpu, then id', () => {
  const nodes = [gw('c', 5, 0.1), gw('a', 2, 0.9), gw('b', 2, 0.2), gw('d', 2, 0.2)];
  assert.deepEqual(
    chooseGateways(nodes, 'ws').map((g) => g.id),
    ['b', 'd', 'a', 'c'],
  );
  const [first] = chooseGateways(nodes, 'ws', 1);
  assert.deepEqual(first, { id: 'b', url: 'ws://b', load: { ...EMPTY_LOAD, connections: 2, cpu: 0.2 }, draining: false });
});

test('gateways: draining ones and other roles are never chosen', () => {
  const nodes = [gw('idle-but-draining', 0, 0, { draining: true }), gw('busy', 100), node('s1', 'server', { urls: { ws: 'ws://s1' } })];
  assert.deepEqual(
    chooseGateways(nodes, 'ws').map((g) => g.id),
    ['busy'],
  );
  assert.deepEqual(chooseGateways([gw('x', 0, 0, { draining: true })], 'ws'), []);
});

test('gateways: protocol support by advertised url or protocols list; url follows the protocol', () => {
  const grpc = gw('g-grpc', 1, 0, { urls: { ws: 'ws://g', http: 'http://g', grpc: 'g:9000' } });
  const web = gw('g-web', 0, 0, { protocols: ['grpc-web'] });
  const plain = gw('g-plain', 0);
  assert.equal(supportsProtocol(grpc, 'grpc'), true);
  assert.equal(supportsProtocol(web, 'grpc-web'), true);
  assert.equal(supportsProtocol(plain, 'grpc'), false);
  assert.deepEqual(
    chooseGateways([grpc, web, plain], 'grpc').map((g) => [g.id, g.url]),
    [['g-grpc', 'g:9000']],
  );
  // Listed without its own URL: served on the gateway's http port.
  assert.deepEqual(
    chooseGateways([grpc, web, plain], 'grpc-web').map((g) => [g.id, g.url]),
    [['g-web', 'http://g-web']],
  );
  assert.deepEqual(chooseGateways([grpc, web, plain], 'tcp'), []);
});

test('route: same answer whatever the order of the node list', () => {
  const servers = ['s1', 's2', 's3', 's4'].map((id) => node(id, 'server', { urls: { grpc: `${id}:7300` } }));
  const reversed = [...servers].reverse();
  for (const topic of ['btcusdt@ticker', 'ethusdt@kline_1m', 'solusdt@depth', 'xrpusdt@trade']) {
    const a = routeTopic(topic, servers);
    assert.ok(a);
    assert.deepEqual(routeTopic(topic, reversed), a);
    assert.equal(a.grpc, `${a.id}:7300`);
  }
});

test('route: only the topics of a server that leaves move, and they spread over the rest', () => {
  const servers = ['s1', 's2', 's3'].map((id) => node(id, 'server', { urls: { grpc: `${id}:1` } }));
  const topics = Array.from({ length: 300 }, (_, i) => `sym${i}@ticker`);
  const before = new Map(topics.map((t) => [t, routeTopic(t, servers)!.id]));
  assert.equal(new Set(before.values()).size, 3, 'every server owns some topics');
  const after = new Map(topics.map((t) => [t, routeTopic(t, servers.filter((s) => s.id !== 's2'))!.id]));
  const landedOn = new Set<string>();
  for (const t of topics) {
    if (before.get(t) !== 's2') assert.equal(after.get(t), before.get(t), `${t} must not move`);
    else landedOn.add(after.get(t)!);
  }
  assert.deepEqual([...landedOn].sort(), ['s1', 's3']);
});

test('route: draining servers, servers without grpc and other roles are skipped; none → undefined', () => {
  const nodes = [
    node('s-drain', 'server', { urls: { grpc: 'a:1' }, draining: true }),
    node('s-nogrpc', 'server', { urls: { admin: 'http://b' } }),
    node('g', 'gateway', { urls: { grpc: 'c:1' } }),
  ];
  assert.equal(routeTopic('btcusdt@ticker', nodes), undefined);
  assert.deepEqual(routableServers(nodes), []);
  nodes.push(node('s-ok', 'server', { urls: { grpc: 'd:1' } }));
  assert.deepEqual(routeTopic('btcusdt@ticker', nodes), { id: 's-ok', grpc: 'd:1' });
  assert.deepEqual(
    routableServers([node('z', 'server', { urls: { grpc: 'z' } }), ...nodes]).map((s) => s.id),
    ['s-ok', 'z'],
  );
});

test('symbols: sorted union over feeds only, ignoring junk', () => {
  const nodes = [
    node('f1', 'feed', { meta: { symbols: ['ethusdt', 'btcusdt'] } }),
    node('f2', 'feed', { meta: { symbols: ['BTCUSDT', 'solusdt', 42, ''] } }),
    node('f3', 'feed', { meta: { symbols: 'not-a-list' } }),
    node('f4', 'feed'),
    node('g1', 'gateway', { meta: { symbols: ['dogeusdt'] } }),
  ];
  assert.deepEqual(symbolUnion(nodes), ['btcusdt', 'ethusdt', 'solusdt']);
  assert.deepEqual(symbolUnion([]), []);
});

test('clients handed out since the last heartbeat count as load, so a burst spreads over gateways', () => {
  const nodes = [
    { id: 'gateway-1', role: 'gateway', urls: { ws: 'ws://a' }, protocols: [], draining: false, startedAt: 0, seenAt: 0, load: { ...EMPTY_LOAD, connections: 10 } },
    { id: 'gateway-2', role: 'gateway', urls: { ws: 'ws://b' }, protocols: [], draining: false, startedAt: 0, seenAt: 0, load: { ...EMPTY_LOAD, connections: 12 } },
  ] as NodeRecord[];
  const pending = new Map<string, number>();
  const picks: string[] = [];
  for (let i = 0; i < 6; i++) {
    const first = chooseGateways(nodes, 'ws', Infinity, pending)[0]!.id;
    picks.push(first);
    pending.set(first, (pending.get(first) ?? 0) + 1);
  }
  // gateway-1 takes picks until level with gateway-2 (ties go to the lower id), then they alternate.
  assert.deepEqual(picks, ['gateway-1', 'gateway-1', 'gateway-1', 'gateway-2', 'gateway-1', 'gateway-2']);
});
