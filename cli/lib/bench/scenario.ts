// Scenario files (YAML or JSON, see scenarios/README.md) and the capture
// files they replay (JSONL, one session event per line). Parsing only: no
// I/O beyond reading the two files.
import { readFileSync } from 'node:fs';
import { dirname, resolve, basename, extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseFaults, type FaultSpec } from '../chaos/schedule.ts';
import { MIN_LIVENESS_MS } from './liveness.ts';
import { parsePrivate, type PrivateSpec } from './private-spec.ts';

/**
 * How a replayed session talks to the gateway. json / protobuf: WebSocket
 * frames; tcp: protobuf frames over the gateway's raw TCP API; grpc:
 * PushService.Stream; grpc-web: PushService.Subscribe + Update on the HTTP port.
 */
export const WIRE_FORMATS = ['json', 'protobuf', 'tcp', 'grpc', 'grpc-web'] as const;
export type WireFormat = (typeof WIRE_FORMATS)[number];

/** What the router calls each format's protocol (`GET /v1/gateways?protocol=`). */
export type ClientProtocol = 'ws' | 'tcp' | 'grpc' | 'grpc-web';
export const protocolOf = (f: WireFormat): ClientProtocol => (f === 'json' || f === 'protobuf' ? 'ws' : f);

const isWireFormat = (v: unknown): v is WireFormat => (WIRE_FORMATS as readonly unknown[]).includes(v);

export type SessionOp =
  | { t: number; ev: 'connect'; format?: WireFormat; streams: string[]; protocol?: string }
  | { t: number; ev: 'subscribe'; streams: string[] }
  | { t: number; ev: 'unsubscribe'; streams: string[] }
  | { t: number; ev: 'reconnect' }
  | { t: number; ev: 'close'; code?: number };

export interface CapturedSession {
  id: string;
  format: WireFormat;
  /** Relative to the capture start, ms, sorted; the first op is a connect. */
  ops: SessionOp[];
}

export interface HttpPhase {
  name: string;
  /** router | gateway | an http(s) base URL */
  target: string;
  path: string;
  connections: number;
  durationMs: number;
  startMs: number;
  /** Status codes that count as success (default: 2xx only). */
  okStatus?: number[];
}

export interface Scenario {
  name: string;
  description: string;
  file: string;
  sessions: CapturedSession[];
  captureFile?: string;
  amplify: number;
  jitterMs: number;
  speed: number;
  durationMs: number;
  /** "router": every connect asks the router for a gateway; else fixed addresses (parseConnect). */
  connect: string;
  /** When set, each amplified copy draws its format from these weights. */
  formats?: Partial<Record<WireFormat, number>>;
  thresholds: string[];
  http: HttpPhase[];
  /** Fault schedule (`faults:`): process faults and network profiles at given times. */
  faults: FaultSpec[];
  /**
   * `liveness:`: a session with no inbound frame (data, heartbeat, ping) for this long is terminated and
   * reconnects; 0 turns it off; absent: three of the gateway's default heartbeat intervals (DEFAULT_LIVENESS_MS).
   */
  livenessMs?: number;
  /** `warmup:`: the start of the run kept out of the headline latency and rate (warmup.ts); a file's default is auto, absent: none. */
  warmup?: WarmupSetting;
  /** `private:`: authenticated order-stream sessions (private-spec.ts) instead of a capture. */
  private?: PrivateSpec;
}

/** `auto`: until every connection is open plus a settling margin (warmup.ts); else a fixed length (0: none). */
export type WarmupSetting = 'auto' | { ms: number };

