// Starts one Cassandra node from Maven Central's jars and keeps it running
// until Ctrl-C; prints its CQL contact point, start time and RSS.
// Usage: node scripts/cassandra/start.ts [--heap-mb 512] [--data DIR] [--port CQL_PORT]
//        [--storage-port P --seeds host:port,… --token T]   (a node of a ring)
// `pushctl up --history cassandra` runs it as one of the cluster's processes.
import { startCassandra } from '../../system/history/cassandra-node.ts';

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const node = await startCassandra({
  heapMb: Number(arg('--heap-mb') ?? 512),
  dataDir: arg('--data'),
  keepData: arg('--data') !== undefined,
  cqlPort: arg('--port') ? Number(arg('--port')) : undefined,
  quickJit: false, // a cluster's node: full JIT for throughput
  // A node of a ring (`pushctl up --cassandra-nodes N`).
  ...(arg('--seeds') ? { ring: { storagePort: Number(arg('--storage-port')), seeds: arg('--seeds')!, initialToken: arg('--token') ?? '0' } } : {}),
});
process.stdout.write(JSON.stringify({ ready: true, cassandra: node.contactPoint, pid: node.pid, startMs: node.startMs, rssMb: node.rssMb(), dataDir: node.dataDir }) + '\n');
const stop = async () => {
  await node.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
setInterval(() => {}, 1 << 30);
