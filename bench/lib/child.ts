// A benchmark helper process (load clients, raw broadcast server) forked with
// an IPC channel: requests carry an id and wait, bounded, for the reply with
// the same id. kill() ends the process and waits for it to be gone.
import { fork, type ChildProcess } from 'node:child_process';

export interface IpcMessage {
  type: string;
  id?: number;
  [k: string]: unknown;
}

export class BenchChild {
  readonly name: string;
  readonly proc: ChildProcess;
  #nextId = 1;
  #pending = new Map<number, { resolve(m: IpcMessage): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  #typeWaiters = new Map<string, Array<(m: IpcMessage) => void>>();
  #exited: Promise<void>;
  #stderr: string[] = [];

  constructor(name: string, entry: string, args: string[] = []) {
    this.name = name;
    this.proc = fork(entry, args, { stdio: ['ignore', 'inherit', 'pipe', 'ipc'], serialization: 'json' });
    this.proc.stderr!.on('data', (d: Buffer) => {
      this.#stderr.push(d.toString());
      if (this.#stderr.length > 50) this.#stderr.shift();
    });
    this.#exited = new Promise((resolve) => this.proc.once('exit', () => resolve()));
    this.proc.on('message', (m: IpcMessage) => {
      if (typeof m.id === 'number' && this.#pending.has(m.id)) {
        const p = this.#pending.get(m.id)!;
        this.#pending.delete(m.id);
        clearTimeout(p.timer);
        if (m.type === 'error') p.reject(new Error(`${this.name}: ${String(m.message)}`));
        else p.resolve(m);
        return;
      }
      const waiters = this.#typeWaiters.get(m.type);
      if (waiters?.length) for (const w of waiters.splice(0)) w(m);
    });
    this.proc.once('exit', (code, signal) => {
      const err = new Error(`${this.name} exited (${signal ?? code}) ${this.#stderr.join('').slice(-2000)}`);
      for (const p of this.#pending.values()) {
        clearTimeout(p.timer);
        p.reject(err);
      }
      this.#pending.clear();
    });
  }

  get pid(): number {
    return this.proc.pid ?? 0;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Sends a request and waits for its reply (same id), at most timeoutMs. */
  request<T extends IpcMessage>(msg: IpcMessage, timeoutMs: number): Promise<T> {
    if (!this.alive) return Promise.reject(new Error(`${this.name} is not running`));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.name}: no reply to "${msg.type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (m: IpcMessage) => void, reject, timer });
      this.proc.send({ ...msg, id });
    });
  }

  /** Waits for an unsolicited message of this type (e.g. "ready"), at most timeoutMs. */
  waitFor<T extends IpcMessage>(type: string, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no "${type}" within ${timeoutMs} ms ${this.#stderr.join('').slice(-2000)}`)), timeoutMs);
      const onExit = () => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited before "${type}": ${this.#stderr.join('').slice(-2000)}`));
      };
      this.proc.once('exit', onExit);
      const list = this.#typeWaiters.get(type) ?? [];
      list.push((m) => {
        clearTimeout(timer);
        this.proc.off('exit', onExit);
        resolve(m as T);
      });
      this.#typeWaiters.set(type, list);
    });
  }

  async kill(): Promise<void> {
    if (!this.alive) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3_000);
    await this.#exited;
    clearTimeout(t);
  }
}

/** In a child: exits on its own after maxMs, and when the parent goes away. */
export function guardChild(maxMs: number, cleanup: () => void): void {
  const bye = () => {
    try {
      cleanup();
    } finally {
      process.exit(0);
    }
  };
  setTimeout(bye, maxMs).unref();
  process.on('disconnect', bye);
  process.on('SIGTERM', bye);
  process.on('SIGINT', bye);
}

export function reply(req: IpcMessage, body: Omit<IpcMessage, 'id'>): void {
  process.send?.({ ...body, id: req.id });
}
