// What a client namespace must reach of a recorded cluster: every port a
// client may connect to (routers, control, each gateway's WebSocket / HTTP,
// TCP and gRPC listeners), and where the ports of an isolated cluster listen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeState, type ClusterState } from '../../cli/lib/state-file.ts';
import { clientPorts, clusterHosts } from '../../cli/lib/chaos/session.ts';

function state(dataDir: string, host: string): ClusterState {
  const gw = (i: number) => ({
    id: `gateway-${i}`, role: 'gateway', healthUrl: `http://${host}:72${i}0/healthz`,
    urls: { ws: `ws://${host}:72${i}0`, http: `http://${host}:72${i}0`, 'grpc-web': `http://${host}:72${i}0`, tcp: `${host}:72${i}1`, grpc: `${host}:72${i}2` },
  });
  return {
    version: 1, mode: 'processes', status: 'running', dataDir, startedAt: new Date(0).toISOString(), supervisorPid: 1, detached: true,
    endpoints: {
      routers: [`http://${host}:7100`], control: `http://${host}:7190`,
      gateways: [1, 2].map((i) => ({ id: `gateway-${i}`, ws: `ws://${host}:72${i}0`, http: `http://${host}:72${i}0` })),
      servers: [{ id: 'server-1', grpc: `${host}:7300`, admin: `http://${host}:7400` }], feed: `http://${host}:7500`, nats: `nats://${host}:4222`,
    },
    roles: [
      { id: 'router-1', role: 'router', healthUrl: `http://${host}:7100/healthz`, urls: { http: `http://${host}:7100` } },
      { id: 'control', role: 'control', healthUrl: `http://${host}:7190/healthz`, urls: { http: `http://${host}:7190` } },
      { id: 'server-1', role: 'server', healthUrl: `http://${host}:7400/healthz`, urls: { grpc: `${host}:7300`, admin: `http://${host}:7400` } },
      gw(1), gw(2),
    ],
    embeddedParts: [], binaries: {}, processes: [],
  };
}

test('clientPorts: routers, control and every gateway listener (WebSocket/HTTP, TCP, gRPC), not the servers\' or NATS', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-client-ports-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.deepEqual(clientPorts(dir), [], 'no cluster recorded');
  writeState(state(dir, '127.0.0.1'));
  assert.deepEqual(clientPorts(dir), [7100, 7190, 7210, 7211, 7212, 7220, 7221, 7222]);
  assert.equal(clusterHosts(dir).size, 0, 'a loopback cluster needs no addresses');
});

test('clusterHosts: an isolated cluster\'s ports map to their roles\' addresses, NATS included', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-client-ports-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeState(state(dir, '10.201.0.5'));
  const hosts = clusterHosts(dir);
  for (const port of [...clientPorts(dir), 7300, 4222]) assert.equal(hosts.get(port), '10.201.0.5', String(port));
});
