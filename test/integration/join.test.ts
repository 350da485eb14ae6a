// `pushctl up --join MAIN_DATA_DIR --gateways 2`: a second "host" adds
// gateways to a running cluster with the cluster's credentials (its secrets
// file). The router hands them out, their clients receive data; then the
// host dies (kill -9 of every process it started) and its clients, asking
// the router again, move to the cluster's own gateway and receive data there.
// The cluster runs with `--isolate`: every one of its processes in a network
// namespace of its own (its own address, reached over a bridge), standing in
// for the cluster's hosts; the joining "host" is this machine's own
// namespace, whose gateways bind the host end of that bridge (--join-host).
// So registration, the bus and the clients all cross namespaces, as they
// cross hosts.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WsJsonClient } from '../helpers/proto-clients.ts';
import { getJson, waitFor } from '../helpers/cluster.ts';
import { pushctl } from '../helpers/pushctl.ts';
import { operatorJson, upDetached, type UpCluster } from '../helpers/engine-cluster.ts';
import type { ClusterState } from '../../cli/lib/state-file.ts';
import type { ChaosState } from '../../cli/lib/chaos/state.ts';

describe('pushctl up --join: gateways from another host', () => {
  let main: UpCluster;
  const hostDir = mkdtempSync(join(tmpdir(), 'mp-join-'));
  const closers: Array<() => void> = [];

  let hostAddr = '';
  before(async () => {
    if (process.getuid?.() !== 0) throw new Error('this test needs root (up --isolate makes network namespaces); CI runs as root');
    main = await upDetached(['--isolate', '--gateways', '1', '--servers', '1', '--symbols', '2']);
    const chaos = JSON.parse(readFileSync(join(main.dataDir, 'chaos.json'), 'utf8')) as ChaosState;
    hostAddr = chaos.sessions.find((x) => x.isolation)!.isolation!.hostAddr;
  });
  after(async () => {
    for (const c of closers) c();
    await pushctl(['down', '--data-dir', hostDir], { timeoutMs: 60_000 }).catch(() => {});
    rmSync(hostDir, { recursive: true, force: true });
    await main?.down();
  });

  test('joined gateways are handed out and deliver; the host dies and its clients move', async () => {
    const notMine = await pushctl(['up', '--join', main.dataDir, '--join-host', '192.0.2.7', '--detach', '--data-dir', hostDir], { timeoutMs: 60_000 });
    assert.equal(notMine.code, 2, notMine.out);
    assert.match(notMine.out, /--join-host 192\.0\.2\.7 is not an address of this host/);
    const r = await pushctl(['up', '--join', main.dataDir, '--gateways', '2', '--join-name', 'host2', '--join-host', hostAddr, '--detach', '--json', '--port-base', '0', '--data-dir', hostDir], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.out);
    const joined = JSON.parse(r.stdout.trim().split('\n').pop()!) as { gateways: Array<{ id: string; ws: string }>; pids: Record<string, number> };
    assert.deepEqual(joined.gateways.map((g) => g.id), ['host2-gateway-1', 'host2-gateway-2']);
    for (const g of joined.gateways) assert.equal(new URL(g.ws).hostname, hostAddr, `${g.id} advertises the host end of the cluster's bridge`);
    assert.notEqual(new URL(String(main.json.router)).hostname, '127.0.0.1', 'the cluster\'s router is in a namespace of its own');
    // It runs with the cluster's secrets file, named in its config: not a copy of the secrets on argv.
    const cmdline = readFileSync(`/proc/${joined.pids['host2-gateway-1']}/cmdline`, 'utf8');
    assert.ok(cmdline.includes(main.json.secretsFile) && !cmdline.includes(main.secrets.clusterToken));
    const nodes = await operatorJson<{ nodes: Array<{ id: string }> }>(main, `${main.json.routerAdmins[0]}/v1/nodes`);
    for (const g of joined.gateways) assert.ok(nodes.nodes.some((n) => n.id === g.id), `the registry lists ${g.id}`);

    // The router hands out a joined gateway (it spreads new clients over all three).
    const router = String(main.json.router);
    const pick = async (want: (id: string) => boolean) => {
      let got: { id: string; url: string } | undefined;
      await waitFor(async () => {
        const first = (await getJson<{ gateways?: Array<{ id: string; url: string }> }>(`${router}/v1/gateways?limit=1`)).gateways?.[0];
        if (first && want(first.id)) got = first;
        return got !== undefined;
      }, 30_000, 'the router handing out the wanted gateway');
      return got!;
    };
    const symbol = (await getJson<{ symbols: string[] }>(`${router}/v1/symbols`)).symbols[0]!.toLowerCase();
    const topic = `${symbol}@trade`;
    const onHost2 = await pick((id) => id.startsWith('host2-'));
    const client = new WsJsonClient(onHost2.url);
    closers.push(() => client.close());
    await client.open();
    client.send({ kind: 'subscribe', id: 1, topics: [topic] });
    await client.waitFor(() => client.r.events.some((e) => e.topic === topic), 20_000, `data from ${onHost2.id}`);

    // The host dies: kill -9 of every process it started.
    const state = JSON.parse(readFileSync(join(hostDir, 'cluster.json'), 'utf8')) as ClusterState;
    assert.deepEqual(state.processes.map((p) => p.id).sort(), ['host2-gateway-1', 'host2-gateway-2'], 'the host started only its gateways');
    for (const p of state.processes) process.kill(p.pid, 'SIGKILL');
    await client.waitFor(() => client.closed, 10_000, 'the client sees its gateway go');

    // The client moves as a client does: ask the router, connect; a gateway that refuses means ask again.
    const deadline = Date.now() + 30_000;
    let again: WsJsonClient | undefined;
    let movedTo = '';
    let refused = 0;
    while (!again && Date.now() < deadline) {
      const first = (await getJson<{ gateways?: Array<{ id: string; url: string }> }>(`${router}/v1/gateways?limit=1`)).gateways?.[0];
      if (first) {
        const c = new WsJsonClient(first.url);
        try {
          // A refused connection only closes the socket: give each attempt 3 s.
          await Promise.race([c.open(), new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no answer')), 3_000))]);
          again = c;
          movedTo = first.id;
        } catch {
          c.close();
          refused++;
        }
      }
      if (!again) await new Promise((res) => setTimeout(res, 200));
    }
    assert.ok(again, 'the client found a live gateway within 30 s');
    closers.push(() => again.close());
    console.log(`# the client moved to ${movedTo} (${refused} dead gateway(s) handed out on the way)`);
    assert.equal(movedTo, 'gateway-1');
    again.send({ kind: 'subscribe', id: 1, topics: [topic] });
    await again.waitFor(() => again.r.events.some((e) => e.topic === topic), 20_000, 'data after the move');
    // Within the registry's expiry the router stops handing out the dead host's gateways.
    await waitFor(async () => {
      for (let i = 0; i < 6; i++) {
        const ids = ((await getJson<{ gateways?: Array<{ id: string }> }>(`${router}/v1/gateways`)).gateways ?? []).map((g) => g.id);
        if (ids.some((id) => id.startsWith('host2-'))) return false;
      }
      return true;
    }, 20_000, 'the router no longer lists the dead host\'s gateways');
  });
});
