// Inbound rate limit per connection and admission control per gateway.
export class TokenBucket {
  #rate: number;
  #burst: number;
  #tokens: number;
  #last: number;

  constructor(ratePerSec: number, burst: number, now = performance.now()) {
    this.#rate = ratePerSec;
    this.#burst = burst;
    this.#tokens = burst;
    this.#last = now;
  }

  /** A new rate and burst from now on (live config); tokens already saved never exceed the new burst. */
  setRate(ratePerSec: number, burst: number, now = performance.now()): void {
    this.take(0, now);
    this.#rate = ratePerSec;
    this.#burst = burst;
    this.#tokens = Math.min(this.#tokens, burst);
  }

  take(n = 1, now = performance.now()): boolean {
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
    this.#last = now;
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }
}
