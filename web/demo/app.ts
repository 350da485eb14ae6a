// The demo page: a live ticker and a 1-minute kline chart for one symbol,
// over gRPC-web (PushService.Subscribe + Update, straight to the gateway) or
// over WebSocket (Binance JSON), with a toggle. When its gateway goes away it
// asks a router for another (GET /v1/gateways?protocol=…) with jittered
// back-off. Bundled by esbuild (system/gateway/demo.ts); no CDN.
import { createClient } from '@connectrpc/connect';
import { createGrpcWebTransport } from '@connectrpc/connect-web';
import { PushService } from '../../proto/gen/client_pb.js';
import type { Event } from '../../proto/gen/market_pb.js';
import { startPrivatePanel } from './private-panel.js';

type Protocol = 'grpc-web' | 'ws';
type ConnState = 'idle' | 'connecting' | 'live' | 'reconnecting';
interface Candle { t: number; o: number; h: number; l: number; c: number }

/** Read by the browser test; also handy in the console. */
const demo = {
  protocol: 'grpc-web' as Protocol,
  symbol: 'btcusdt',
  state: 'idle' as ConnState,
  gateway: '',
  events: 0,
  tickerUpdates: 0,
  klineUpdates: 0,
  chartDraws: 0,
  /** What the last chart draw labelled, and where its first and newest candles sit (CSS px). */
  axes: { priceTicks: [] as string[], timeTicks: [] as string[], plotLeft: 0, plotRight: 0, width: 0 },
  reconnects: 0,
  latencyMs: NaN,
  lastError: '',
};
(window as unknown as { demo: typeof demo }).demo = demo;

const $ = (id: string) => document.getElementById(id)!;
const params = new URLSearchParams(location.search);
demo.protocol = params.get('protocol') === 'ws' ? 'ws' : 'grpc-web';
demo.symbol = (params.get('symbol') ?? 'btcusdt').toLowerCase();

let routers: string[] = [];
let candles = new Map<number, Candle>();
let session: { stop(): void } | undefined;
let generation = 0; // bumps on every (re)connect decision: stale callbacks check it and bow out
let failures = 0;
let badGateway = ''; // host:port of the gateway that failed last, whatever the protocol

// --- rendering

function setState(s: ConnState, detail = ''): void {
  demo.state = s;
  const el = $('state');
  el.dataset.state = s;
  el.textContent = detail ? `${s} · ${detail}` : s;
}

function onLatency(ptUs: number): void {
  demo.latencyMs = Date.now() - ptUs / 1000;
  $('latency').textContent = `${demo.latencyMs.toFixed(1)} ms`;
}

function onTicker(last: string, changePct: string): void {
  demo.tickerUpdates++;
  $('price').textContent = last;
  const ch = $('change');
  ch.textContent = `${Number(changePct) >= 0 ? '+' : ''}${changePct}%`;
  ch.className = Number(changePct) >= 0 ? 'up' : 'down';
}

function onKline(c: Candle): void {
  demo.klineUpdates++;
  candles.set(c.t, c);
  if (candles.size > 60) candles = new Map([...candles].sort((a, b) => a[0] - b[0]).slice(-60));
  scheduleDraw();
}

let drawPending = false;
function scheduleDraw(): void {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    draw();
  });
}

/** Round price steps (1-2-5 × 10^k) so axis labels read as numbers a person would pick. */
function niceStep(range: number, ticks: number): number {
  const raw = range / Math.max(1, ticks);
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  const n = raw / mag;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag;
}

const MAX_SLOTS = 60; // at most the last hour of 1-minute candles, newest at the right edge
const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);

