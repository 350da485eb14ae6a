// Sends this node's NodeRecord to a router every interval. Routers are tried
// in turn, so one router going away only costs a retry; on stop the node
// deregisters so it vanishes at once instead of at expiry. Both calls carry
// the cluster token: routers accept registrations only from a verified role.
import type { Logger } from './logger.ts';
import type { NodeRecord } from './registry.ts';
import { httpCall } from './http-client.ts';

export class Heartbeat {
  #routers: string[];
  #intervalMs: number;
  #record: () => NodeRecord;
  #log: Logger;
  #auth: Record<string, string>;
  #timer: NodeJS.Timeout | undefined;
  #next = 0;
  #failures = 0;

  /** `auth`: headers proving this is a role of the cluster (admin-http.ts clusterAuth). */
  constructor(opts: { routers: string[]; intervalMs: number; record: () => NodeRecord; log: Logger; auth?: Record<string, string> }) {
    this.#auth = opts.auth ?? {};
    this.#routers = opts.routers;
    this.#intervalMs = opts.intervalMs;
    this.#record = opts.record;
    this.#log = opts.log;
  }

  /** Sends the first beat and resolves once a router accepted it (or every router failed once). */
  async start(): Promise<boolean> {
    const ok = await this.beat();
    this.#timer = setInterval(() => void this.beat(), this.#intervalMs);
    this.#timer.unref();
    return ok;
  }

  async beat(): Promise<boolean> {
    if (this.#routers.length === 0) return false;
    const body = JSON.stringify(this.#record());
    for (let tries = 0; tries < this.#routers.length; tries++) {
      const router = this.#routers[this.#next % this.#routers.length]!;
      try {
        // node:http on a kept-alive connection, not fetch: a beat a second from every role is most of an idle cluster's CPU.
        const res = await httpCall(`${router}/v1/heartbeat`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...this.#auth },
          body,
          timeoutMs: Math.max(500, this.#intervalMs),
        });
        if (res.status === 401 || res.status === 403) {
          if (this.#failures++ % 10 === 0) this.#log.error('router refused the heartbeat: check the cluster token (secretsFile)', { router, status: res.status });
          return false;
        }
        if (res.status >= 200 && res.status <= 299) {
          if (this.#failures > 0) this.#log.info('heartbeat restored', { router });
          this.#failures = 0;
          return true;
        }
      } catch {
        // try the next router
      }
      this.#next++;
    }
    if (this.#failures++ % 10 === 0) this.#log.warn('no router accepted the heartbeat', { routers: this.#routers });
    return false;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    const id = this.#record().id;
    for (const router of this.#routers) {
      try {
        const res = await httpCall(`${router}/v1/nodes/${encodeURIComponent(id)}`, { method: 'DELETE', headers: this.#auth, timeoutMs: 1000 });
        if (res.status >= 200 && res.status <= 299) return;
      } catch {
        // next router
      }
    }
  }
}
