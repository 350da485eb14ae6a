// A load-client process: holds many WebSocket connections (no
// permessage-deflate), counts what arrives and records receive time − pt
// into an HDR histogram (µs). The parent drives it over IPC: connect, snap
// (counts and the encoded histogram since the last snap), close. Each
// connection speaks a wire protocol over the same raw `ws` client: 'ws'
// (streams in the URL: the gateway, the bare server, nchan) or 'socketio'
// (Engine.IO framing spoken directly: open, namespace connect, subscribe,
// pongs; see peers/engineio.ts).
import WebSocket from 'ws';
import { build, encodeIntoCompressedBase64 } from 'hdr-histogram-js';
import { guardChild, reply, type IpcMessage } from './child.ts';
import { nowUs } from './clock.ts';
import { jsonPublishTimeUs, protobufPublishTimeUs } from './frame-time.ts';
import { engineIoStep } from './peers/engineio.ts';

export type WireProtocol = 'ws' | 'socketio';

export interface SnapReply extends IpcMessage {
  type: 'snap';
  /** Frames carrying a pt (market events). */
  events: number;
  /** Other frames: results, errors, resync notices. */
  other: number;
  resyncs: number;
  bytes: number;
  /** Events whose pt was after the receive time (clock skew); recorded as 0. */
  negative: number;
  open: number;
  /** Connections the server closed since the last snap. */
  closed: number;
  closeCodes: Record<string, number>;
  intervalMs: number;
  /** Base64 compressed HdrHistogram (V2) of latencies in µs since the last snap. */
  hist: string;
  /** Times reading was paused to keep the process responsive (a sign the clients are the bottleneck). */
  pauses?: number;
}

export interface ConnectReply extends IpcMessage {
  type: 'connected';
  open: number;
  failed: number;
  retries: number;
  errors: string[];
  ms: number;
}

const RESYNC = Buffer.from('"resync"');
// libuv reads each ready socket up to 32 × 64 KB per poll pass, and loopback
// receive buffers grow to megabytes per socket: under overload one pass over
// a thousand sockets can take seconds and starve the IPC channel (snaps time
// out). After this long reading in one pass, every socket is paused until the
// check phase, which lets IPC and timers run.
const BURST_MS = 20;
const ACK = Buffer.from('a');