/** `warmup:` / `--warmup`: auto, or a duration (0 = no warm-up). */
export function parseWarmup(v: unknown, what: string): WarmupSetting {
  if (v === undefined || v === null || v === 'auto') return 'auto';
  return { ms: parseDuration(v, `${what} (auto, or a duration such as 5s; 0 = none)`) };
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/;

/** "15s", "500ms", "2m", or a bare number of ms. */
export function parseDuration(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
  const m = typeof v === 'string' ? DURATION.exec(v.trim()) : null;
  if (!m) throw new Error(`${what}: "${String(v)}" is not a duration (e.g. 500ms, 15s, 2m)`);
  const n = Number(m[1]);
  return n * ({ ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h']);
}

const OPS = new Set(['connect', 'subscribe', 'unsubscribe', 'reconnect', 'close']);

/** Capture JSONL → sessions. Lines without "ev" are metadata (e.g. a header); blank lines are skipped. */
export function parseCapture(text: string, file = 'capture'): CapturedSession[] {
  const byId = new Map<string, CapturedSession>();
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`${file}:${i + 1}: not JSON`);
    }
    if (o.ev === undefined) return;
    const where = `${file}:${i + 1}`;
    if (typeof o.ev !== 'string' || !OPS.has(o.ev)) throw new Error(`${where}: unknown event "${String(o.ev)}" (connect, subscribe, unsubscribe, reconnect, close)`);
    if (typeof o.t !== 'number' || o.t < 0) throw new Error(`${where}: "t" must be ms since the capture start`);
    const id = String(o.s ?? '');
    if (!id) throw new Error(`${where}: "s" (session id) is missing`);
    const streams = Array.isArray(o.streams) ? o.streams.map(String) : [];
    let s = byId.get(id);
    if (o.ev === 'connect') {
      if (o.format !== undefined && !isWireFormat(o.format)) throw new Error(`${where}: unknown format "${String(o.format)}" (${WIRE_FORMATS.join(', ')})`);
      // `protocol`: what a recorded session used; `pushctl record` writes gRPC sessions as protobuf + protocol grpc.
      const format: WireFormat = o.protocol === 'grpc' || o.protocol === 'grpc-web' ? o.protocol : isWireFormat(o.format) ? o.format : 'json';
      if (!s) byId.set(id, (s = { id, format, ops: [] }));
      s.ops.push({ t: o.t, ev: 'connect', format, streams, ...(typeof o.protocol === 'string' ? { protocol: o.protocol } : {}) });
      return;
    }
    if (!s) throw new Error(`${where}: session "${id}" has a ${o.ev} before its connect`);
    if (o.ev === 'subscribe' || o.ev === 'unsubscribe') {
      if (!streams.length) throw new Error(`${where}: ${o.ev} without streams`);
      s.ops.push({ t: o.t, ev: o.ev, streams });
    } else if (o.ev === 'close') s.ops.push({ t: o.t, ev: 'close', ...(typeof o.code === 'number' ? { code: o.code } : {}) });
    else s.ops.push({ t: o.t, ev: 'reconnect' });
  });
  const sessions = [...byId.values()];
  for (const s of sessions) s.ops.sort((a, b) => a.t - b.t);
  if (!sessions.length) throw new Error(`${file}: no sessions`);
  return sessions;
}

/** Sessions → capture JSONL (what `pushctl record` writes). */
export function formatCapture(sessions: CapturedSession[], header: Record<string, unknown> = {}): string {
  const lines: Array<{ t: number; line: string }> = [];
  for (const s of sessions) for (const op of s.ops) {
    const { t, ...rest } = op;
    lines.push({ t, line: JSON.stringify({ t, s: s.id, ...rest }) });
  }
  lines.sort((a, b) => a.t - b.t);
  return [JSON.stringify({ capture: 1, ...header }), ...lines.map((l) => l.line)].join('\n') + '\n';
}

const num = (v: unknown, d: number, what: string): number => {
  if (v === undefined) return d;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`${what} must be a non-negative number`);
  return v;
};

