// `bench:fanout --mix`: which stream kinds the load clients subscribe to, and
// how many frames per second each kind carries at a given trade rate.
// Symbols go round-robin exactly as planSubscriptions does; each subscription's
// kind comes from a seeded shuffle of exactly-weighted kinds, so the mix is
// reproducible and its proportions exact (largest remainder), not sampled.
import { planSubscriptions, type SubscriptionPlan } from './subscriptions.ts';

/** Kinds the simulator feed publishes itself (derived ones would need the server's pt rules modelled too). */
export const MIX_KINDS = ['trade', 'ticker', 'miniTicker', 'bookTicker', 'depth', 'depth@100ms', 'kline_1m'] as const;
export type MixKind = (typeof MIX_KINDS)[number];

/**
 * `--mix population`: what a real client population mostly watches. Price
 * lists and watchlists (ticker, miniTicker) and order-book widgets / ccxt's
 * watchOrderBook (depth@100ms) dominate; trade tapes, bots on bookTicker and
 * 1m charts are the minority (docs/bench.md).
 */
export const POPULATION_MIX = 'ticker:35,depth@100ms:30,trade:15,bookTicker:10,kline_1m:5,miniTicker:5';

export type Mix = Array<{ kind: MixKind; weight: number }>;

export function parseMix(spec: string): Mix {
  const text = spec.trim() === 'population' ? POPULATION_MIX : spec.trim();
  if (!text) throw new Error('--mix: empty; give KIND:WEIGHT,… or "population"');
  const out: Mix = [];
  for (const part of text.split(',')) {
    const m = /^([A-Za-z0-9_@]+):(\d+(?:\.\d+)?)$/.exec(part.trim());
    if (!m) throw new Error(`--mix: "${part}" is not KIND:WEIGHT (e.g. ticker:40)`);
    const kind = MIX_KINDS.find((k) => k === m[1]);
    if (!kind) throw new Error(`--mix: unknown stream kind "${m[1]}" (supported: ${MIX_KINDS.join(', ')})`);
    if (out.some((x) => x.kind === kind)) throw new Error(`--mix: "${kind}" given twice`);
    const weight = Number(m[2]);
    if (!(weight > 0)) throw new Error(`--mix: the weight of "${kind}" must be above 0`);
    out.push({ kind, weight });
  }
  return out;
}

/** The feed's cadences the bench starts it with (bench/lib/pipeline.ts). */
export interface FeedCadences {
  tickerMs: number;
  klineMs: number;
}

/**
 * Frames per second one symbol's stream of this kind carries at `rate`
 * trades/s (system/feed/simulator.ts): depth@100ms and bookTicker go out on
 * 100 ms ticks that saw a trade (the top moves with every trade), the 1000 ms
 * diff on 1 s ticks that did, in-progress 1m candles every second kline tick
 * plus one close a minute. Checked against the simulator by a unit test.
 */
export function kindRate(kind: MixKind, rate: number, c: FeedCadences): number {
  switch (kind) {
    case 'trade':
      return rate;
    case 'ticker':
    case 'miniTicker':
      return 1000 / c.tickerMs;
    case 'depth@100ms':
    case 'bookTicker':
      return Math.min(rate, 10);
    case 'depth':
      return Math.min(rate, 1);
    case 'kline_1m':
      return 1000 / (2 * c.klineMs) + 1 / 60;
  }
}

export interface MixPlan extends SubscriptionPlan {
  mix: Mix;
  /** Subscriptions per kind. */
  perKind: Record<string, number>;
}

/** mulberry32: small and reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** C clients × K streams, symbols round-robin as in planSubscriptions, kinds per the mix. */
export function planMixSubscriptions(clients: number, symbolCount: number, topicsPerClient: number, mix: Mix, seed = 1): MixPlan {
  if (mix.length === 0) throw new Error('--mix: no stream kinds');
  const total = clients * topicsPerClient;
  const sum = mix.reduce((a, m) => a + m.weight, 0);
  // Largest remainder: counts add up to total and follow the weights as closely as integers can.
  const exact = mix.map((m) => (m.weight / sum) * total);
  const counts = exact.map(Math.floor);
  const order = exact.map((x, i) => ({ i, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (let k = 0, left = total - counts.reduce((a, b) => a + b, 0); k < left; k++) counts[order[k]!.i]!++;
  const kinds: MixKind[] = [];
  mix.forEach((m, i) => {
    for (let k = 0; k < counts[i]!; k++) kinds.push(m.kind);
  });
  const rand = rng(seed);
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const { symbols, clients: plan, subscribersPerSymbol: perSymbol } = planSubscriptions(clients, symbolCount, topicsPerClient, (n) => kinds[n]!);
  const perKind = Object.fromEntries(mix.map((m, i) => [m.kind, counts[i]!]));
  return { symbols, clients: plan, subscribersPerSymbol: perSymbol, totalSubscriptions: total, mix, perKind };
}

/** Deliveries per second the plan expects at `rate` trades/s/sym. */
export function expectedMixPerSec(plan: MixPlan, rate: number, c: FeedCadences): number {
  let sum = 0;
  for (const [kind, n] of Object.entries(plan.perKind)) sum += n * kindRate(kind as MixKind, rate, c);
  return sum;
}
