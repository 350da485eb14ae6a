// What the feed knows of a symbol before any trade: its assets, reference
// price and the decimals (tick and step size) every price and quantity uses.
// Pure functions of the name, so every role computes the same facts.

/** What exchangeInfo says about a symbol. */
export interface SymbolInfo {
  symbol: string; // upper case, e.g. BTCUSDT
  baseAsset: string;
  quoteAsset: string;
  status: 'TRADING';
  tickSize: string;
  stepSize: string;
  pricePrecision: number;
  quantityPrecision: number;
}

/** Fixed facts of a symbol: reference price and decimal places of price and quantity. */
export interface SymbolSpec {
  symbol: string; // lower case
  baseAsset: string;
  quoteAsset: string;
  refPrice: number;
  priceDecimals: number;
  qtyDecimals: number;
}

// [reference price, price decimals (tick size), quantity decimals (step size)], close to the real pairs.
export const REAL_SPECS: Record<string, [number, number, number]> = {
  btcusdt: [60000, 2, 5],
  ethusdt: [3000, 2, 4],
  bnbusdt: [600, 2, 3],
  solusdt: [150, 2, 3],
  xrpusdt: [0.6, 4, 1],
  dogeusdt: [0.15, 5, 0],
  adausdt: [0.45, 4, 1],
  trxusdt: [0.12, 5, 1],
  avaxusdt: [35, 2, 2],
  linkusdt: [15, 3, 2],
  dotusdt: [7, 3, 2],
  tonusdt: [5.5, 3, 2],
  ltcusdt: [80, 2, 3],
  bchusdt: [450, 1, 3],
  nearusdt: [5, 3, 1],
  uniusdt: [9, 3, 2],
  aptusdt: [9, 3, 2],
  icpusdt: [10, 3, 2],
  etcusdt: [25, 2, 2],
  filusdt: [5, 3, 2],
  atomusdt: [8, 3, 2],
  arbusdt: [0.8, 4, 1],
  opusdt: [1.8, 3, 2],
  suiusdt: [1.5, 4, 1],
  xlmusdt: [0.11, 5, 0],
  hbarusdt: [0.08, 5, 0],
  injusdt: [25, 2, 2],
  aaveusdt: [150, 2, 3],
  pepeusdt: [0.00001, 8, 0],
  shibusdt: [0.00002, 8, 0],
};

const QUOTE_ASSETS = ['usdt', 'usdc', 'fdusd', 'busd', 'btc', 'eth', 'bnb', 'eur', 'try'];

export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The spec of any symbol. Synthetic symbols get a price drawn from a hash of
 * their name (not the seed), so every role computes the same tick sizes.
 */
export function symbolSpec(symbol: string): SymbolSpec {
  const lower = symbol.toLowerCase();
  const quote = QUOTE_ASSETS.find((q) => lower.endsWith(q) && lower.length > q.length) ?? 'usdt';
  const base = lower.endsWith(quote) ? lower.slice(0, -quote.length) : lower;
  const real = REAL_SPECS[lower];
  if (real) {
    return { symbol: lower, baseAsset: base.toUpperCase(), quoteAsset: quote.toUpperCase(), refPrice: real[0], priceDecimals: real[1], qtyDecimals: real[2] };
  }
  // Log-uniform between 0.1 and 1000; ~10^4..10^5 ticks per price; a step worth ~0.01-0.1 quote units.
  const refPrice = Number((10 ** (-1 + 4 * (fnv1a(lower) / 2 ** 32))).toPrecision(4));
  const mag = Math.floor(Math.log10(refPrice));
  return {
    symbol: lower,
    baseAsset: base.toUpperCase(),
    quoteAsset: quote.toUpperCase(),
    refPrice,
    priceDecimals: Math.max(0, 4 - mag),
    qtyDecimals: Math.min(8, Math.max(0, mag + 2)),
  };
}

export function symbolInfo(symbol: string): SymbolInfo {
  const spec = symbolSpec(symbol);
  return {
    symbol: spec.symbol.toUpperCase(),
    baseAsset: spec.baseAsset,
    quoteAsset: spec.quoteAsset,
    status: 'TRADING',
    tickSize: formatUnits(1, spec.priceDecimals),
    stepSize: formatUnits(1, spec.qtyDecimals),
    pricePrecision: spec.priceDecimals,
    quantityPrecision: spec.qtyDecimals,
  };
}

/** An integer count of 10^-decimals units as an exact decimal string. */
export function formatUnits(units: number | bigint, decimals: number): string {
  const neg = units < 0;
  let digits = (typeof units === 'bigint' ? (neg ? -units : units) : Math.abs(units)).toString();
  if (decimals > 0) {
    digits = digits.padStart(decimals + 1, '0');
    digits = `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
  }
  return neg ? `-${digits}` : digits;
}
