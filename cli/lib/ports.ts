// Port checks for `pushctl up`: refuse clearly when a planned port is taken,
// and pick free ports for --port-base 0.
import { createServer, type Server } from 'node:net';

function listenOn(port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen({ port, host, exclusive: true }, () => {
      srv.off('error', reject);
      resolve(srv);
    });
  });
}

const closeQuietly = (srv: Server) => new Promise<void>((r) => srv.close(() => r()));

export async function isPortFree(port: number, host: string): Promise<boolean> {
  try {
    await closeQuietly(await listenOn(port, host));
    return true;
  } catch {
    return false;
  }
}

/** The ones among `wanted` that something else already listens on. */
export async function takenPorts<T extends { port: number }>(wanted: T[], host: string): Promise<T[]> {
  const taken: T[] = [];
  for (const w of wanted) if (!(await isPortFree(w.port, host))) taken.push(w);
  return taken;
}

/** `n` distinct free ports: all are held open together so none is handed out twice. */
export async function freePorts(n: number, host: string): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) servers.push(await listenOn(0, host));
    return servers.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map(closeQuietly));
  }
}
