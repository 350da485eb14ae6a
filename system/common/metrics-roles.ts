// What each role adds to its RoleMetrics. Every family reads figures the
// role already keeps, at scrape time; the shapes below are structural so
// this module imports nothing from the roles (imports flow one way).
import type { ProcessStats } from './process-stats.ts';
import type { FixedBuckets } from './metrics-buckets.ts';
import type { RoleMetrics, Sample } from './metrics.ts';

const sum = (stats: ProcessStats, ...names: string[]) => names.reduce((n, k) => n + stats.counter(k), 0);

/** A client connection as the gateway's metrics read it (ClientConn). */
export interface MeteredConn {
  readonly format: string;
  readonly transport: object;
  readonly topics: { readonly size: number };
  readonly state: string;
  readonly queuedBytes: number;
  readonly framesOut: number;
  readonly bytesOut: number;
  readonly requests: number;
}

/**
 * The client protocol of a connection: WebSocket JSON or protobuf, raw TCP,
 * gRPC, gRPC-web (which shares the gRPC frame format, so its transport tells).
 */
export function protocolOf(c: Pick<MeteredConn, 'format' | 'transport'>): string {
  switch (c.format) {
    case 'raw':
    case 'combined':
      return 'ws';
    case 'protobuf':
      return 'ws-protobuf';
    case 'grpc':
      return c.transport.constructor.name === 'GrpcWebTransport' ? 'grpc-web' : 'grpc';
    default:
      return c.format;
  }
}

export const PROTOCOLS = ['ws', 'ws-protobuf', 'tcp', 'grpc', 'grpc-web'] as const;

export interface GatewaySources {
  stats: ProcessStats;
  conns: () => Iterable<MeteredConn>;
  topics: () => number;
  fanoutPending: () => number;
  fanoutSlices: FixedBuckets;
  /** pt → the event reached the gateway; pt → written to its last subscriber's socket. */
  arrival: FixedBuckets;
  egress: FixedBuckets;
  restInFlight: () => number;
  draining: () => boolean;
}

interface Totals {
  frames: number;
  bytes: number;
  requests: number;
}
const zero = (): Totals => ({ frames: 0, bytes: 0, requests: 0 });

/**
 * The gateway's families. Per-protocol counters are what closed connections
 * sent (added once, when each closes: `closed`) plus what the live ones have
 * sent so far (summed at scrape), so they never go down.
 */
