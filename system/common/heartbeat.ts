// Sends this node's NodeRecord to a router every interval. Routers are tried
// in turn, so one router going away only costs a retry; on stop the node
// deregisters so it vanishes at once instead of at expiry.
import type { Logger } from './logger.ts';
import type { NodeRecord } from './registry.ts';

export class Heartbeat {
  #routers: string[];
  #intervalMs: number;
  #record: () => NodeRecord;
  #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #next = 0;
  #failures = 0;

  constructor(opts: { routers: string[]; intervalMs: number; record: () => NodeRecord; log: Logger }) {
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
        const res = await fetch(`${router}/v1/heartbeat`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(Math.max(500, this.#intervalMs)),
        });
        await res.body?.cancel();
        if (res.ok) {
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
        const res = await fetch(`${router}/v1/nodes/${encodeURIComponent(id)}`, {
          method: 'DELETE',
          signal: AbortSignal.timeout(1000),
        });
        await res.body?.cancel();
        if (res.ok) return;
      } catch {
        // next router
      }
    }
  }
}