function main(): void {
  const maxMs = Number(process.argv[2] ?? 600_000);
  const sockets: WebSocket[] = [];
  const hist = build({ numberOfSignificantValueDigits: 3 });
  let events = 0;
  let other = 0;
  let resyncs = 0;
  let bytes = 0;
  let negative = 0;
  let open = 0;
  let closed = 0;
  const closeCodes: Record<string, number> = {};
  let lastSnap = performance.now();

  let burstStartUs = 0;
  let paused = false;
  let pauses = 0;
  const endBurst = () => {
    burstStartUs = 0;
    if (!paused) return;
    paused = false;
    for (const ws of sockets) ws.resume();
  };

  const onMessage = (data: Buffer, isBinary: boolean) => {
    const now = nowUs();
    if (burstStartUs === 0) {
      burstStartUs = now;
      setImmediate(endBurst);
    } else if (!paused && now - burstStartUs > BURST_MS * 1000) {
      paused = true;
      pauses++;
      for (const ws of sockets) ws.pause();
    }
    bytes += data.length;
    const pt = isBinary ? protobufPublishTimeUs(data) : jsonPublishTimeUs(data);
    if (pt < 0) {
      other++;
      // ServerFrame.resync is field 4 (tag 0x22).
      if (isBinary ? data[0] === 0x22 : data.indexOf(RESYNC) >= 0) resyncs++;
      return;
    }
    events++;
    let lat = now - pt;
    if (lat < 0) {
      negative++;
      lat = 0;
    }
    hist.recordValue(lat);
  };

  /** Opens one connection; retries refusals (503 admission control) a bounded number of times. */
  const connectOne = (url: string, deadline: number, counters: { retries: number }, ackEvery: number, protocol: WireProtocol, topics: string[]): Promise<string | undefined> =>
    new Promise((resolve) => {
      let attempt = 0;
      const tryOnce = () => {
        attempt++;
        const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: 10_000 });
        let settled = false;
        const fail = (why: string, retryable: boolean) => {
          if (settled) return;
          settled = true;
          ws.removeAllListeners();
          ws.on('error', () => {});
          ws.terminate();
          if (retryable && attempt < 20 && Date.now() + 250 < deadline) {
            counters.retries++;
            setTimeout(tryOnce, 100 + Math.floor(Math.random() * 400));
          } else resolve(why);
        };
        ws.on('unexpected-response', (_req, res) => {
          res.resume();
          fail(`HTTP ${res.statusCode}`, res.statusCode === 503);
        });
        ws.on('error', (err) => fail(err.message, true));
        const opened = () => {
          settled = true;
          open++;
          sockets.push(ws);
          if (protocol !== 'ws') {
            // Events already flow through the Engine.IO listener.
          } else if (ackEvery > 0) {
            // Credit for the raw baseline: it keeps at most a window of unacknowledged messages per socket.
            let unacked = 0;
            ws.on('message', (d: Buffer, b: boolean) => {
              onMessage(d, b);
              if (++unacked >= ackEvery) {
                unacked = 0;
                ws.send(ACK);
              }
            });
          } else ws.on('message', onMessage as (d: WebSocket.RawData, b: boolean) => void);
          ws.on('close', (code) => {
            open--;
            closed++;
            closeCodes[code] = (closeCodes[code] ?? 0) + 1;
          });
          resolve(undefined);
        };
        if (protocol === 'ws') ws.on('open', opened);
        else {
          // Socket.IO: counted open once the namespace accepted it and the subscribe went out.
          let joined = false;
          ws.on('message', (d: Buffer, b: boolean) => {
            const step = engineIoStep(d, topics);
            if (step.kind === 'data') {
              if (joined) onMessage(d, b);
              return;
            }
            if (step.kind === 'refused') return fail(step.reason, false);
            ws.send(step.send);
            if (step.kind === 'connected' && !joined) {
              joined = true;
              opened();
            }
          });
        }
      };
      tryOnce();
    });

  process.on('message', async (m: IpcMessage) => {
    if (m.type === 'connect') {
      const urls = m.urls as string[];
      const concurrency = Number(m.concurrency ?? 50);
      const ackEvery = Number(m.ackEvery ?? 0);
      const protocol = (m.protocol ?? 'ws') as WireProtocol;
      const topics = (m.topics ?? []) as string[][];
      const started = Date.now();
      const deadline = started + Number(m.timeoutMs ?? 30_000);
      const errors: string[] = [];
      const counters = { retries: 0 };
      let failed = 0;
      let next = 0;
      const worker = async () => {
        while (next < urls.length && Date.now() < deadline) {
          const i = next++;
          const err = await connectOne(urls[i]!, deadline, counters, ackEvery, protocol, topics[i] ?? []);
          if (err) {
            failed++;
            if (errors.length < 5) errors.push(err);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, urls.length) }, worker));
      failed += urls.length - Math.min(next, urls.length);
      reply(m, { type: 'connected', open, failed, retries: counters.retries, errors, ms: Date.now() - started } satisfies Omit<ConnectReply, 'id'>);
    } else if (m.type === 'snap') {
      const now = performance.now();
      const body: Omit<SnapReply, 'id'> = {
        type: 'snap', events, other, resyncs, bytes, negative, open, closed, closeCodes: { ...closeCodes },
        intervalMs: now - lastSnap, hist: encodeIntoCompressedBase64(hist), pauses,
      };
      lastSnap = now;
      events = other = resyncs = bytes = negative = closed = pauses = 0;
      for (const k of Object.keys(closeCodes)) delete closeCodes[k];
      hist.reset();
      reply(m, body);
    } else if (m.type === 'close') {
      // Our own hang-ups are not the server closing connections: not counted.
      for (const ws of sockets) {
        ws.removeAllListeners('close');
        ws.terminate();
      }
      open = 0;
      sockets.length = 0;
      reply(m, { type: 'closed' });
    }
  });
  guardChild(maxMs, () => {
    for (const ws of sockets) ws.terminate();
  });
  process.send?.({ type: 'ready' });
}

main();
