// Collects a gateway's session tap (GET /admin/tap, NDJSON) into capture
// sessions: times become ms since the recording started; ids are renumbered
// so the capture says nothing about the gateway's internals.
import type { CapturedSession, SessionOp } from './scenario.ts';

export interface Recording {
  sessions: CapturedSession[];
  events: number;
  source: string;
  startedAt: Date;
  /** Private stream subscriptions left out (they need tokens). */
  privateDropped: number;
}

/** `gatewayHttp`: the gateway's admin listener; `auth`: the operator's admin-token header. */
export async function recordTap(gatewayHttp: string, durationMs: number, signal?: AbortSignal, auth: Record<string, string> = {}): Promise<Recording> {
  const ac = new AbortController();
  const stop = () => ac.abort();
  signal?.addEventListener('abort', stop, { once: true });
  const timer = setTimeout(stop, durationMs);
  const startedAt = new Date();
  const t0 = startedAt.getTime();
  const byId = new Map<string, CapturedSession>();
  let source = '';
  let events = 0;
  let privateDropped = 0;
  let n = 0;
  const onLine = (line: string) => {
    if (!line.trim()) return;
    const e = JSON.parse(line) as { at: number; ev?: string; s?: string; streams?: string[]; format?: string; source?: string };
    if (!e.ev) {
      source = e.source ?? source;
      return;
    }
    if (e.streams) {
      // Private streams need the user's token, which is never recorded: they cannot be replayed.
      const pub = e.streams.filter((st) => st !== 'orders');
      privateDropped += e.streams.length - pub.length;
      e.streams = pub;
      if (!pub.length && (e.ev === 'subscribe' || e.ev === 'unsubscribe')) return;
    }
    const t = Math.max(0, e.at - t0);
    let s = byId.get(e.s!);
    if (e.ev === 'connect') {
      // gRPC carries the same protobuf ServerFrames: replayed as WebSocket protobuf, the original noted.
      const format = e.format === 'tcp' ? 'tcp' : e.format === 'protobuf' || e.format === 'grpc' ? 'protobuf' : 'json';
      s = { id: `r${++n}`, format, ops: [] };
      byId.set(e.s!, s);
      s.ops.push({ t, ev: 'connect', format, streams: e.streams ?? [], ...(e.format && e.format !== format ? { protocol: e.format } : {}) });
    } else if (!s) {
      // A session that connected before the recording: start it here with what we know.
      if (e.ev === 'close') return;
      s = { id: `r${++n}`, format: 'json', ops: [{ t, ev: 'connect', format: 'json', streams: [] }] };
      byId.set(e.s!, s);
      s.ops.push({ t, ev: e.ev as 'subscribe', streams: e.streams ?? [] } as SessionOp);
    } else if (e.ev === 'close') s.ops.push({ t, ev: 'close' });
    else s.ops.push({ t, ev: e.ev as 'subscribe' | 'unsubscribe', streams: e.streams ?? [] });
    events++;
  };
  try {
    const res = await fetch(`${gatewayHttp.replace(/\/$/, '')}/admin/tap`, { headers: auth, signal: ac.signal });
    if (!res.ok || !res.body) throw new Error(`GET ${gatewayHttp}/admin/tap: HTTP ${res.status}`);
    let buf = '';
    const dec = new TextDecoder();
    try {
      for await (const chunk of res.body) {
        buf += dec.decode(chunk as Uint8Array, { stream: true });
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      }
    } catch (err) {
      if (!ac.signal.aborted) throw err;
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', stop);
  }
  return { sessions: [...byId.values()], events, source, startedAt, privateDropped };
}
