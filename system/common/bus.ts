// The market-data bus. Real clusters use NATS (nats-bus.ts); the embedded
// default of `pushctl up` uses an in-process bus with the same subject rules.

export type BusHandler = (subject: string, data: Uint8Array) => void;

export interface BusSubscription {
  unsubscribe(): void;
}

export interface Bus {
  readonly kind: 'nats' | 'memory';
  publish(subject: string, data: Uint8Array): void;
  subscribe(subject: string, handler: BusHandler): BusSubscription;
  /** Resolves once everything published so far has reached the server. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** NATS subject matching: `*` matches one token, `>` one or more trailing tokens. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

/** In-process bus for the embedded default and unit tests. Delivery is asynchronous, as on a network. */
export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  #subs = new Set<{ pattern: string; handler: BusHandler }>();
  #pending: Array<[string, Uint8Array]> = [];
  #scheduled = false;

  publish(subject: string, data: Uint8Array): void {
    this.#pending.push([subject, data]);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#deliver());
    }
  }

  #deliver(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    for (const [subject, data] of batch) {
      for (const sub of this.#subs) {
        if (!subjectMatches(sub.pattern, subject)) continue;
        try {
          sub.handler(subject, data);
        } catch (err) {
          console.error(`memory bus handler for ${sub.pattern} failed:`, err);
        }
      }
    }
  }

  subscribe(pattern: string, handler: BusHandler): BusSubscription {
    const sub = { pattern, handler };
    this.#subs.add(sub);
    return { unsubscribe: () => this.#subs.delete(sub) };
  }

  async flush(): Promise<void> {
    await new Promise((r) => setImmediate(r));
  }

  async close(): Promise<void> {
    this.#subs.clear();
    this.#pending = [];
  }
}