export function loadScenario(path: string): Scenario {
  const file = resolve(path);
  const text = readFileSync(file, 'utf8');
  const raw = (extname(file) === '.json' ? JSON.parse(text) : parseYaml(text)) as Record<string, unknown>;
  if (!raw || typeof raw !== 'object') throw new Error(`${file}: not a scenario object`);
  let sessions: CapturedSession[];
  let captureFile: string | undefined;
  if (raw.private !== undefined && (raw.capture !== undefined || raw.sessions !== undefined))
    throw new Error(`${file}: a private scenario replays no captured sessions: drop "capture" / "sessions", or put them in another scenario`);
  if (raw.private !== undefined) {
    sessions = [];
  } else if (typeof raw.capture === 'string') {
    captureFile = resolve(dirname(file), raw.capture);
    sessions = parseCapture(readFileSync(captureFile, 'utf8'), captureFile);
  } else if (Array.isArray(raw.sessions)) {
    // Inline sessions: [{id, format, ops:[{t, ev, streams}]}]
    sessions = parseCapture(
      (raw.sessions as Array<Record<string, unknown>>)
        .flatMap((s, i) => ((s.ops as Array<Record<string, unknown>>) ?? []).map((op) => JSON.stringify({ s: String(s.id ?? `s${i + 1}`), ...(op.ev === 'connect' && s.format ? { format: s.format } : {}), ...op })))
        .join('\n'),
      `${file} (sessions)`,
    );
  } else if (Array.isArray(raw.http) && raw.http.length) {
    sessions = [];
  } else throw new Error(`${file}: needs "capture" (a JSONL file), inline "sessions", "private" order streams, or "http" phases`);
  const http = ((raw.http as Array<Record<string, unknown>>) ?? []).map((h, i): HttpPhase => {
    if (typeof h.path !== 'string' || !h.path.startsWith('/')) throw new Error(`${file}: http[${i}].path must start with /`);
    return {
      name: String(h.name ?? `http-${i + 1}`),
      target: String(h.target ?? 'router'),
      path: h.path,
      connections: num(h.connections, 4, `http[${i}].connections`) || 1,
      durationMs: parseDuration(h.duration ?? '5s', `http[${i}].duration`),
      startMs: parseDuration(h.start ?? 0, `http[${i}].start`),
      ...(Array.isArray(h.okStatus) ? { okStatus: h.okStatus.map(Number) } : {}),
    };
  });
  const formats = raw.formats as Record<string, unknown> | undefined;
  if (formats) for (const k of Object.keys(formats)) if (!isWireFormat(k)) throw new Error(`${file}: formats has "${k}" (${WIRE_FORMATS.join(', ')})`);
  const connect = String(raw.connect ?? 'router');
  if (connect !== 'router') {
    let targets: Partial<Record<ClientProtocol, string>>;
    try {
      targets = parseConnect(connect);
    } catch (err) {
      throw new Error(`${file}: ${(err as Error).message}`);
    }
    const used = new Set(formats ? Object.keys(formats).filter((k) => Number(formats[k]) > 0) as WireFormat[] : sessions.map((s) => s.format));
    for (const f of used) if (!targets[protocolOf(f)]) throw new Error(`${file}: connect has no ${protocolOf(f)} address for the ${f} sessions (${CONNECT_HELP})`);
  }
  return {
    name: String(raw.name ?? basename(file).replace(/\.(ya?ml|json)$/, '')),
    description: String(raw.description ?? ''),
    file,
    sessions,
    ...(captureFile ? { captureFile } : {}),
    amplify: Math.max(1, Math.floor(num(raw.amplify, 1, 'amplify'))),
    jitterMs: parseDuration(raw.jitter ?? 0, 'jitter'),
    speed: num(raw.speed, 1, 'speed') || 1,
    durationMs: parseDuration(raw.duration ?? '10s', 'duration'),
    connect,
    ...(formats ? { formats: formats as Partial<Record<WireFormat, number>> } : {}),
    thresholds: Array.isArray(raw.thresholds) ? raw.thresholds.map(String) : [],
    http,
    faults: (() => {
      try {
        return parseFaults(raw.faults);
      } catch (err) {
        throw new Error(`${file}: ${(err as Error).message}`);
      }
    })(),
    ...(raw.liveness !== undefined ? { livenessMs: parseLiveness(raw.liveness, file) } : {}),
    warmup: parseWarmup(raw.warmup, `${file}: warmup`),
    ...(raw.private !== undefined ? { private: parsePrivate(raw.private, file) } : {}),
  };
}

