// Which streams each load client subscribes to, identical for the raw
// baseline and the pipeline: client i takes K consecutive symbols starting at
// i·K (mod S), so every symbol ends up with C·K/S subscribers.
import { defaultSymbols } from '../../system/common/topics.ts';

export interface SubscriptionPlan {
  symbols: string[];
  /** Per client, its `<symbol>@<kind>` streams (`@trade` unless a mix says otherwise). */
  clients: string[][];
  /** Subscribers per symbol (C·K/S when S divides C·K). */
  subscribersPerSymbol: number[];
  /** Total subscriptions, C·K: deliveries per second = trades per second per symbol × this. */
  totalSubscriptions: number;
}

/** `kindOf(n)`: the stream kind of the plan's n-th subscription (client-major; default `trade`). */
export function planSubscriptions(clients: number, symbolCount: number, topicsPerClient: number, kindOf: (n: number) => string = () => 'trade'): SubscriptionPlan {
  if (topicsPerClient > symbolCount) throw new Error(`--topics-per-client (${topicsPerClient}) cannot exceed --symbols (${symbolCount})`);
  const symbols = defaultSymbols(symbolCount);
  const perSymbol = new Array<number>(symbolCount).fill(0);
  const plan: string[][] = [];
  for (let i = 0; i < clients; i++) {
    const streams: string[] = [];
    for (let j = 0; j < topicsPerClient; j++) {
      const s = (i * topicsPerClient + j) % symbolCount;
      perSymbol[s]!++;
      streams.push(`${symbols[s]}@${kindOf(i * topicsPerClient + j)}`);
    }
    plan.push(streams);
  }
  return { symbols, clients: plan, subscribersPerSymbol: perSymbol, totalSubscriptions: clients * topicsPerClient };
}

/** Binance combined-stream URL, the same shape for the raw server and the gateway. */
export function streamUrl(base: string, streams: string[], format: 'json' | 'protobuf'): string {
  return `${base}/stream?streams=${streams.join('/')}${format === 'protobuf' ? '&format=protobuf' : ''}`;
}
