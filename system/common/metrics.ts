// Prometheus metrics for a role, served as GET /metrics on its admin listener
// (audience "metrics": the metrics token or the admin token, see
// admin-http.ts). Nothing here runs on the hot path: every family reads
// figures the role already keeps (ProcessStats counters, per-connection
// counts, StageLatency buckets) when Prometheus scrapes, through collect
// callbacks. prom-client does the registry and the exposition format.
import type { ServerResponse } from 'node:http';
import { Gauge, Registry, type Metric } from 'prom-client';
import type { Routes } from './http.ts';
import type { ProcessStats } from './process-stats.ts';
import type { Bus } from './bus.ts';
import type { Logger } from './logger.ts';
import { NatsBus } from './nats-bus.ts';
import { EVENT_LOOP_TICK_MS } from './process-stats.ts';
import type { FixedBuckets } from './metrics-buckets.ts';

export const METRICS_PATH = '/metrics';
export const PREFIX = 'market_push_';

type Labels = Record<string, string | number>;
export type Sample = { labels?: Labels; value: number };

/**
 * A counter whose value is read from an existing cumulative figure at scrape
 * time (prom-client's Counter can only be incremented, so a figure the role
 * already counts is exposed through the registry's metric interface).
 */
class ReadCounter {
  readonly name: string;
  readonly help: string;
  readonly type = 'counter';
  readonly aggregator = 'sum';
  #read: () => Sample[];
  constructor(name: string, help: string, read: () => Sample[]) {
    this.name = name;
    this.help = help;
    this.#read = read;
  }
  collect(): void {}
  reset(): void {}
  get() {
    const values = this.#read().map((s) => ({ labels: s.labels ?? {}, value: s.value }));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}

/** A histogram read from fixed buckets filled elsewhere (FixedBuckets), one series per label set. */
class ReadHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  #read: () => Array<{ labels?: Labels; buckets: FixedBuckets }>;
  constructor(name: string, help: string, read: () => Array<{ labels?: Labels; buckets: FixedBuckets }>) {
    this.name = name;
    this.help = help;
    this.#read = read;
  }
  collect(): void {}
  reset(): void {}
  get() {
    const values: Array<{ metricName: string; labels: Labels; value: number }> = [];
    for (const { labels = {}, buckets } of this.#read()) {
      const snap = buckets.cumulative();
      snap.bounds.forEach((le, i) => values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le }, value: snap.counts[i]! }));
      values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: snap.count });
      values.push({ metricName: `${this.name}_sum`, labels, value: snap.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: snap.count });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}

export interface RoleMetricsOptions {
  role: string;
  id: string;
  stats: ProcessStats;
  log?: Logger;
  bus?: Bus;
}

/** One role's registry: the figures every role has, plus what the role adds with gauge/counter/histogram. */
export class RoleMetrics {
  readonly registry = new Registry();
  #stopped = false;
  #natsStatus: { stop(): void } | undefined;
  #natsEvents = new Map<string, number>();

  constructor(o: RoleMetricsOptions) {
    this.registry.setDefaultLabels({ role: o.role, node: o.id });
    const { stats } = o;
    this.gauge('up_seconds', 'Seconds since the process started', () => process.uptime());
    this.gauge('cpu_ratio', 'CPU used over the last second (1 = one core)', () => stats.cpu);
    this.gauge('resident_memory_bytes', 'Resident set size', () => process.memoryUsage.rss());
    this.gauge('heap_used_bytes', 'V8 heap in use', () => process.memoryUsage().heapUsed);
    // Event-loop delay and GC pauses come from ProcessStats' sampler and observer (one of each per process).
    this.gauge('event_loop_delay_p99_seconds', `p99 event-loop delay over the last second, beyond the ${EVENT_LOOP_TICK_MS} ms sampling tick`, () => stats.eventLoopP99Ms / 1000);
    this.gauge('gc_pause_max_seconds', 'Longest garbage-collection pause of the last second', () => stats.gcMaxPauseMs / 1000);
    this.counter('gc_pause_seconds_total', 'Garbage-collection pause time since start', () => [{ value: stats.gcPauseTotalMs / 1000 }]);
    // Every counter the role bumps, by name: nothing it counts is invisible to Prometheus.
    this.counter('role_events_total', 'Every ProcessStats counter of this role, by name (see docs/operations.md)', () =>
      Object.entries(stats.counters()).map(([name, value]) => ({ labels: { counter: name }, value })),
    );
    if (o.log) {
      const log = o.log;
      this.counter('log_dropped_lines_total', 'Log lines dropped because the log destination was backed up', () => [{ value: log.dropped }]);
    }
    if (o.bus instanceof NatsBus) this.#natsMetrics(o.bus);
  }

  /** A gauge read at scrape time: a number, or one sample per label set (labelNames: every label it uses). */
  gauge(name: string, help: string, read: () => number | Sample[], labelNames: string[] = []): void {
    const full = PREFIX + name;
    new Gauge({
      name: full,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        const v = read();
        if (!Array.isArray(v)) return void this.set(v);
        this.reset();
        for (const s of v) this.set(s.labels ?? {}, s.value);
      },
    });
  }

  /** A counter read at scrape time from a cumulative figure the role keeps. */
  counter(name: string, help: string, read: () => Sample[]): void {
    this.registry.registerMetric(new ReadCounter(PREFIX + name, help, read) as unknown as Metric);
  }

  /** A histogram read at scrape time from FixedBuckets the role fills. */
  histogram(name: string, help: string, read: () => Array<{ labels?: Labels; buckets: FixedBuckets }>): void {
    this.registry.registerMetric(new ReadHistogram(PREFIX + name, help, read) as unknown as Metric);
  }

  #natsMetrics(bus: NatsBus): void {
    const nc = bus.nc;
    const st = () => nc.stats();
    this.counter('bus_messages_total', 'Messages through this role\'s NATS connection', () => [
      { labels: { direction: 'in' }, value: st().inMsgs },
      { labels: { direction: 'out' }, value: st().outMsgs },
    ]);
    this.counter('bus_bytes_total', 'Bytes through this role\'s NATS connection', () => [
      { labels: { direction: 'in' }, value: st().inBytes },
      { labels: { direction: 'out' }, value: st().outBytes },
    ]);
    this.gauge('bus_connected', '1 while the NATS connection is up', () => (nc.isClosed() ? 0 : 1));
    // Disconnects, reconnects and errors arrive as status events; counting them costs nothing between events.
    for (const kind of ['disconnect', 'reconnect', 'error', 'staleConnection']) this.#natsEvents.set(kind, 0);
    this.counter('bus_events_total', 'NATS connection events (disconnect, reconnect, error, ...)', () =>
      [...this.#natsEvents].map(([type, value]) => ({ labels: { type }, value })),
    );
    const it = nc.status();
    this.#natsStatus = it as unknown as { stop(): void };
    void (async () => {
      try {
        for await (const s of it) {
          if (this.#stopped) break;
          this.#natsEvents.set(s.type, (this.#natsEvents.get(s.type) ?? 0) + 1);
        }
      } catch {
        // the connection closed: no more events
      }
    })();
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** GET /metrics, for the admin listener's "metrics" route group. */
  routes(): Routes {
    return {
      [`GET ${METRICS_PATH}`]: async (_req, res: ServerResponse) => {
        const body = await this.text();
        res.writeHead(200, { 'content-type': this.registry.contentType, 'cache-control': 'no-store' });
        res.end(body);
      },
    };
  }

  stop(): void {
    this.#stopped = true;
    this.#natsStatus?.stop();
    this.registry.clear();
  }
}