export function gatewayMetrics(m: RoleMetrics, s: GatewaySources): { closed(c: MeteredConn): void } {
  const gone = new Map<string, Totals>(PROTOCOLS.map((p) => [p, zero()]));
  type Row = Totals & { conns: number; subs: number; queued: number; backlogged: number; resyncing: number };
  const row = (p: string): Row => ({ ...(gone.get(p) ?? zero()), conns: 0, subs: 0, queued: 0, backlogged: 0, resyncing: 0 });
  // One pass over the connections per scrape, shared by every family of that scrape (cleared on the next
  // turn): 100k connections cost one walk, and counters and gauges all describe the same instant.
  let snapshot: Map<string, Row> | undefined;
  const live = (): Map<string, Row> => {
    if (snapshot) return snapshot;
    const by = new Map<string, Row>(PROTOCOLS.map((p) => [p, row(p)]));
    for (const c of s.conns()) {
      const p = protocolOf(c);
      let t = by.get(p);
      if (!t) by.set(p, (t = row(p)));
      t.frames += c.framesOut;
      t.bytes += c.bytesOut;
      t.requests += c.requests;
      t.conns++;
      t.subs += c.topics.size;
      t.queued += c.queuedBytes;
      if (c.state === 'backlogged') t.backlogged++;
      else if (c.state === 'resyncing') t.resyncing++;
    }
    snapshot = by;
    setImmediate(() => (snapshot = undefined));
    return by;
  };
  const perProtocol = (pick: (t: Row) => number): Sample[] => [...live()].map(([protocol, t]) => ({ labels: { protocol }, value: pick(t) }));
  const total = (k: keyof Totals) => (t: Totals) => t[k];

  m.gauge('connections', 'Client connections open now, by protocol', () => perProtocol((t) => t.conns), ['protocol']);
  m.gauge('subscriptions', 'Client subscriptions (connection × topic) now, by protocol', () => perProtocol((t) => t.subs), ['protocol']);
  m.gauge('topics', 'Topics with at least one subscriber on this gateway', s.topics);
  m.gauge('send_queue_bytes', 'Bytes queued for clients (gateway queue + socket buffer), by protocol', () => perProtocol((t) => t.queued), ['protocol']);
  m.gauge('slow_connections', 'Connections behind: backlogged (socket backed up, conflating) or resyncing (queue dropped)', () =>
    [...live()].flatMap(([protocol, t]) => [
      { labels: { protocol, state: 'backlogged' }, value: t.backlogged },
      { labels: { protocol, state: 'resyncing' }, value: t.resyncing },
    ]), ['protocol', 'state']);
  m.gauge('fanout_pending', 'Messages waiting for (or in) their fan-out', s.fanoutPending);
  m.gauge('rest_in_flight', 'Kline history requests being proxied to servers', s.restInFlight);
  m.gauge('draining', '1 while the gateway is draining', () => (s.draining() ? 1 : 0));
  m.counter('messages_out_total', 'Frames written to clients, by protocol (control frames included)', () => perProtocol(total('frames')));
  m.counter('bytes_out_total', 'Bytes written to clients, by protocol', () => perProtocol(total('bytes')));
  m.counter('messages_in_total', 'Messages received: client requests by protocol, market events from push-servers (protocol "link")', () => [
    ...perProtocol(total('requests')),
    { labels: { protocol: 'link' }, value: s.stats.counter('msgs_in') },
  ]);
  m.counter('connections_opened_total', 'Client connections accepted', () => [{ value: s.stats.counter('connections_opened') }]);
  m.counter('resyncs_total', 'Resyncs: a client past its queue cap (slow_client), or a topic the push-server could not continue (upstream)', () => [
    { labels: { cause: 'slow_client' }, value: s.stats.counter('resyncs') },
    { labels: { cause: 'upstream' }, value: s.stats.counter('upstream_resyncs') },
  ]);
  m.counter('slow_client_closes_total', 'Clients disconnected for not keeping up: stuck past the grace period, or reading too far behind', () => [
    { labels: { reason: 'stuck' }, value: s.stats.counter('slow_disconnects') },
    { labels: { reason: 'lag' }, value: s.stats.counter('lag_disconnects') },
  ]);
  m.counter('gaps_total', 'Sequence gaps seen on topics (each is filled or announced as a resync, never skipped silently)', () => [
    { labels: { source: 'link' }, value: s.stats.counter('gaps') },
    { labels: { source: 'upstream' }, value: s.stats.counter('upstream_gaps') },
  ]);
  m.counter('gap_fills_total', 'Gaps filled from a push-server\'s history', () => [{ value: s.stats.counter('gaps_filled') }]);
  m.counter('client_errors_total', 'Refused or failed client actions, by kind', () =>
    ['rejected_upgrades', 'auth_failures', 'auth_expired', 'rate_limited', 'request_errors', 'idle_timeouts', 'socket_errors', 'hello_timeouts'].map((kind) => ({
      labels: { kind },
      value: s.stats.counter(kind),
    })),
  );
  m.histogram('latency_seconds', 'Intended publish time (feed) to a stage: arrival at the gateway, or written to every subscriber (egress: end to end inside the cluster)', () => [
    { labels: { stage: 'arrival' }, buckets: s.arrival },
    { labels: { stage: 'egress' }, buckets: s.egress },
  ]);
  m.histogram('fanout_slice_seconds', 'How long one fan-out slice held the event loop', () => [{ buckets: s.fanoutSlices }]);
  return {
    closed(c) {
      const t = gone.get(protocolOf(c)) ?? zero();
      t.frames += c.framesOut;
      t.bytes += c.bytesOut;
      t.requests += c.requests;
      gone.set(protocolOf(c), t);
    },
  };
}

export interface ServerSources {
  stats: ProcessStats;
  /** Gateway link streams and their counts. */
  streams: () => Iterable<{ readonly topics: { readonly size: number }; readonly eventsOut: number; readonly overflows: number; readonly queuedBytes: number }>;
  topicsKnown: () => number;
  topicsBound: () => number;
  fanoutPending: () => number;
  fanoutSlices: FixedBuckets;
  /** pt → the server read the event off the bus. */
  busLatency: FixedBuckets;
  /** HistoryService.stats(): archiver backlog and store failures. */
  history: () => Record<string, unknown>;
  /** Kline history reads that failed, by tier (TieredReader.failures). */
  readFailures: () => ReadonlyMap<string, number>;
}