function draw(): void {
  const canvas = $('chart') as HTMLCanvasElement;
  // Draw at the size the page lays it out (and the screen's pixel density), not the element's default 300×150.
  const dpr = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || 900;
  const cssH = canvas.clientHeight || 320;
  if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
  }
  const g = canvas.getContext('2d')!;
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, cssW, cssH);
  const list = [...candles.values()].sort((a, b) => a.t - b.t).slice(-MAX_SLOTS);
  if (list.length === 0) return;
  const axisRight = 64; // price labels
  const axisBottom = 22; // time labels
  const top = 12;
  const plotW = cssW - axisRight - 8;
  const plotH = cssH - axisBottom - top;
  let lo = Math.min(...list.map((c) => c.l));
  let hi = Math.max(...list.map((c) => c.h));
  if (hi === lo) (hi += 1), (lo -= 1);
  const y = (v: number) => top + ((hi - v) / (hi - lo)) * plotH;
  // Slots are minutes ending at the newest candle, so the chart fills its width as time passes and gaps show.
  const last = list[list.length - 1]!.t;
  // At least 20 slots, so the first few candles of a fresh cluster are candles, not slabs.
  const slots = Math.min(MAX_SLOTS, Math.max(20, (last - list[0]!.t) / 60_000 + 1));
  const step = plotW / slots;
  const x = (t: number) => 8 + plotW - ((last - t) / 60_000 + 0.5) * step;

  g.font = '11px system-ui, sans-serif';
  g.lineWidth = 1;
  const priceTicks: string[] = [];
  const pStep = niceStep(hi - lo, 5);
  const decimals = Math.max(0, -Math.floor(Math.log10(pStep)));
  for (let v = Math.ceil(lo / pStep) * pStep; v <= hi; v += pStep) {
    const yy = Math.round(y(v)) + 0.5;
    g.strokeStyle = '#2a2a2a';
    g.beginPath();
    g.moveTo(8, yy);
    g.lineTo(8 + plotW, yy);
    g.stroke();
    g.fillStyle = '#888';
    const label = v.toFixed(decimals);
    g.fillText(label, 8 + plotW + 6, yy + 4);
    priceTicks.push(label);
  }
  const timeTicks: string[] = [];
  const every = slots <= 30 ? 5 : 10; // a label every 5 or 10 minutes, on round minutes
  for (let t = last - (slots - 1) * 60_000; t <= last; t += 60_000) {
    if (new Date(t).getUTCMinutes() % every !== 0) continue;
    const xx = Math.round(x(t)) + 0.5;
    g.strokeStyle = '#2a2a2a';
    g.beginPath();
    g.moveTo(xx, top);
    g.lineTo(xx, top + plotH);
    g.stroke();
    g.fillStyle = '#888';
    const label = hhmm(t);
    g.fillText(label, xx - g.measureText(label).width / 2, cssH - 6);
    timeTicks.push(label);
  }
  g.fillStyle = '#666';
  g.fillText('UTC', 8 + plotW + 6, cssH - 6);

  for (const c of list) {
    const cx = x(c.t);
    g.strokeStyle = g.fillStyle = c.c >= c.o ? '#4c8' : '#e55';
    g.beginPath();
    g.moveTo(cx, y(c.h));
    g.lineTo(cx, y(c.l));
    g.stroke();
    const bodyTop = y(Math.max(c.o, c.c));
    g.fillRect(cx - step * 0.35, bodyTop, step * 0.7, Math.max(1, y(Math.min(c.o, c.c)) - bodyTop));
  }
  demo.chartDraws++;
  demo.axes = { priceTicks, timeTicks, plotLeft: Math.round(x(list[0]!.t)), plotRight: Math.round(x(last)), width: cssW };
}

// --- connections

const topics = () => [`${demo.symbol}@ticker`, `${demo.symbol}@kline_1m`];

function onEvent(ev: Event): void {
  demo.events++;
  $('events').textContent = String(demo.events);
  onLatency(Number(ev.publishTimeUs));
  const p = ev.payload;
  if (p.case === 'ticker') onTicker(p.value.lastPrice, p.value.priceChangePercent);
  else if (p.case === 'kline') {
    const k = p.value;
    onKline({ t: Number(k.openTime), o: Number(k.open), h: Number(k.high), l: Number(k.low), c: Number(k.close) });
  }
}

function connectGrpcWeb(baseUrl: string, gen: number, up: () => void, down: (why: string) => void): { stop(): void } {
  const client = createClient(PushService, createGrpcWebTransport({ baseUrl }));
  const abort = new AbortController();
  void (async () => {
    let sessionId = '';
    try {
      for await (const batch of client.subscribe({ topics: topics() }, { signal: abort.signal })) {
        if (gen !== generation) return;
        if (batch.sessionId) {
          sessionId = batch.sessionId;
          up();
        }
        for (const f of batch.frames) {
          if (f.kind.case === 'event') onEvent(f.kind.value);
          else if (f.kind.case === 'heartbeat') {
            // Browsers cannot write to the stream: liveness answers go by a unary call.
            void client.update({ sessionId, frame: { kind: { case: 'ping', value: { clientTimeUs: BigInt(Date.now() * 1000) } } } }).catch(() => {});
          } else if (f.kind.case === 'error') demo.lastError = f.kind.value.msg;
        }
      }
      if (gen === generation) down('stream ended');
    } catch (err) {
      if (gen === generation && !abort.signal.aborted) down((err as Error).message);
    }
  })();
  return { stop: () => abort.abort() };
}

function connectWs(wsBase: string, gen: number, up: () => void, down: (why: string) => void): { stop(): void } {
  const ws = new WebSocket(`${wsBase}/stream?streams=${topics().join('/')}`);
  let stopped = false;
  ws.onopen = () => gen === generation && up();
  ws.onmessage = (m) => {
    if (gen !== generation) return;
    const { data } = JSON.parse(m.data as string) as { data: Record<string, any> };
    if (!data || typeof data.pt !== 'number') return;
    demo.events++;
    $('events').textContent = String(demo.events);
    onLatency(data.pt);
    if (data.e === '24hrTicker') onTicker(data.c, data.P);
    else if (data.e === 'kline') onKline({ t: data.k.t, o: Number(data.k.o), h: Number(data.k.h), l: Number(data.k.l), c: Number(data.k.c) });
  };
  ws.onclose = (e) => !stopped && gen === generation && down(`closed ${e.code} ${e.reason}`);
  return {
    stop: () => {
      stopped = true;
      ws.close();
    },
  };
}

