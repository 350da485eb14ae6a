import { PassThrough } from 'node:stream';
import { LiveView } from '../../cli/lib/live-view.ts';
import type { ClusterState } from '../../cli/lib/state-file.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import React from 'react';
import { render } from 'ink-testing-library';
import { LOOP_NOTE, formatTable, rowsFromTopology, StatusView, topologyNodes, totalsOf } from '../../cli/lib/status-view.ts';

const NOW = 1_760_000_000_000;
const load = (over: object = {}) => ({
  connections: 0,
  subscriptions: 0,
  msgsInPerSec: 0,
  msgsOutPerSec: 0,
  cpu: 0.02,
  eventLoopP99Ms: 10.5,
  rssMb: 80,
  ...over,
});

// A control GET /v1/topology answer (shape as system/control/control.ts sends it) from a
// 1-router, 2-gateway, 2-server cluster; server-2 has missed its heartbeats.
const snapshot = {
  at: NOW,
  router: 'http://127.0.0.1:7100',
  summary: { routers: 1, gateways: 2, servers: 2, feeds: 1, controls: 1, draining: 1, unhealthy: 1 },
  nodes: [
    { id: 'gateway-2', role: 'gateway', urls: { ws: 'ws://127.0.0.1:7201', http: 'http://127.0.0.1:7201' }, protocols: ['ws'], draining: true, startedAt: NOW - 60_000, seenAt: NOW - 500, ageMs: 500, healthy: true, load: load({ connections: 300, subscriptions: 900, msgsInPerSec: 100, msgsOutPerSec: 2000 }) },
    { id: 'server-1', role: 'server', urls: { grpc: '127.0.0.1:7300', admin: 'http://127.0.0.1:7400' }, protocols: ['grpc'], draining: false, startedAt: NOW - 60_000, seenAt: NOW - 200, ageMs: 200, healthy: true, load: load({ connections: 4, subscriptions: 60, msgsInPerSec: 250, msgsOutPerSec: 500, cpu: 0.31, eventLoopP99Ms: 12.25, rssMb: 120 }) },
    { id: 'router-1', role: 'router', urls: { http: 'http://127.0.0.1:7100' }, protocols: ['http'], draining: false, startedAt: NOW - 60_000, seenAt: NOW - 100, ageMs: 100, healthy: true, load: load() },
    { id: 'gateway-1', role: 'gateway', urls: { ws: 'ws://127.0.0.1:7200', http: 'http://127.0.0.1:7200' }, protocols: ['ws'], draining: false, startedAt: NOW - 60_000, seenAt: NOW - 300, ageMs: 300, healthy: true, load: load({ connections: 1200, subscriptions: 3600, msgsInPerSec: 150, msgsOutPerSec: 9000.4 }) },
    { id: 'server-2', role: 'server', urls: { grpc: '127.0.0.1:7301', admin: 'http://127.0.0.1:7401' }, protocols: ['grpc'], draining: false, startedAt: NOW - 60_000, seenAt: NOW - 9_000, ageMs: 9000, healthy: false, load: load() },
    { id: 'feed-1', role: 'feed', urls: { admin: 'http://127.0.0.1:7500' }, protocols: [], draining: false, startedAt: NOW - 60_000, seenAt: NOW - 100, ageMs: 100, healthy: true, load: load({ msgsOutPerSec: 250 }), meta: { symbols: ['btcusdt'] } },
    { id: 'control-1', role: 'control', urls: { http: 'http://127.0.0.1:7190' }, protocols: ['http'], draining: false, startedAt: NOW - 60_000, seenAt: NOW - 100, ageMs: 100, healthy: true, load: load() },
  ],
};

test('rows: ordered by role then id, address per role, health from control (healthy, draining)', () => {
  const rows = rowsFromTopology(snapshot, NOW);
  assert.deepEqual(
    rows.map((r) => [r.id, r.address, r.health]),
    [
      ['router-1', 'http://127.0.0.1:7100', 'ok'],
      ['control-1', 'http://127.0.0.1:7190', 'ok'],
      ['server-1', '127.0.0.1:7300', 'ok'],
      ['server-2', '127.0.0.1:7301', 'unhealthy'],
      ['gateway-1', 'ws://127.0.0.1:7200', 'ok'],
      ['gateway-2', 'ws://127.0.0.1:7201', 'draining'],
      ['feed-1', 'http://127.0.0.1:7500', 'ok'],
    ],
  );
});

test('totals: connections at gateways, bus ingress at servers, client egress at gateways', () => {
  const t = totalsOf(rowsFromTopology(snapshot, NOW));
  assert.deepEqual(t, { nodes: 7, healthy: 5, connections: 1500, subscriptions: 4500, msgsInPerSec: 250, msgsOutPerSec: 11000.4 });
});

test('topology grouped by role is read as well as a flat node list', () => {
  const grouped = { gateways: [snapshot.nodes[0]], servers: [snapshot.nodes[1]], note: 'x' };
  assert.deepEqual(topologyNodes(grouped).map((n) => n.id), ['gateway-2', 'server-1']);
  assert.deepEqual(topologyNodes(null), []);
  // Without control's verdict, a node not seen for a while is stale.
  const { healthy: _h, ...bare } = snapshot.nodes[2]!;
  assert.equal(rowsFromTopology({ nodes: [{ ...bare, seenAt: NOW - 9_000 }] }, NOW)[0]!.health, 'stale');
  assert.equal(rowsFromTopology({ nodes: [bare] }, NOW)[0]!.health, 'ok');
});

