// A bus tap: subscribes to trades on NATS (md.trade.> or the subjects given,
// a sample keeps its own CPU out of the way) and records receive time − pt,
// the latency of feed → NATS alone. Set against the
// clients' end-to-end figure it splits the pipeline's latency into
// "feed + bus" and "push-server + gateway". Same IPC snaps as load-clients.
import { build, encodeIntoCompressedBase64 } from 'hdr-histogram-js';
import { connectNats } from '../../system/common/nats-bus.ts';
import { readEventHeader } from '../../system/common/event-header.ts';
import { guardChild, reply, type IpcMessage } from './child.ts';
import { nowUs } from './clock.ts';
import type { SnapReply } from './load-clients.ts';

async function main(): Promise<void> {
  const url = process.argv[2]!;
  const maxMs = Number(process.argv[3] ?? 600_000);
  const subjects = (process.argv[4] || 'md.trade.>').split(',');
  const nc = await connectNats(url, 'bench-bus-tap');
  const hist = build({ numberOfSignificantValueDigits: 3 });
  let events = 0;
  let bytes = 0;
  let negative = 0;
  let lastSnap = performance.now();
  const onMsg = (err: Error | null, msg: { data: Uint8Array }) => {
    if (err) return;
    const pt = readEventHeader(msg.data).publishTimeUs;
    events++;
    bytes += msg.data.length;
    let lat = nowUs() - pt;
    if (lat < 0) {
      negative++;
      lat = 0;
    }
    hist.recordValue(lat);
  };
  for (const subject of subjects) nc.subscribe(subject, { callback: onMsg });
  process.on('message', (m: IpcMessage) => {
    if (m.type === 'snap') {
      const now = performance.now();
      const body: Omit<SnapReply, 'id'> = {
        type: 'snap', events, other: 0, resyncs: 0, bytes, negative, open: nc.isClosed() ? 0 : 1, closed: 0, closeCodes: {},
        intervalMs: now - lastSnap, hist: encodeIntoCompressedBase64(hist),
      };
      lastSnap = now;
      events = bytes = negative = 0;
      hist.reset();
      reply(m, body);
    } else if (m.type === 'close') {
      reply(m, { type: 'closed' });
    } else if (m.type === 'connect') {
      reply(m, { type: 'connected', open: 1, failed: 0, retries: 0, errors: [], ms: 0 });
    }
  });
  guardChild(maxMs, () => void nc.close());
  process.send?.({ type: 'ready' });
}

main().catch((err: unknown) => {
  console.error(`bus tap: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