export function serverMetrics(m: RoleMetrics, s: ServerSources): void {
  const streams = () => {
    let n = 0;
    let subs = 0;
    let overflows = 0;
    let queued = 0;
    for (const x of s.streams()) {
      n++;
      subs += x.topics.size;
      overflows += x.overflows;
      queued += x.queuedBytes;
    }
    return { n, subs, overflows, queued };
  };
  const num = (v: unknown) => (typeof v === 'number' ? v : 0);
  m.gauge('connections', 'Gateway link streams open now', () => [{ labels: { protocol: 'link' }, value: streams().n }], ['protocol']);
  m.gauge('subscriptions', 'Topic subscriptions across the gateway streams', () => [{ labels: { protocol: 'link' }, value: streams().subs }], ['protocol']);
  m.gauge('topics', 'Topics this server holds history for', s.topicsKnown);
  m.gauge('topics_bound', 'Topics with at least one gateway stream', s.topicsBound);
  m.gauge('fanout_pending', 'Messages waiting for (or in) their fan-out', s.fanoutPending);
  m.gauge('send_queue_bytes', 'Bytes queued for gateways on their link streams', () => [{ labels: { protocol: 'link' }, value: streams().queued }], ['protocol']);
  m.gauge('store_backlog', 'Closed klines waiting to be written to Redis', () => num(s.history().redisBacklog));
  m.gauge('store_up', '1 while a history tier answers (0: degraded, routed around)', () => {
    const h = s.history();
    const degraded = Array.isArray(h.degraded) ? (h.degraded as string[]) : [];
    const tiers = ['redis', ...(typeof h.cold === 'string' ? [h.cold] : [])].filter((t) => t !== 'redis' || h.redis !== undefined);
    return tiers.map((store) => ({ labels: { store }, value: degraded.includes(store) ? 0 : 1 }));
  }, ['store']);
  m.counter('messages_in_total', 'Market events received from the bus', () => [{ labels: { protocol: 'nats' }, value: s.stats.counter('msgs_in') }]);
  // events_out is summed from the streams once a second (server.ts): read it from there.
  m.counter('messages_out_total', 'Events sent to gateways (once per gateway stream)', () => [{ labels: { protocol: 'link' }, value: s.stats.counter('events_out') }]);
  m.counter('gaps_total', 'Sequence gaps in what the bus delivered', () => [{ labels: { source: 'bus' }, value: s.stats.counter('input_gaps') }]);
  m.gauge('stream_overflows', 'Queue overflows of the open gateway streams (each makes the gateway resync)', () => streams().overflows);
  m.counter('store_errors_total', 'History store failures: writes (the archiver retries) and reads (routed around, or refused with a clear error)', () => {
    const h = s.history();
    return [
      { labels: { store: 'redis', op: 'write' }, value: num(h.redisFailures) },
      { labels: { store: 'cold', op: 'write' }, value: num(h.coldFailures) },
      ...[...s.readFailures()].map(([store, value]) => ({ labels: { store, op: 'read' }, value })),
    ];
  });
  m.counter('bad_events_total', 'Bus messages that did not decode', () => [{ value: sum(s.stats, 'bad_events') }]);
  m.histogram('fanout_slice_seconds', 'How long one fan-out slice held the event loop', () => [{ buckets: s.fanoutSlices }]);
  m.histogram('latency_seconds', 'Intended publish time (feed) to a stage: "server", the push-server read it off the bus', () => [{ labels: { stage: 'server' }, buckets: s.busLatency }]);
}

export function routerMetrics(m: RoleMetrics, s: { stats: ProcessStats }): void {
  m.counter('messages_in_total', 'HTTP requests answered (routes, registry calls)', () => [{ labels: { protocol: 'http' }, value: s.stats.counter('requests') }]);
  m.counter('registry_heartbeats_total', 'Node heartbeats received', () => [{ value: s.stats.counter('heartbeats') }]);
  m.counter('gateway_probes_total', 'Health probes of registered gateways, and gateways found gone', () => [
    { labels: { result: 'probe' }, value: s.stats.counter('gateway_probes') },
    { labels: { result: 'gone' }, value: s.stats.counter('gateways_gone') },
  ]);
}

export function controlMetrics(m: RoleMetrics, s: { stats: ProcessStats }): void {
  m.counter('messages_in_total', 'HTTP requests answered', () => [{ labels: { protocol: 'http' }, value: s.stats.counter('requests') }]);
}

export function feedMetrics(m: RoleMetrics, s: { stats: ProcessStats; symbols: () => number; rate: () => number; lagMs: () => number }): void {
  m.counter('messages_out_total', 'Market events published to the bus', () => [{ labels: { protocol: 'nats' }, value: s.stats.counter('events') }]);
  m.counter('bytes_out_total', 'Bytes published to the bus', () => [{ labels: { protocol: 'nats' }, value: s.stats.counter('bytes') }]);
  m.gauge('feed_symbols', 'Symbols the feed publishes', s.symbols);
  m.gauge('feed_rate', 'Configured trades per second per symbol', s.rate);
  m.gauge('feed_lag_seconds', 'How far the feed runs behind its schedule', () => s.lagMs() / 1000);
}
