// The router's probe of overdue gateways: who is probed, when, and for how
// long a verdict holds. The real /healthz probe is tested against a live
// HTTP server and a closed port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EMPTY_LOAD, type NodeRecord } from '../../system/common/registry.ts';
import { GatewayProbe, probeHealthz, type Verdict } from '../../system/router/gateway-probe.ts';
import { freePort } from '../helpers/servers.ts';

const node = (id: string, seenAt: number, role: NodeRecord['role'] = 'gateway', http = `http://127.0.0.1:1`): NodeRecord => ({
  id, role, urls: { http }, protocols: ['ws'], draining: false, startedAt: 0, seenAt, load: { ...EMPTY_LOAD },
});

function setup(answers: Record<string, Verdict>) {
  const clock = { t: 10_000 };
  const probed: string[] = [];
  const p = new GatewayProbe({
    intervalMs: 1_000,
    now: () => clock.t,
    probe: async (n) => {
      probed.push(n.id);
      return answers[n.id] ?? 'alive';
    },
  });
  const ids = async (nodes: NodeRecord[]) => (await p.filter(nodes)).map((n) => n.id);
  return { clock, probed, p, ids };
}

test('only overdue gateways are probed; the ones that do not answer are left out', async () => {
  const { clock, probed, p, ids } = setup({ dead: 'gone', late: 'alive' });
  assert.equal(p.overdueMs, 1_500);
  assert.equal(p.timeoutMs, 500);
  const nodes = [node('fresh', clock.t - 900), node('late', clock.t - 1_600), node('dead', clock.t - 1_600), node('srv', clock.t - 4_000, 'server')];
  assert.deepEqual(await ids(nodes), ['fresh', 'late', 'srv']);
  assert.deepEqual(probed.sort(), ['dead', 'late'], 'servers and on-time gateways are never probed');
  // Verdicts are kept: asking again probes nobody.
  assert.deepEqual(await ids(nodes), ['fresh', 'late', 'srv']);
  assert.equal(probed.length, 2);
  // A live-but-late gateway is asked again after an interval if it is still overdue.
  clock.t += 1_000;
  nodes[0] = node('fresh', clock.t - 900); // it kept beating
  assert.deepEqual(await ids(nodes), ['fresh', 'late', 'srv']);
  assert.deepEqual(probed.slice(2), ['late'], 'the gone one stays gone without asking; the late one is asked again');
});

test('a newer heartbeat clears a "gone" verdict; a gateway no longer listed is forgotten', async () => {
  const { clock, probed, p, ids } = setup({ g: 'gone' });
  assert.deepEqual(await ids([node('g', clock.t - 2_000)]), []);
  assert.equal(p.gone(node('g', clock.t - 2_000)), true);
  // It beats again (a frozen gateway resumed): listed at once, no probe.
  assert.deepEqual(await ids([node('g', clock.t)]), ['g']);
  assert.equal(probed.length, 1);
  // Overdue again: probed again.
  clock.t += 2_000;
  assert.deepEqual(await ids([node('g', clock.t - 2_000)]), []);
  assert.equal(probed.length, 2);
  await p.filter([]);
  assert.equal(p.gone(node('g', clock.t - 2_000)), false, 'forgotten once it left the registry');
});

test('concurrent lookups share one probe and all wait for it', async () => {
  let release!: (v: Verdict) => void;
  let calls = 0;
  const p = new GatewayProbe({
    intervalMs: 1_000,
    now: () => 10_000,
    probe: () => {
      calls++;
      return new Promise<Verdict>((r) => (release = r));
    },
  });
  const nodes = [node('g', 7_000)];
  const lookups = [p.filter(nodes), p.filter(nodes), p.filter(nodes)];
  release('gone');
  for (const l of await Promise.all(lookups)) assert.deepEqual(l, []);
  assert.equal(calls, 1);
  // A probe that throws counts as no answer.
  const q = new GatewayProbe({ intervalMs: 1_000, now: () => 10_000, probe: async () => Promise.reject(new Error('boom')) });
  assert.deepEqual(await q.filter(nodes), []);
});

test('probeHealthz: an answer from the node is alive, a refused port or another node\'s answer is gone', async (t) => {
  const srv = createServer((_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, id: 'gw-a' })));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => srv.close());
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  assert.equal(await probeHealthz(node('gw-a', 0, 'gateway', url), 500), 'alive');
  assert.equal(await probeHealthz(node('gw-b', 0, 'gateway', url), 500), 'gone', 'its port now serves another gateway');
  assert.equal(await probeHealthz(node('gw-c', 0, 'gateway', `http://127.0.0.1:${await freePort()}`), 500), 'gone');
  // A server that accepts and never answers: gone after the timeout.
  const mute = createServer(() => {});
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
  t.after(() => {
    mute.closeAllConnections();
    mute.close();
  });
  assert.equal(await probeHealthz(node('gw-d', 0, 'gateway', `http://127.0.0.1:${(mute.address() as AddressInfo).port}`), 200), 'gone');
});
