// The liveness watchdog of an agent's sessions: a connection that brings no
// inbound frame of any kind (data, heartbeat, WebSocket ping) for the
// timeout is dead even though no close arrived — a black-holed link, a
// partition that healed after the gateway forgot the connection, a frozen
// gateway. One timer per agent scans every open session; a frame costs the
// session one boolean write (`rx = true`), never a clock read or a timer.
import { defaults } from '../../../system/common/config.ts';

/** Three of the gateway's heartbeat intervals (pingIntervalMs, 20 s by default): one late heartbeat is not death. */
export const DEFAULT_LIVENESS_MS = 3 * defaults.gateway().pingIntervalMs;

/** Shortest liveness a scenario may ask for: below it the scan itself would be the load. */
export const MIN_LIVENESS_MS = 100;

export interface LivenessSubject {
  /** Set by the subject on every inbound frame; the watch clears it when it looks. */
  rx: boolean;
  /** Called once when the subject has been silent for the timeout; it is no longer watched. */
  livenessExpired(): void;
}

export class LivenessWatch<T extends LivenessSubject = LivenessSubject> {
  readonly timeoutMs: number;
  readonly periodMs: number;
  readonly #now: () => number;
  readonly #autoTimer: boolean;
  /** Subject → when the watch last saw it active (the scan after its latest frame, or when it was added). */
  readonly #seen = new Map<T, number>();
  #timer: NodeJS.Timeout | undefined;

  /**
   * timeoutMs > 0. A silence is declared no earlier than timeoutMs after the
   * last frame and at most two periods later (period: a quarter of the
   * timeout, 20 ms … 1 s). With `timer: false` the caller calls scan() itself.
   */
  constructor(o: { timeoutMs: number; now?: () => number; timer?: boolean }) {
    if (!(o.timeoutMs > 0)) throw new Error(`liveness timeout must be > 0 ms, got ${o.timeoutMs}`);
    this.timeoutMs = o.timeoutMs;
    this.periodMs = Math.max(20, Math.min(1_000, Math.floor(o.timeoutMs / 4)));
    this.#now = o.now ?? (() => performance.now());
    this.#autoTimer = o.timer ?? true;
  }

  get size(): number {
    return this.#seen.size;
  }

  /** Starts watching (again, from now). The timer runs only while something is watched. */
  add(s: T): void {
    s.rx = false;
    this.#seen.set(s, this.#now());
    if (this.#autoTimer && !this.#timer) this.#timer = setInterval(() => this.scan(), this.periodMs);
  }

  delete(s: T): void {
    this.#seen.delete(s);
    if (this.#seen.size === 0) this.#stopTimer();
  }

  /** One pass: marks active subjects seen now, expires the silent ones. Returns how many expired. */
  scan(): number {
    const now = this.#now();
    const expired: T[] = [];
    for (const [s, seen] of this.#seen) {
      if (s.rx) {
        s.rx = false;
        this.#seen.set(s, now);
      } else if (now - seen >= this.timeoutMs) expired.push(s);
    }
    for (const s of expired) this.#seen.delete(s);
    if (this.#seen.size === 0) this.#stopTimer();
    // After the pass: an expiry may reconnect, and a reconnected subject is added afresh.
    for (const s of expired) s.livenessExpired();
    return expired.length;
  }

  stop(): void {
    this.#seen.clear();
    this.#stopTimer();
  }

  #stopTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
