// Pass/fail rules such as `p99<50ms`, `errors<1%`, `gaps==0`, evaluated
// against the run's final figures. Unknown metrics are refused up front, so a
// typo cannot silently pass a CI run.

export interface Threshold {
  text: string;
  metric: string;
  op: '<' | '<=' | '>' | '>=' | '==';
  value: number;
  /** The value is a percentage of the metric's base (errors per operation). */
  percent: boolean;
}

export interface ThresholdResult extends Threshold {
  actual: number;
  pass: boolean;
}

/** What each metric means; latency metrics are in ms. */
export const METRICS: Record<string, string> = {
  p50: 'end-to-end latency p50 (ms)',
  p90: 'end-to-end latency p90 (ms)',
  p99: 'end-to-end latency p99 (ms)',
  'p99.9': 'end-to-end latency p99.9 (ms)',
  max: 'end-to-end latency max (ms)',
  mean: 'end-to-end latency mean (ms)',
  connect_p99: 'connect time p99 (ms), router lookup included',
  connect_max: 'connect time max (ms)',
  errors: 'errors; with % a share of operations (connects + subscribes + unsubscribes)',
  gaps: 'messages missing from per-topic sequences',
  resyncs: 'resync notices received',
  reconnects: 'unplanned reconnects',
  unplanned_closes: 'connections the server side closed or lost (not a captured close)',
  failed_connections: 'sessions that never connected',
  msgs: 'market messages received',
  rate: 'market messages received per second',
  agents_failed: 'agents that died or never reported',
  http_errors: 'HTTP non-OK responses and socket errors; with % a share of requests',
  http_p99: 'HTTP latency p99 (ms)',
  http_rps: 'HTTP requests per second',
};

/** Metrics that also exist per phase of a run with faults: `before.p99`, `during.gaps`, `after.reconnects`. */
export const PHASE_METRICS = ['p50', 'p90', 'p99', 'p99.9', 'max', 'rate', 'gaps', 'resyncs', 'reconnects', 'errors', 'failed_connections', 'unplanned_closes'];
export const PHASES = ['before', 'during', 'after'];

const RE = /^\s*((?:[a-z]+\.)?[a-z_][a-z0-9_]*(?:\.\d+)?)\s*(<=|>=|==|<|>)\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|%)?\s*$/i;

export function parseThreshold(text: string): Threshold {
  const m = RE.exec(text);
  if (!m) throw new Error(`threshold "${text}": expected <metric><op><value>[unit], e.g. p99<50ms, errors<1%, gaps==0, during.p99<500ms`);
  const full = m[1]!.toLowerCase();
  const dot = full.indexOf('.');
  const phase = dot > 0 && PHASES.includes(full.slice(0, dot)) ? full.slice(0, dot) : undefined;
  const base = (phase ? full.slice(dot + 1) : full).replace(/^p999$/, 'p99.9');
  const metric = phase ? `${phase}.${base}` : base;
  if (phase && !PHASE_METRICS.includes(base))
    throw new Error(`threshold "${text}": no per-phase metric "${base}" (${phase}.${PHASE_METRICS.join(`, ${phase}.`)})`);
  if (!phase && !(metric in METRICS)) throw new Error(`threshold "${text}": unknown metric "${metric}" (${Object.keys(METRICS).join(', ')}; per phase of a run with faults: before.|during.|after. + ${PHASE_METRICS.join(', ')})`);
  const unit = m[4]?.toLowerCase();
  let value = Number(m[3]);
  if (unit === 'us' || unit === 'µs') value /= 1000;
  else if (unit === 's') value *= 1000;
  const percent = unit === '%';
  if (percent && metric !== 'errors' && metric !== 'http_errors') throw new Error(`threshold "${text}": % only applies to errors and http_errors`);
  return { text: text.trim(), metric, op: m[2] as Threshold['op'], value, percent };
}

/** Figures a threshold can read: `figures[metric]`, plus the bases of percentage metrics. */
export interface ThresholdFigures {
  [metric: string]: number;
  operations: number;
  http_requests: number;
}

/** A metric the figures do not have (a phase the run did not have) is NaN, and fails whatever the rule. */
export function evaluate(ts: Threshold[], f: ThresholdFigures): ThresholdResult[] {
  return ts.map((t) => {
    let actual = f[t.metric] ?? 0;
    if (t.percent) {
      const base = t.metric === 'errors' ? f.operations : f.http_requests;
      actual = base > 0 ? (actual / base) * 100 : 0;
    }
    actual = Math.round(actual * 1000) / 1000;
    const pass =
      t.op === '<' ? actual < t.value : t.op === '<=' ? actual <= t.value : t.op === '>' ? actual > t.value : t.op === '>=' ? actual >= t.value : actual === t.value;
    return { ...t, actual, pass };
  });
}
