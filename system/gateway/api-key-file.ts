// The gateway's view of the API-key file (api-keys.ts), re-read when it
// changes: keys the operator adds work without a restart; a file that turns
// unreadable refuses every key (and says why in the log) until it is fixed.
import { statSync } from 'node:fs';
import { readApiKeys, type ApiKeyEntry } from '../common/api-keys.ts';
import type { Logger } from '../common/logger.ts';

export class ApiKeyFile {
  readonly path: string;
  #log: Logger;
  #cached: { mtimeMs: number; size: number; keys: ApiKeyEntry[] } | undefined;

  constructor(path: string, log: Logger) {
    this.path = path;
    this.#log = log;
  }

  /** The keys, or undefined when the file cannot be read (every request is then refused). */
  keys(): ApiKeyEntry[] | undefined {
    try {
      const st = statSync(this.path);
      if (this.#cached && this.#cached.mtimeMs === st.mtimeMs && this.#cached.size === st.size) return this.#cached.keys;
      this.#cached = { mtimeMs: st.mtimeMs, size: st.size, keys: readApiKeys(this.path) };
      return this.#cached.keys;
    } catch (err) {
      this.#cached = undefined;
      this.#log.warn('API-key file unreadable: requests with API keys refused', { err: String(err) });
      return undefined;
    }
  }
}
