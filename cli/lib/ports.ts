// Port checks for `pushctl up`: refuse clearly when a planned port is taken,
// and pick free ports for --port-base 0.
import { readFileSync } from 'node:fs';
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

/** The kernel's ephemeral range (outgoing connections take their local port from it). */
export function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo && hi && lo <= hi) return [lo, hi];
  } catch {
    // not Linux: the IANA range
  }
  return [49152, 65535];
}

/**
 * `n` distinct free ports: all are held open together so none is handed out
 * twice. They are picked below the ephemeral range: a port the kernel hands
 * out (listen(0)) comes from that range, where any outgoing connection of the
 * starting cluster (NATS, Redis, gossip) may take it before the role binds it.
 * Falls back to the kernel's pick when no port below is free.
 */
export async function freePorts(n: number, host: string): Promise<number[]> {
  const servers: Server[] = [];
  const [ephemeralLow] = ephemeralRange();
  const low = 10_000;
  const high = Math.min(ephemeralLow, 65_536) - 1;
  try {
    for (let tries = 0; servers.length < n && high > low && tries < n * 20; tries++) {
      const port = low + Math.floor(Math.random() * (high - low + 1));
      try {
        servers.push(await listenOn(port, host));
      } catch {
        // taken: another pick
      }
    }
    while (servers.length < n) servers.push(await listenOn(0, host));
    return servers.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map(closeQuietly));
  }
}