/** Earlier candles from the gateway's REST history (Binance's klines shape); live ones win. */
async function loadHistory(httpBase: string, gen: number): Promise<void> {
  try {
    const res = await fetch(`${httpBase}/api/v3/klines?symbol=${demo.symbol.toUpperCase()}&interval=1m&limit=60`, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok || gen !== generation) return;
    const rows = (await res.json()) as Array<[number, string, string, string, string]>;
    for (const [t, o, h, l, c] of rows) if (!candles.has(t)) candles.set(t, { t, o: Number(o), h: Number(h), l: Number(l), c: Number(c) });
    scheduleDraw();
  } catch {
    // history is optional: the live stream still draws the chart
  }
}

/** A gateway for the protocol: this page's own origin first, then whatever a router offers. */
async function pickGateway(): Promise<string> {
  const own = demo.protocol === 'ws' ? location.origin.replace(/^http/, 'ws') : location.origin;
  if (failures === 0 && badGateway !== location.host) return own;
  for (const r of routers) {
    try {
      const res = await fetch(`${r}/v1/gateways?protocol=${demo.protocol}&limit=4`, { signal: AbortSignal.timeout(2_000) });
      if (!res.ok) continue;
      const { gateways } = (await res.json()) as { gateways: { url: string }[] };
      // The router may not have noticed yet that the last one died: prefer another.
      const pick = gateways.find((g) => new URL(g.url).host !== badGateway) ?? gateways[0];
      if (pick) return pick.url;
    } catch {
      // next router
    }
  }
  throw new Error('no router answered');
}

async function connect(): Promise<void> {
  const gen = ++generation;
  session?.stop();
  session = undefined;
  setState(failures === 0 ? 'connecting' : 'reconnecting');
  let url: string;
  try {
    url = await pickGateway();
  } catch (err) {
    return retry(gen, (err as Error).message);
  }
  if (gen !== generation) return;
  demo.gateway = url;
  $('gateway').textContent = `${url} (${demo.protocol})`;
  const up = () => {
    failures = 0;
    setState('live');
    if (candles.size <= 1) void loadHistory(url.replace(/^ws/, 'http'), gen);
  };
  const down = (why: string) => {
    badGateway = new URL(url).host;
    retry(gen, why);
  };
  session = demo.protocol === 'ws' ? connectWs(url, gen, up, down) : connectGrpcWeb(url, gen, up, down);
}

function retry(gen: number, why: string): void {
  if (gen !== generation) return;
  failures++;
  demo.reconnects++;
  $('reconnects').textContent = String(demo.reconnects);
  demo.lastError = why;
  // Full jitter: a gateway's clients must not all come back at the same instant.
  const delay = Math.random() * Math.min(5_000, 200 * 2 ** Math.min(failures, 5));
  setState('reconnecting', why);
  setTimeout(() => gen === generation && void connect(), delay);
}

// --- controls

function showProtocol(): void {
  for (const b of document.querySelectorAll<HTMLButtonElement>('button[data-protocol]')) b.setAttribute('aria-pressed', String(b.dataset.protocol === demo.protocol));
}

function restart(): void {
  candles = new Map();
  draw();
  failures = 0;
  void connect();
}

for (const b of document.querySelectorAll<HTMLButtonElement>('button[data-protocol]')) {
  b.onclick = () => {
    if (b.dataset.protocol === demo.protocol) return;
    demo.protocol = b.dataset.protocol as Protocol;
    showProtocol();
    restart();
  };
}

async function init(): Promise<void> {
  showProtocol();
  try {
    routers = ((await (await fetch('config.json')).json()) as { routers: string[] }).routers;
  } catch {
    routers = [];
  }
  const select = $('symbol') as HTMLSelectElement;
  let symbols = [demo.symbol];
  try {
    const info = (await (await fetch('/api/v3/exchangeInfo')).json()) as { symbols: { symbol: string }[] };
    symbols = info.symbols.map((s) => s.symbol.toLowerCase());
    if (!symbols.includes(demo.symbol) && symbols.length) demo.symbol = symbols[0]!;
  } catch {
    // keep the default
  }
  select.replaceChildren(...symbols.map((s) => new Option(s.toUpperCase(), s, false, s === demo.symbol)));
  select.onchange = () => {
    demo.symbol = select.value;
    restart();
  };
  void connect();
}

void init();
startPrivatePanel(document.getElementById('private')!);
