// Promises that settle once a condition on a test client's received state
// holds: the client calls wake() whenever that state changes.
export class Waiters {
  #pending = new Set<() => void>();

  wake(): void {
    for (const w of this.#pending) w();
  }

  /** Resolves when cond() holds (checked now and at every wake), else rejects with timeoutError() after timeoutMs. */
  async until(cond: () => boolean, timeoutMs: number, timeoutError: () => Error): Promise<void> {
    if (cond()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(check);
        reject(timeoutError());
      }, timeoutMs);
      const check = () => {
        if (!cond()) return;
        clearTimeout(timer);
        this.#pending.delete(check);
        resolve();
      };
      this.#pending.add(check);
    });
  }
}
