// listenKeys for Binance's user-data streams, shared by every gateway in the
// NATS KV bucket push_listen_keys: `k.<listenKey>` → {user, expiresAt},
// `u.<user>` → the user's active listenKey (Binance: one per account; a POST
// for an account with an active key returns it and extends it). Random keys
// (64 alphanumerics, as Binance's) checked against the bucket, not signed
// tokens: a keepalive must extend and a DELETE must end a key on every
// gateway at once, which a self-contained signed key cannot do. Each
// gateway watches the bucket, so it sees keepalives and deletes made on
// another gateway (user-data.ts closes the streams of a deleted key).
import { randomBytes } from 'node:crypto';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../common/logger.ts';
import { LISTEN_KEY_RE } from './protocol.ts';

export { LISTEN_KEY_RE };

export const LISTEN_KEYS_BUCKET = 'push_listen_keys';
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export interface ListenKeyRecord {
  user: string;
  expiresAt: number;
}

export function newListenKey(): string {
  const bytes = randomBytes(64);
  let out = '';
  // 256 % 62 ≠ 0: rejection keeps the letters uniform.
  for (const b of bytes) if (b < 248) out += ALPHABET[b % 62];
  return out.length >= 64 ? out.slice(0, 64) : out + newListenKey().slice(0, 64 - out.length);
}

export class ListenKeys {
  readonly ttlMs: number;
  #kv: KV;
  #log: Logger;
  /** Every gateway's view of the bucket, kept by a watch. */
  #cache = new Map<string, ListenKeyRecord>();
  #watch: { stop(): void } | undefined;
  #onGone: (key: string) => void = () => {};

  private constructor(kv: KV, ttlMs: number, log: Logger) {
    this.#kv = kv;
    this.ttlMs = ttlMs;
    this.#log = log;
  }

  /** `replicas`: copies of the bucket in a NATS cluster, so listenKeys outlive a node. */
  static async open(nc: NatsConnection, ttlMs: number, log: Logger, replicas = 1): Promise<ListenKeys> {
    // Entries are rewritten by every keepalive, so none alive is older than ttl; the bucket's age limit only sweeps dead ones.
    const kv = await new Kvm(nc).create(LISTEN_KEYS_BUCKET, { history: 1, replicas, ttl: Math.max(2 * 3_600_000, 2 * ttlMs) });
    const keys = new ListenKeys(kv, ttlMs, log);
    await keys.#startWatch();
    return keys;
  }

  /** Called with a listenKey deleted on any gateway. */
  onGone(f: (key: string) => void): void {
    this.#onGone = f;
  }

  async #startWatch(): Promise<void> {
    const it = await this.#kv.watch({ key: 'k.>' });
    this.#watch = it;
    void (async () => {
      try {
        for await (const e of it as AsyncIterable<KvEntry>) {
          const key = e.key.slice(2);
          if (e.operation === 'PUT') {
            const rec = parse(e.string());
            if (rec) this.#cache.set(key, rec);
          } else {
            this.#cache.delete(key);
            this.#onGone(key);
          }
        }
      } catch (err) {
        this.#log.warn('listenKey watch ended', { err: String(err) });
      }
    })();
  }

  /** The key's record from the bucket itself (not the cache): for a key just made on another gateway. */
  async get(key: string): Promise<ListenKeyRecord | undefined> {
    if (!LISTEN_KEY_RE.test(key)) return undefined;
    const e = await this.#kv.get(`k.${key}`);
    const rec = e && e.operation === 'PUT' ? parse(e.string()) : undefined;
    return rec && rec.expiresAt > Date.now() ? rec : undefined;
  }

  cached(key: string): ListenKeyRecord | undefined {
    return this.#cache.get(key);
  }

  /** The user's active key extended, or a new one. */
  async create(user: string): Promise<string> {
    const current = await this.#kv.get(`u.${user}`);
    const existing = current && current.operation === 'PUT' ? current.string() : undefined;
    if (existing && (await this.get(existing))?.user === user) {
      await this.#put(existing, user);
      return existing;
    }
    const key = newListenKey();
    await this.#put(key, user);
    await this.#kv.put(`u.${user}`, key);
    return key;
  }

  /** Extends a live key of this user; false when it does not exist (or expired, or is another user's). */
  async keepAlive(key: string, user: string): Promise<boolean> {
    const rec = await this.get(key);
    if (!rec || rec.user !== user) return false;
    await this.#put(key, user);
    return true;
  }

  async close(key: string, user: string): Promise<boolean> {
    const rec = await this.get(key);
    if (!rec || rec.user !== user) return false;
    await this.#kv.delete(`k.${key}`);
    await this.#kv.delete(`u.${user}`);
    return true;
  }

  /** Removes an expired key (after its streams got listenKeyExpired). */
  async expire(key: string): Promise<void> {
    const rec = await this.get(key);
    if (rec) return; // extended meanwhile
    await this.#kv.delete(`k.${key}`);
  }

  async #put(key: string, user: string): Promise<void> {
    await this.#kv.put(`k.${key}`, JSON.stringify({ user, expiresAt: Date.now() + this.ttlMs } satisfies ListenKeyRecord));
  }

  stop(): void {
    this.#watch?.stop();
  }
}

function parse(s: string): ListenKeyRecord | undefined {
  try {
    const r = JSON.parse(s) as ListenKeyRecord;
    return typeof r.user === 'string' && typeof r.expiresAt === 'number' ? r : undefined;
  } catch {
    return undefined;
  }
}
