// What a role reports about itself: CPU, event-loop delay, memory, and
// per-second rates of counters it bumps.
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

export class ProcessStats {
  #loop = monitorEventLoopDelay({ resolution: 10 });
  #lastCpu = process.cpuUsage();
  #lastAt = performance.now();
  #counters = new Map<string, number>();
  #lastCounters = new Map<string, number>();
  #rates = new Map<string, number>();
  cpu = 0;
  eventLoopP99Ms = 0;
  /** Longest garbage-collection pause of the last interval, and all pauses since start (ms). */
  gcMaxPauseMs = 0;
  gcPauseTotalMs = 0;
  #gcMax = 0;
  // GC pauses stop the whole event loop: a latency tail with no CPU cause shows up here.
  #gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      this.gcPauseTotalMs += e.duration;
      if (e.duration > this.#gcMax) this.#gcMax = e.duration;
    }
  });

  constructor() {
    this.#loop.enable();
    this.#gc.observe({ entryTypes: ['gc'] });
  }

  count(name: string, n = 1): void {
    this.#counters.set(name, (this.#counters.get(name) ?? 0) + n);
  }

  counter(name: string): number {
    return this.#counters.get(name) ?? 0;
  }

  rate(name: string): number {
    return this.#rates.get(name) ?? 0;
  }

  counters(): Record<string, number> {
    return Object.fromEntries(this.#counters);
  }

  /** Closes an interval: recomputes rates, CPU share and event-loop p99. */
  sample(): void {
    const now = performance.now();
    const secs = Math.max((now - this.#lastAt) / 1000, 1e-3);
    const cpu = process.cpuUsage(this.#lastCpu);
    this.cpu = (cpu.user + cpu.system) / 1e6 / secs;
    this.#lastCpu = process.cpuUsage();
    this.#lastAt = now;
    for (const [k, v] of this.#counters) {
      this.#rates.set(k, (v - (this.#lastCounters.get(k) ?? 0)) / secs);
      this.#lastCounters.set(k, v);
    }
    this.eventLoopP99Ms = this.#loop.percentile(99) / 1e6;
    this.#loop.reset();
    this.gcMaxPauseMs = this.#gcMax;
    this.#gcMax = 0;
  }

  rssMb(): number {
    return process.memoryUsage.rss() / 1024 / 1024;
  }

  stop(): void {
    this.#loop.disable();
    this.#gc.disconnect();
  }
}