test('plain table has a header, one line per node and a totals line', () => {
  const lines = formatTable(rowsFromTopology(snapshot, NOW));
  assert.equal(lines.length, 1 + 7 + 2);
  assert.match(lines[0]!, /^ROLE\s+ID\s+ADDRESS\s+HEALTH\s+CONNS\s+SUBS\s+IN\/s\s+OUT\/s\s+CPU\s+LOOP p99\s+RSS$/);
  const gw1 = lines.find((l) => l.includes('gateway-1'))!;
  assert.match(gw1, /gateway\s+gateway-1\s+ws:\/\/127\.0\.0\.1:7200\s+ok\s+1,200\s+3,600\s+150\s+9,000\s+2%\s+10\.5ms\s+80MB/);
  const s1 = lines.find((l) => l.includes('server-1'))!;
  assert.match(s1, /31%\s+12\.3ms\s+120MB$/);
  assert.equal(lines.at(-1), LOOP_NOTE);
  assert.match(LOOP_NOTE, /10 ms sampling tick/);
  assert.equal(lines.at(-2), 'total: 7 nodes, 5 ok · 1,500 connections · 4,500 subscriptions · 250 msg/s from the bus · 11,000 msg/s to clients');
});

test('Ink view renders every node, the totals and the events', () => {
  const rows = rowsFromTopology(snapshot, NOW).map((r) => (r.id === 'server-2' ? { ...r, health: 'died' } : r));
  const view = render(
    React.createElement(StatusView, {
      title: 'market-push · control http://127.0.0.1:7190',
      rows,
      events: ['12:00:00 server-2 (pid 4242) exited with code 1 unexpectedly; not restarted.'],
      updatedAt: NOW,
      width: 120,
    }),
  );
  try {
    const frame = view.lastFrame() ?? '';
    assert.match(frame, /market-push · control http:\/\/127\.0\.0\.1:7190/);
    assert.match(frame, /ROLE\s+ID\s+ADDRESS\s+HEALTH/);
    for (const id of ['router-1', 'control-1', 'server-1', 'server-2', 'gateway-1', 'gateway-2', 'feed-1']) assert.ok(frame.includes(id), `${id} missing`);
    assert.match(frame, /server-2\s+127\.0\.0\.1:7301\s+died/);
    assert.match(frame, /gateway-1\s+ws:\/\/127\.0\.0\.1:7200\s+ok\s+1,200\s+3,600\s+150\s+9,000/);
    assert.match(frame, /total: 7 nodes, 5 ok · 1,500 connections/);
    assert.match(frame, /RSS/);
    assert.match(frame, /server-2 \(pid 4242\) exited with code 1 unexpectedly; not restarted/);
    assert.match(frame, /Ctrl-C stops the cluster/);
    assert.ok(frame.includes('LOOP p99: event-loop delay past a 10 ms sampling tick'), 'the view says what LOOP measures');
  } finally {
    view.unmount();
    view.cleanup();
  }
});

test('Ink view drops the least useful columns on a narrow terminal', () => {
  const view = render(React.createElement(StatusView, { title: 't', rows: rowsFromTopology(snapshot, NOW), events: [], width: 80 }));
  try {
    const frame = view.lastFrame() ?? '';
    const header = frame.split('\n')[1]!;
    assert.match(header, /^ID\s+ADDRESS\s+HEALTH\s+CONNS\s+SUBS\s+IN\/s\s+OUT\/s$/);
    for (const line of frame.split('\n').slice(1, 9)) assert.ok(line.trimEnd().length <= 80, `too wide: ${line}`);
    assert.match(frame, /gateway-1\s+ws:\/\/127\.0\.0\.1:7200\s+ok\s+1,200/);
  } finally {
    view.unmount();
    view.cleanup();
  }
});

/** Waits (bounded) for a condition: a loaded machine may draw late. */
async function until(ok: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}

test('the live view clears the screen and draws anew when the terminal is resized', async () => {
  const out = Object.assign(new PassThrough(), { columns: 120, rows: 40, isTTY: true }) as unknown as NodeJS.WriteStream;
  let written = '';
  out.on('data', (d: Buffer) => (written += d.toString()));
  const state = { endpoints: { control: 'http://127.0.0.1:1' } } as unknown as ClusterState;
  const view = new LiveView({ title: 'resize test', state, auth: {}, tty: true, json: false, stdout: out, intervalMs: 60_000 });
  view.start();
  try {
    await until(() => /resize test/.test(written));
    assert.match(written, /resize test/);
    written = '';
    (out as unknown as { columns: number }).columns = 70;
    out.emit('resize');
    await until(() => written.includes('\x1b[2J') && /resize test/.test(written.slice(written.indexOf('\x1b[2J'))));
    assert.ok(written.includes('\x1b[2J'), 'screen cleared on resize');
    assert.match(written.slice(written.indexOf('\x1b[2J')), /resize test/, 'and the view drawn again after the clear');
  } finally {
    view.stop();
  }
});
