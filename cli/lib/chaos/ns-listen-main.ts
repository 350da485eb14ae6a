// Opens listening sockets inside a network namespace and hands them to the
// parent over the IPC channel (`ip netns exec NS node ns-listen-main.ts
// --listen 127.0.0.1:4222,…`), then exits. The parent accepts on them and connects out
// in its own namespace: a path in that bypasses the namespace's veth, so
// nothing shaping the veth touches it (a bench's NATS reports).
import { createServer, type Server } from 'node:net';

const i = process.argv.indexOf('--listen');
const listen = (process.argv[i + 1] ?? '').split(',').filter(Boolean).map((hp) => ({ host: hp.slice(0, hp.lastIndexOf(':')), port: Number(hp.slice(hp.lastIndexOf(':') + 1)) }));
if (!process.send || !listen.length || listen.some((l) => !l.host || !(l.port > 0))) {
  process.stderr.write('usage (with an IPC channel): ns-listen-main.ts --listen HOST:PORT[,HOST:PORT…]\n');
  process.exit(2);
}
const send = (msg: unknown, handle?: Server) =>
  new Promise<void>((resolve, reject) => process.send!(msg, handle, {}, (err) => (err ? reject(err) : resolve())));
for (const { host, port } of listen) {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, () => resolve()));
  await send({ host, port }, server);
  // The parent holds a duplicate of the socket now; ours would accept connections nobody serves.
  server.close();
}
await send({ done: true });
process.disconnect();
