// Regenerates the bundled synthetic captures (deterministic):
//   node scenarios/generate.ts
// Real captures come from `pushctl record`; these stand in for traffic shapes
// worth testing before one is available.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatCapture, type CapturedSession, type SessionOp } from '../cli/lib/bench/scenario.ts';
import { rng } from '../cli/lib/bench/plan.ts';
import { defaultSymbols } from '../system/common/topics.ts';

const DIR = join(dirname(fileURLToPath(import.meta.url)), 'captures');
const write = (name: string, sessions: CapturedSession[], note: string) =>
  writeFileSync(join(DIR, `${name}.jsonl`), formatCapture(sessions, { source: 'scenarios/generate.ts', note }));
const r = rng(42);
const session = (id: string, ops: SessionOp[], format: 'json' | 'protobuf' = 'json'): CapturedSession => ({ id, format, ops });

// One hot symbol to many clients: everyone wants btcusdt trades, ticker and depth.
write(
  'hot-symbol',
  Array.from({ length: 20 }, (_, i) =>
    session(`hot-${i + 1}`, [{ t: Math.round(r() * 2_000), ev: 'connect', format: i % 5 === 4 ? 'protobuf' : 'json', streams: ['btcusdt@trade', 'btcusdt@ticker', 'btcusdt@depth'] }], i % 5 === 4 ? 'protobuf' : 'json'),
  ),
  'one hot symbol (btcusdt trade+ticker+depth) to every client; 1 in 5 protobuf',
);

// Many symbols, Zipf-distributed interest (s = 1.1 over 20 symbols): a few hot, a long tail.
const symbols = defaultSymbols(20);
const weights = symbols.map((_, k) => 1 / (k + 1) ** 1.1);
const total = weights.reduce((a, b) => a + b, 0);
const zipf = () => {
  let x = r() * total;
  for (let k = 0; k < weights.length; k++) if ((x -= weights[k]!) <= 0) return symbols[k]!;
  return symbols[symbols.length - 1]!;
};
write(
  'zipf-symbols',
  Array.from({ length: 100 }, (_, i) => {
    const mine = new Set<string>();
    while (mine.size < 3) mine.add(zipf());
    return session(`zipf-${i + 1}`, [{ t: Math.round(r() * 3_000), ev: 'connect', streams: [...mine].flatMap((s) => [`${s}@trade`, `${s}@ticker`]) }]);
  }),
  'each client follows 3 symbols drawn from a Zipf(1.1) over 20 symbols (trade+ticker)',
);

// Subscription churn: every client keeps one ticker and moves a trade subscription every 500 ms.
write(
  'churn',
  Array.from({ length: 20 }, (_, i) => {
    const t0 = Math.round(r() * 1_000);
    const ops: SessionOp[] = [{ t: t0, ev: 'connect', streams: ['btcusdt@ticker'] }];
    let cur = '';
    for (let k = 0; k < 120; k++) {
      const t = t0 + 500 + k * 500;
      const next = `${symbols[Math.floor(r() * 10)]!}@trade`;
      if (cur && cur !== next) ops.push({ t, ev: 'unsubscribe', streams: [cur] });
      if (cur !== next) ops.push({ t: t + 1, ev: 'subscribe', streams: [next] });
      cur = next;
    }
    return session(`churn-${i + 1}`, ops);
  }),
  'subscription churn: one trade subscription moved every 500 ms per client (under the 10 requests/s limit)',
);

// Reconnect storm: everyone connected, then everyone drops and reconnects at t = 5 s (a gateway died).
write(
  'reconnect-storm',
  Array.from({ length: 50 }, (_, i) =>
    session(`storm-${i + 1}`, [
      { t: Math.round(r() * 1_000), ev: 'connect', streams: [`${symbols[i % 5]!}@trade`, `${symbols[i % 5]!}@ticker`] },
      { t: 5_000, ev: 'reconnect' },
      { t: 10_000, ev: 'reconnect' },
    ]),
  ),
  'every session reconnects through the router at t=5 s and t=10 s at once (amplified copies differ only by the scenario jitter)',
);
