// npm run bench:feed — the feed's own ceiling: how many events (and trades)
// one core of the simulator produces and encodes per CPU second, with no bus
// and no clock (it runs simulated time as fast as it can). The feed role does
// the same work per event (simulate, build, toBinary) plus the bus publish.
// Bounded: a fixed span of simulated time, and a wall-clock cap.
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toBinary } from '@bufbuild/protobuf';
import { EventSchema, type Event } from '../proto/gen/market_pb.js';
import { MarketSimulator } from '../system/feed/simulator.ts';
import { defaultSymbols } from '../system/common/topics.ts';
import { machineInfo, table } from './lib/report.ts';

const HELP = `npm run bench:feed -- [options]
  --symbols S        symbols (100)
  --rate R           trades/s per symbol (200)
  --seconds T        simulated seconds per run (30)
  --runs N           runs; the figures are their median (3)
  --max-wall S       stop a run after S wall seconds whatever it reached (60)
  --out DIR          report folder root (reports)`;

const { values } = parseArgs({
  options: {
    symbols: { type: 'string', default: '100' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '30' },
    runs: { type: 'string', default: '3' },
    'max-wall': { type: 'string', default: '60' },
    out: { type: 'string', default: 'reports' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const num = (name: string, v: string | undefined, min: number, max: number): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) {
    console.error(`--${name} must be a number from ${min} to ${max} (got "${v}")\n\n${HELP}`);
    process.exit(2);
  }
  return n;
};
const o = {
  symbols: Math.floor(num('symbols', values.symbols, 1, 10_000)),
  rate: num('rate', values.rate, 0.1, 100_000),
  seconds: num('seconds', values.seconds, 1, 3600),
  runs: Math.floor(num('runs', values.runs, 1, 20)),
  maxWallMs: num('max-wall', values['max-wall'], 1, 600) * 1000,
};

interface Run {
  simulatedSeconds: number;
  events: number;
  trades: number;
  bytes: number;
  cpuSeconds: number;
  eventsPerCpuSecond: number;
  tradesPerCpuSecond: number;
  byKind: Record<string, number>;
}

function once(): Run {
  const start = Date.UTC(2024, 0, 1);
  const sim = new MarketSimulator({ symbols: defaultSymbols(o.symbols), rate: o.rate, tickerMs: 1000, klineMs: 1000, depthSnapshotMs: 1000, depthLevels: 20, seed: 1, epoch: 1, startTimeMs: start });
  let events = 0;
  let trades = 0;
  let bytes = 0;
  const byKind: Record<string, number> = {};
  const emit = (_subject: string, ev: Event) => {
    bytes += toBinary(EventSchema, ev).length;
    events++;
    const k = ev.payload.case ?? 'none';
    byKind[k] = (byKind[k] ?? 0) + 1;
    if (k === 'trade') trades++;
  };
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  let t = start;
  const end = start + o.seconds * 1000;
  // 100 ms of simulated time per step: the wall cap is checked often, the turn cost stays the feed's.
  while (t < end && performance.now() - wall0 < o.maxWallMs) {
    t = Math.min(end, t + 100);
    sim.advanceTo(t, emit);
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return { simulatedSeconds: (t - start) / 1000, events, trades, bytes, cpuSeconds, eventsPerCpuSecond: events / cpuSeconds, tradesPerCpuSecond: trades / cpuSeconds, byKind };
}

const startedAt = new Date();
const runs: Run[] = [];
for (let i = 0; i < o.runs; i++) {
  const r = once();
  runs.push(r);
  console.log(`run ${i + 1}: ${Math.round(r.eventsPerCpuSecond).toLocaleString('en-US')} events/s per core, ${Math.round(r.tradesPerCpuSecond).toLocaleString('en-US')} trades/s per core (${r.simulatedSeconds} s simulated in ${r.cpuSeconds.toFixed(2)} CPU s)`);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const summary = {
  options: o,
  machine: machineInfo(process.cwd()),
  eventsPerCpuSecond: Math.round(median(runs.map((r) => r.eventsPerCpuSecond))),
  tradesPerCpuSecond: Math.round(median(runs.map((r) => r.tradesPerCpuSecond))),
  eventsPerTrade: runs[0]!.trades ? runs[0]!.events / runs[0]!.trades : 0,
  runs,
};
const dir = join(values.out!, `${startedAt.toISOString().replace(/[:.]/g, '-')}-feed`);
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
console.log(`\nfeed ceiling, ${o.symbols} symbols at ${o.rate} trades/s each, median of ${o.runs}:`);
console.log(table([
  ['events/s per core', summary.eventsPerCpuSecond.toLocaleString('en-US')],
  ['trades/s per core', summary.tradesPerCpuSecond.toLocaleString('en-US')],
  ['events per trade', summary.eventsPerTrade.toFixed(2)],
  ['report', dir],
]));
