// `pushctl up` with clustered-engine flags it cannot honour: a clear error,
// exit 2, and nothing started or written (no state file, no store configs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushctl } from '../helpers/pushctl.ts';

const cases: Array<{ args: string[]; error: RegExp }> = [
  { args: ['--nats-cluster', '3', '--nats', 'nats://127.0.0.1:1'], error: /--nats-cluster starts nats-servers/ },
  { args: ['--nats-cluster', '3', '--embedded'], error: /--embedded runs an in-memory bus|--nats-cluster starts nats-servers/ },
  { args: ['--redis-cluster', '3', '--redis', 'redis://127.0.0.1:1'], error: /--redis-cluster starts redis-servers/ },
  { args: ['--redis-cluster', '2'], error: /--redis-cluster[\s\S]*greater than or equal to 3/ },
  { args: ['--redis-replicas', '2'], error: /--redis-replicas goes with --redis-cluster/ },
  { args: ['--history', 'cassandra', '--cassandra-replication', 'Simple:2'], error: /expected SimpleStrategy:RF/ },
  { args: ['--history', 'cassandra', '--cassandra-nodes', '2', '--cassandra-replication', 'SimpleStrategy:3'], error: /more replicas than the 2 node/ },
  { args: ['--history', 'cassandra', '--cassandra-read-cl', 'SOMETIMES'], error: /read consistency "SOMETIMES"/ },
  { args: ['--cassandra-nodes', '2'], error: /need --history cassandra/ },
  { args: ['--join', '/nonexistent/market-push'], error: /--join: no cluster is recorded in \/nonexistent\/market-push/ },
  { args: ['--join', '.', '--join-name', 'Host_2'], error: /--join: no cluster is recorded|--join-name "Host_2"/ },
];

for (const c of cases) {
  test(`up ${c.args.join(' ')}: refused clearly, nothing started`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mp-engine-flags-'));
    try {
      const r = await pushctl(['up', '--port-base', '0', '--data-dir', dir, '--gateways', '1', '--servers', '1', ...c.args], { timeoutMs: 60_000 });
      assert.equal(r.code, 2, r.out);
      assert.match(r.stderr, c.error);
      assert.ok(!existsSync(join(dir, 'cluster.json')), 'no state file');
      assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.conf')), [], 'no store config written');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
