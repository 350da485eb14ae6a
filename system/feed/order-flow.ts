// The order-flow simulator: N simulated users placing, amending and
// cancelling LIMIT orders against the feed's own books, and getting fills
// carved out of the public trades the simulator prints. A fill is always a
// share of one public trade: same trade id, price and time, and the users'
// fills of one trade never add up to more than its quantity. Users' orders
// do not change the public depth (they are "shadow" orders riding the book):
// this keeps every public stream exactly what it was without the users.
// Balances move with every lock, fill, unlock and deposit, in exact integers.
// Pure: no timers, no I/O, no clock (the feed drives it; order-flow-bus.ts
// publishes what it emits).
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { Event, OrderSchema } from '../../proto/gen/market_pb.js';
import { formatUnits, symbolSpec, type SymbolSpec } from '../common/symbols.ts';
import { prng } from './simulator.ts';

export type OrderInit = MessageInitShape<typeof OrderSchema>;
/** One event for one user, in that user's order. */
export type OrderEmit = (user: string, event: OrderInit) => void;

export interface OrderFlowOptions {
  users: number;
  /** Order actions (place, amend, cancel) per second per user; 0 pauses. */
  ratePerUser: number;
  symbols: string[];
  seed: number;
  startTimeMs: number;
}

/** Balances are kept in units of 10^-8 (Binance shows 8 decimals). */
const BAL_DECIMALS = 8;
const MAX_OPEN_PER_USER = 4;
const ORDER_NOTIONAL = 200; // quote units per order, about
const START_QUOTE = 10_000;
const START_BASE_NOTIONAL = 10_000;

interface Book {
  spec: SymbolSpec;
  upper: string;
  bid: number; // best bid, ticks (0: none seen yet)
  ask: number;
  /** 10^(8 - pd - qd): one tick × one step in balance units. */
  quoteScale: bigint;
  /** 10^(8 - qd): one step in balance units. */
  baseScale: bigint;
}

interface UserOrder {
  id: number;
  clientId: string;
  book: Book;
  buy: boolean;
  price: number; // ticks
  qty: number; // steps
  filled: number; // steps
  cumQuote: bigint; // ticks × steps
  created: number;
}

interface Account {
  name: string;
  free: Map<string, bigint>;
  locked: Map<string, bigint>;
  open: UserOrder[];
  nextAt: number;
  started: boolean;
}

/** The simulated user names: user1 … userN. */
export const simulatedUsers = (n: number): string[] => Array.from({ length: n }, (_, i) => `user${i + 1}`);

export class OrderFlow {
  #rand: () => number;
  #books = new Map<string, Book>(); // by upper-case symbol
  #accounts: Account[];
  #period: number;
  #nextOrderId = 1;
  #fills = 0;

