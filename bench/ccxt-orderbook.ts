// `npm run bench:ccxt-orderbook`: issue 14's 60 s watchOrderBook check, too
// long for the test suite's budget (test/integration/ccxt-binance.test.ts runs
// the same check for 10 s). A real cluster (NATS, router, push-server,
// gateway, feed) and ccxt.pro.binance changed only in its URLs: for
// --seconds every update ccxt resolves must be sorted (bids descending, asks
// ascending), uncrossed, with positive amounts and an advancing nonce; then
// the watched book must equal a fresh GET /api/v3/depth at the same update
// id. Writes reports/<time>-ccxt-orderbook/summary.json; exits 1 on a failed
// check. A figure for the record, not a test.
// Flags: --seconds N (60), --symbol S (ETH/USDT), --rate N trades/s per symbol (50), --symbols N (3), --out DIR.
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCluster, type TestCluster } from '../test/helpers/cluster.ts';
import { compareWithRest, makeExchange, watchBookFor, type BookWatch, type Exchange } from '../test/helpers/ccxt-book.ts';
import { machineInfo, table } from './lib/report.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    symbol: { type: 'string', default: 'ETH/USDT' },
    rate: { type: 'string', default: '50' },
    symbols: { type: 'string', default: '3' },
    out: { type: 'string', default: join(ROOT, 'reports') },
  },
});
const num = (k: 'seconds' | 'rate' | 'symbols', min: number) => {
  const n = Number(values[k]);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${k} must be an integer ≥ ${min}, got ${values[k]}`);
  return n;
};
const seconds = num('seconds', 1);
const rate = num('rate', 1);
const nSymbols = num('symbols', 1);
const symbol = values.symbol!;
if (!/^[A-Z0-9]+\/[A-Z0-9]+$/.test(symbol)) throw new Error(`--symbol must look like ETH/USDT, got ${symbol}`);
const log = (s: string) => process.stderr.write(`bench:ccxt-orderbook: ${s}\n`);
const startedAt = new Date();

let cluster: TestCluster | undefined;
let ex: Exchange | undefined;
const watch: BookWatch = { updates: 0, firstNonce: 0, lastNonce: 0, maxLevels: 0 };
let compared: { updateId: number; attempts: number } | undefined;
let failure: string | undefined;
const stop = async () => {
  await ex?.close().catch(() => {});
  await cluster?.stop();
};
// Ctrl-C still stops every process the cluster started.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void stop().finally(() => process.exit(130)));

try {
  log(`starting a cluster (${nSymbols} symbols at ${rate} trades/s each)…`);
  cluster = await startCluster({ servers: 1, gateways: 1, symbols: nSymbols, rate });
  const http = cluster.gateways[0]!.urls.http!;
  ex = makeExchange(http, cluster.gateways[0]!.urls.ws!);
  // ccxt's documented step for plain ws:// URLs.
  await ex.loadHttpProxyAgent();
  const markets = await ex.loadMarkets();
  if (!markets[symbol]) throw new Error(`--symbol ${symbol} is not one of the cluster's markets: ${Object.keys(markets).join(' ')}`);
  log(`watching ${symbol} for ${seconds} s…`);
  const t0 = performance.now();
  try {
    await watchBookFor(ex, symbol, seconds * 1000, watch);
    compared = await compareWithRest(ex, http, symbol);
  } catch (err) {
    failure = (err as Error).message;
  }
  const elapsedS = (performance.now() - t0) / 1000;
  const dir = join(values.out!, `${startedAt.toISOString().replace(/[:.]/g, '-')}-ccxt-orderbook`);
  mkdirSync(dir, { recursive: true });
  const summary = {
    options: { seconds, symbol, rate, symbols: nSymbols },
    machine: machineInfo(ROOT),
    ok: failure === undefined,
    failure,
    elapsedS: Math.round(elapsedS * 10) / 10,
    watch,
    updatesPerSec: Math.round((watch.updates / seconds) * 10) / 10,
    restComparedAt: compared,
  };
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  console.log(table([
    ['result', failure ? `FAILED: ${failure}` : 'ok: every update sorted and uncrossed; equal to GET /api/v3/depth at the end'],
    ['updates', `${watch.updates} in ${seconds} s (${summary.updatesPerSec}/s), nonce ${watch.firstNonce} → ${watch.lastNonce}, up to ${watch.maxLevels} levels a side`],
    ['REST compare', compared ? `at update id ${compared.updateId} (${compared.attempts} attempt${compared.attempts > 1 ? 's' : ''})` : '-'],
    ['report', dir],
  ]));
  if (failure) process.exitCode = 1;
} finally {
  await stop();
}