/** `liveness:` 0 (off) or a duration of at least MIN_LIVENESS_MS. */
export function parseLiveness(v: unknown, file = 'scenario'): number {
  const ms = parseDuration(v, `${file}: liveness`);
  if (ms !== 0 && ms < MIN_LIVENESS_MS) throw new Error(`${file}: liveness ${String(v)} is too short: 0 (off) or at least ${MIN_LIVENESS_MS}ms; it should outlast a few of the gateway's heartbeat intervals`);
  return ms;
}

const CONNECT_HELP =
  'addresses by scheme, space-separated: ws://host:port (WebSocket and gRPC-web), tcp://host:port, grpc://host:port, http://host:port (gRPC-web); over TLS wss://, https://, tls:// (raw TCP), grpcs://';

/**
 * A fixed `connect:` target (instead of "router"): one address per protocol,
 * space-separated, each named by its scheme. WebSocket and gRPC-web share the
 * gateway's HTTP port, so either of ws:// and http:// gives both.
 */
export function parseConnect(connect: string): Partial<Record<ClientProtocol, string>> {
  const out: Partial<Record<ClientProtocol, string>> = {};
  for (const a of connect.trim().split(/[\s,]+/).filter(Boolean)) {
    let u: URL;
    try {
      u = new URL(a);
    } catch {
      throw new Error(`connect: "${a}" is not a URL (${CONNECT_HELP})`);
    }
    if (!u.port && ['tcp:', 'grpc:', 'tls:', 'grpcs:'].includes(u.protocol)) throw new Error(`connect: "${a}" needs a port`);
    const hostPort = u.host;
    const base = a.replace(/\/$/, '');
    if (u.protocol === 'ws:' || u.protocol === 'wss:') {
      out.ws = base;
      out['grpc-web'] ??= base.replace(/^ws/, 'http');
    } else if (u.protocol === 'http:' || u.protocol === 'https:') {
      out['grpc-web'] = base;
      out.ws ??= base.replace(/^http/, 'ws');
    } else if (u.protocol === 'tcp:') out.tcp = hostPort;
    else if (u.protocol === 'grpc:') out.grpc = hostPort;
    // The TLS variants keep their scheme: the connection needs it to know to handshake.
    else if (u.protocol === 'tls:') out.tcp = `tls://${hostPort}`;
    else if (u.protocol === 'grpcs:') out.grpc = `grpcs://${hostPort}`;
    else throw new Error(`connect: "${a}" has an unknown scheme (${CONNECT_HELP})`);
  }
  return out;
}

/** Every distinct symbol the sessions use (`<symbol>@<kind>`). */
export function scenarioSymbols(sessions: CapturedSession[]): string[] {
  const out = new Set<string>();
  for (const s of sessions) for (const op of s.ops) if ('streams' in op) for (const st of op.streams) out.add(st.split('@')[0]!);
  return [...out];
}

/**
 * Captured symbols the target's feed does not publish are mapped, stably, onto
 * ones it does (rank order: the capture's most used symbol → the feed's first),
 * so a capture from one cluster replays on a smaller one. Returns the mapping used.
 */
export function remapSymbols(sessions: CapturedSession[], available: string[]): Record<string, string> {
  if (!available.length) return {};
  const have = new Set(available);
  const uses = new Map<string, number>();
  for (const s of sessions) for (const op of s.ops) if ('streams' in op) for (const st of op.streams) {
    const sym = st.split('@')[0]!;
    uses.set(sym, (uses.get(sym) ?? 0) + 1);
  }
  const missing = [...uses.entries()].filter(([s]) => !have.has(s)).sort((a, b) => b[1] - a[1]).map(([s]) => s);
  const map: Record<string, string> = {};
  missing.forEach((s, i) => (map[s] = available[i % available.length]!));
  if (!missing.length) return map;
  for (const s of sessions) for (const op of s.ops) if ('streams' in op) {
    op.streams = op.streams.map((st) => {
      const at = st.indexOf('@');
      const to = map[st.slice(0, at)];
      return to ? `${to}${st.slice(at)}` : st;
    });
  }
  return map;
}