  constructor(opts: OrderFlowOptions) {
    if (!(opts.users >= 0 && Number.isInteger(opts.users))) throw new Error(`invalid users ${opts.users}: a whole number ≥ 0`);
    if (!(opts.ratePerUser >= 0) || !Number.isFinite(opts.ratePerUser)) throw new Error(`invalid order rate ${opts.ratePerUser}: a finite number ≥ 0`);
    this.#rand = prng(opts.seed, 'orders');
    for (const s of opts.symbols) {
      const spec = symbolSpec(s);
      // Exact balances need every amount to fit 8 decimals; other symbols are left to the public only.
      if (spec.priceDecimals + spec.qtyDecimals > BAL_DECIMALS) continue;
      this.#books.set(spec.symbol.toUpperCase(), {
        spec,
        upper: spec.symbol.toUpperCase(),
        bid: 0,
        ask: 0,
        quoteScale: 10n ** BigInt(BAL_DECIMALS - spec.priceDecimals - spec.qtyDecimals),
        baseScale: 10n ** BigInt(BAL_DECIMALS - spec.qtyDecimals),
      });
    }
    this.#period = opts.ratePerUser > 0 ? 1000 / opts.ratePerUser : Infinity;
    this.#accounts = simulatedUsers(opts.users).map((name, i) => ({
      name,
      free: new Map(),
      locked: new Map(),
      open: [],
      // Users act at their own phase within a period, spreading the load.
      nextAt: opts.startTimeMs + ((i + 0.5) / Math.max(1, opts.users)) * (Number.isFinite(this.#period) ? this.#period : 0),
      started: false,
    }));
  }

  get users(): string[] {
    return this.#accounts.map((a) => a.name);
  }

  get tradedSymbols(): string[] {
    return [...this.#books.keys()];
  }

  get fills(): number {
    return this.#fills;
  }

  /** Changes the per-user action rate from now on. */
  setRate(ratePerUser: number, nowMs: number): void {
    if (!(ratePerUser >= 0) || !Number.isFinite(ratePerUser)) throw new Error(`invalid order rate ${ratePerUser}: a finite number ≥ 0`);
    this.#period = ratePerUser > 0 ? 1000 / ratePerUser : Infinity;
    this.#accounts.forEach((a, i) => (a.nextAt = nowMs + ((i + 0.5) / this.#accounts.length) * (Number.isFinite(this.#period) ? this.#period : 0)));
  }

  /**
   * Every public event the simulator emits, in its order: bookTickers move
   * where users quote; trades fill the users' orders resting at or better
   * than the trade's price on its maker side.
   */
  onMarketEvent(ev: Event, emit: OrderEmit): void {
    const p = ev.payload;
    if (p.case === 'bookTicker') {
      const b = this.#books.get(p.value.symbol);
      if (!b) return;
      b.bid = this.#ticks(b, p.value.bidPrice);
      b.ask = this.#ticks(b, p.value.askPrice);
    } else if (p.case === 'trade') {
      const b = this.#books.get(p.value.symbol);
      if (b) this.#matchTrade(b, p.value.tradeId, this.#ticks(b, p.value.price), this.#steps(b, p.value.qty), !p.value.buyerIsMaker, Number(p.value.tradeTime), emit);
    }
  }

  /** Every user action due at or before nowMs. */
  advanceTo(nowMs: number, emit: OrderEmit): number {
    let n = 0;
    for (const a of this.#accounts) {
      if (!a.started) {
        a.started = true;
        this.#openAccount(a, Math.floor(a.nextAt), emit);
        n++;
      }
      while (a.nextAt <= nowMs) {
        this.#act(a, Math.floor(a.nextAt), emit);
        a.nextAt += this.#period;
        n++;
      }
    }
    return n;
  }

  #ticks(b: Book, price: string): number {
    return Math.round(Number(price) * 10 ** b.spec.priceDecimals);
  }

  #steps(b: Book, qty: string): number {
    return Math.round(Number(qty) * 10 ** b.spec.qtyDecimals);
  }

  #bal(n: bigint): string {
    return formatUnits(n, BAL_DECIMALS);
  }

  #add(m: Map<string, bigint>, asset: string, d: bigint): void {
    m.set(asset, (m.get(asset) ?? 0n) + d);
  }

  #position(a: Account, assets: string[]): OrderInit['balances'] {
    return [...new Set(assets)].map((asset) => ({ asset, free: this.#bal(a.free.get(asset) ?? 0n), locked: this.#bal(a.locked.get(asset) ?? 0n) }));
  }

  /** Deposits: each traded asset credited, as Binance balanceUpdate events. */
  #openAccount(a: Account, at: number, emit: OrderEmit): void {
    for (const asset of this.#assets()) {
      const amount = this.#depositAmount(asset);
      if (amount === 0n) continue;
      this.#add(a.free, asset, amount);
      emit(a.name, { user: a.name, id: `${a.name}-deposit-${asset}-${at}`, eventTime: BigInt(at), updateTime: BigInt(at), balanceDelta: { asset, delta: this.#bal(amount), clearTime: BigInt(at) }, balances: this.#position(a, [asset]) });
    }
  }

  #assets(): string[] {
    const out = new Set<string>();
    for (const b of this.#books.values()) {
      out.add(b.spec.quoteAsset);
      out.add(b.spec.baseAsset);
    }
    return [...out];
  }

  #depositAmount(asset: string): bigint {
    const unit = 10n ** BigInt(BAL_DECIMALS);
    for (const b of this.#books.values()) {
      if (b.spec.quoteAsset === asset) return BigInt(START_QUOTE) * unit;
    }
    const b = [...this.#books.values()].find((x) => x.spec.baseAsset === asset);
    if (!b) return 0n;
    // About START_BASE_NOTIONAL worth, in whole steps of the symbol.
    const steps = Math.max(1, Math.round(START_BASE_NOTIONAL / b.spec.refPrice * 10 ** b.spec.qtyDecimals));
    return BigInt(steps) * b.baseScale;
  }

  #act(a: Account, at: number, emit: OrderEmit): void {
    const r = this.#rand();
    if (a.open.length > 0 && (a.open.length >= MAX_OPEN_PER_USER || r < 0.35)) {
      const o = a.open[Math.floor(this.#rand() * a.open.length)]!;
      if (this.#rand() < 0.4 && o.qty - o.filled > 1) this.#amend(a, o, at, emit);
      else this.#cancel(a, o, at, emit);
      return;
    }
    this.#place(a, at, emit);
  }

  #place(a: Account, at: number, emit: OrderEmit): void {
    const books = [...this.#books.values()].filter((b) => b.bid > 0 && b.ask > b.bid);
    if (books.length === 0) return; // no quote seen yet: nothing to price an order against
    const b = books[Math.floor(this.#rand() * books.length)]!;
    const want = this.#rand() < 0.5;
    // At the touch most of the time (fills come quickly), else a tick or two behind.
    const behind = this.#rand() < 0.6 ? 0 : 1 + Math.floor(this.#rand() * 2);
    const steps = Math.max(1, Math.round((ORDER_NOTIONAL * (0.5 + this.#rand())) / (b.spec.refPrice > 0 ? (b.bid / 10 ** b.spec.priceDecimals) : 1) * 10 ** b.spec.qtyDecimals));
    for (const buy of [want, !want]) {
      const price = buy ? b.bid - behind : b.ask + behind;
      if (price <= 0) continue;
      const asset = buy ? b.spec.quoteAsset : b.spec.baseAsset;
      const need = buy ? BigInt(price) * BigInt(steps) * b.quoteScale : BigInt(steps) * b.baseScale;
      if ((a.free.get(asset) ?? 0n) < need) continue; // this side unaffordable: try the other
      this.#add(a.free, asset, -need);
      this.#add(a.locked, asset, need);
      const o: UserOrder = { id: this.#nextOrderId++, clientId: `sim${a.name}x${at.toString(36)}x${this.#nextOrderId}`, book: b, buy, price, qty: steps, filled: 0, cumQuote: 0n, created: at };
      a.open.push(o);
      emit(a.name, this.#report(a, o, at, 'NEW', 'NEW', [asset]));
      return;
    }
  }

  /** Binance's amend-keep-priority: the quantity goes down, the order keeps its place (execution type REPLACED). */
  #amend(a: Account, o: UserOrder, at: number, emit: OrderEmit): void {
    const left = o.qty - o.filled;
    const cut = Math.max(1, Math.floor(left / 2));
    o.qty -= cut;
    this.#unlock(a, o, cut);
    emit(a.name, this.#report(a, o, at, 'REPLACED', o.filled > 0 ? 'PARTIALLY_FILLED' : 'NEW', [this.#lockAsset(o)]));
  }

  #cancel(a: Account, o: UserOrder, at: number, emit: OrderEmit): void {
    this.#unlock(a, o, o.qty - o.filled);
    a.open.splice(a.open.indexOf(o), 1);
    emit(a.name, this.#report(a, o, at, 'CANCELED', 'CANCELED', [this.#lockAsset(o)]));
  }

  #lockAsset(o: UserOrder): string {
    return o.buy ? o.book.spec.quoteAsset : o.book.spec.baseAsset;
  }

  /** Releases what `steps` unfilled steps of o hold. */
  #unlock(a: Account, o: UserOrder, steps: number): void {
    const amount = o.buy ? BigInt(o.price) * BigInt(steps) * o.book.quoteScale : BigInt(steps) * o.book.baseScale;
    const asset = this.#lockAsset(o);
    this.#add(a.locked, asset, -amount);
    this.#add(a.free, asset, amount);
  }

  /** A public trade of qty steps at price: the makers on its side, oldest order first, get shares of it. */
  #matchTrade(b: Book, tradeId: bigint, price: number, qty: number, takerBuys: boolean, at: number, emit: OrderEmit): void {
    // The taker buys: sell orders at or below the price are makers (and the reverse).
    const candidates: Array<{ a: Account; o: UserOrder }> = [];
    for (const a of this.#accounts) {
      for (const o of a.open) {
        if (o.book === b && o.buy !== takerBuys && (takerBuys ? o.price <= price : o.price >= price)) candidates.push({ a, o });
      }
    }
    candidates.sort((x, y) => x.o.id - y.o.id);
    let left = qty;
    for (const { a, o } of candidates) {
      if (left <= 0) break;
      const q = Math.min(left, o.qty - o.filled);
      left -= q;
      this.#fill(a, o, q, price, tradeId, at, emit);
    }
  }

  #fill(a: Account, o: UserOrder, steps: number, price: number, tradeId: bigint, at: number, emit: OrderEmit): void {
    const b = o.book;
    const quote = BigInt(price) * BigInt(steps) * b.quoteScale;
    const base = BigInt(steps) * b.baseScale;
    if (o.buy) {
      // Locked at the order's price; filled at the trade's (never worse): the difference is freed.
      const locked = BigInt(o.price) * BigInt(steps) * b.quoteScale;
      this.#add(a.locked, b.spec.quoteAsset, -locked);
      this.#add(a.free, b.spec.quoteAsset, locked - quote);
      this.#add(a.free, b.spec.baseAsset, base);
    } else {
      this.#add(a.locked, b.spec.baseAsset, -base);
      this.#add(a.free, b.spec.quoteAsset, quote);
    }
    o.filled += steps;
    o.cumQuote += BigInt(price) * BigInt(steps);
    const done = o.filled >= o.qty;
    if (done) a.open.splice(a.open.indexOf(o), 1);
    this.#fills++;
    emit(a.name, this.#report(a, o, at, 'TRADE', done ? 'FILLED' : 'PARTIALLY_FILLED', [b.spec.baseAsset, b.spec.quoteAsset], { steps, price, tradeId }));
  }

  #report(a: Account, o: UserOrder, at: number, exec: string, status: string, changed: string[], fill?: { steps: number; price: number; tradeId: bigint }): OrderInit {
    const b = o.book;
    const pd = b.spec.priceDecimals;
    const qd = b.spec.qtyDecimals;
    return {
      user: a.name,
      id: `${o.id}-${exec}-${o.filled}-${at}`,
      symbol: b.upper,
      clientOrderId: o.clientId,
      side: o.buy ? 'BUY' : 'SELL',
      type: 'LIMIT',
      status,
      price: formatUnits(o.price, pd),
      qty: formatUnits(o.qty, qd),
      filledQty: formatUnits(o.filled, qd),
      updateTime: BigInt(at),
      execType: exec,
      orderId: BigInt(o.id),
      origClientOrderId: '',
      timeInForce: 'GTC',
      lastQty: formatUnits(fill?.steps ?? 0, qd),
      lastPrice: formatUnits(fill?.price ?? 0, pd),
      cumQuoteQty: formatUnits(o.cumQuote, pd + qd),
      lastQuoteQty: formatUnits(fill ? BigInt(fill.price) * BigInt(fill.steps) : 0n, pd + qd),
      tradeId: fill ? fill.tradeId : -1n,
      maker: fill !== undefined,
      working: status === 'NEW' || status === 'PARTIALLY_FILLED',
      createTime: BigInt(o.created),
      rejectReason: 'NONE',
      commission: '0',
      commissionAsset: '',
      balances: this.#position(a, changed),
      eventTime: BigInt(at),
    };
  }
}
