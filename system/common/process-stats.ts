// What a role reports about itself: CPU, event-loop delay, memory, and
// per-second rates of counters it bumps.
import { monitorEventLoopDelay, performance, PerformanceObserver, type ELDHistogram } from 'node:perf_hooks';

/**
 * The event-loop sampler's tick (ms). Node's histogram records the whole time
 * between two ticks, so an idle loop reads the tick itself (10–12 ms); the
 * delay is what lies beyond it. A finer tick would cost every idle role CPU.
 */
export const EVENT_LOOP_TICK_MS = 10;
/**
 * The tick while the loop is idle: 100 wake-ups a second in each of a
 * cluster's ~8 node processes were a third of an idle cluster's CPU
 * (bench:idle). A block of the loop still shows (less up to one tick) and
 * makes the loop busy, which brings the fine tick back at the next sample.
 */
export const IDLE_EVENT_LOOP_TICK_MS = 100;
// Idle: the loop ran code less than this share of each of the last IDLE_SAMPLES intervals.
const IDLE_UTILIZATION = 0.05;
export const IDLE_SAMPLES = 3;

export class ProcessStats {
  #tickMs = EVENT_LOOP_TICK_MS;
  #loop: ELDHistogram = monitorEventLoopDelay({ resolution: EVENT_LOOP_TICK_MS });
  #lastElu = performance.eventLoopUtilization();
  #quietSamples = 0;
  #lastCpu = process.cpuUsage();
  #lastAt = performance.now();
  #counters = new Map<string, number>();
  #lastCounters = new Map<string, number>();
  #rates = new Map<string, number>();
  cpu = 0;
  /** p99 of how late the event loop ran its sampling tick over the last interval (0: on time). */
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
    this.eventLoopP99Ms = this.#loop.count > 0 ? Math.max(0, this.#loop.percentile(99) / 1e6 - this.#tickMs) : 0;
    this.#loop.reset();
    const elu = performance.eventLoopUtilization(this.#lastElu);
    this.#lastElu = performance.eventLoopUtilization();
    this.#quietSamples = elu.utilization < IDLE_UTILIZATION ? this.#quietSamples + 1 : 0;
    const tick = this.#quietSamples >= IDLE_SAMPLES ? IDLE_EVENT_LOOP_TICK_MS : EVENT_LOOP_TICK_MS;
    if (tick !== this.#tickMs) this.#retick(tick);
    this.gcMaxPauseMs = this.#gcMax;
    this.#gcMax = 0;
  }

  /** The current sampling tick (ms): EVENT_LOOP_TICK_MS while the loop works, IDLE_EVENT_LOOP_TICK_MS while it idles. */
  get eventLoopTickMs(): number {
    return this.#tickMs;
  }

  #retick(tickMs: number): void {
    this.#loop.disable();
    this.#tickMs = tickMs;
    this.#loop = monitorEventLoopDelay({ resolution: tickMs });
    this.#loop.enable();
  }

  rssMb(): number {
    return process.memoryUsage.rss() / 1024 / 1024;
  }

  stop(): void {
    this.#loop.disable();
    this.#gc.disconnect();
  }
}
