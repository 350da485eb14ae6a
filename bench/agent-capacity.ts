// How many messages per second ONE `pushctl bench` agent can receive and
// record, with no cluster in the way: a blaster process writes gateway-shaped
// combined-stream JSON frames (per-connection seq, pt stamped at send) to C
// connections as fast as each socket drains; one real agent process, driven
// over NATS by the real controller, replays C sessions against it.
//   node bench/agent-capacity.ts [--connections 50] [--seconds 10] [--format json|protobuf]
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { create, toBinary } from '@bufbuild/protobuf';
import { EventSchema } from '../proto/gen/market_pb.js';
import { frameField1 } from '../system/common/link-codec.ts';
import { nowUs } from './lib/clock.ts';
import { startNats } from '../test/helpers/servers.ts';
import { runBench } from '../cli/lib/bench/controller.ts';
import { parseCapture, type Scenario } from '../cli/lib/bench/scenario.ts';

const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? process.argv[i + 1]! : d;
};

function blaster(): void {
  const format = arg('--format', 'json');
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  const peers: Array<{ ws: WebSocket; topic: string; seq: number }> = [];
  let sent = 0;
  wss.on('connection', (ws, req) => {
    const topic = new URL(req.url ?? '/', 'http://x').searchParams.get('streams') ?? 'btcusdt@trade';
    peers.push({ ws, topic, seq: 0 });
    ws.on('close', () => peers.splice(peers.findIndex((p) => p.ws === ws), 1));
  });
  const body = '"e":"trade","E":1,"s":"BTCUSDT","t":123456,"p":"64000.12","q":"0.015","T":1,"m":true,"M":true';
  const tick = () => {
    for (const p of peers) {
      // Keep ~256 KiB in flight per socket: as fast as the reader drains, no unbounded buffering.
      for (let k = 0; k < 32 && p.ws.bufferedAmount < 256 * 1024; k++) {
        p.seq++;
        if (format === 'protobuf') {
          const ev = create(EventSchema, { topic: p.topic, seq: BigInt(p.seq), epoch: 1n, publishTimeUs: BigInt(nowUs()), payload: { case: 'trade', value: { symbol: 'btcusdt', tradeId: 123456n, price: '64000.12', qty: '0.015' } } });
          p.ws.send(frameField1(toBinary(EventSchema, ev)));
        } else p.ws.send(`{"stream":"${p.topic}","data":{${body},"seq":${p.seq},"ep":1,"pt":${nowUs()}}}`);
        sent++;
      }
    }
    setImmediate(tick);
  };
  tick();
  http.listen(0, '127.0.0.1', () => process.send?.({ port: (http.address() as { port: number }).port }));
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stop') {
      process.send?.({ sent });
      process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
}

async function main(): Promise<void> {
  const connections = Number(arg('--connections', '50'));
  const seconds = Number(arg('--seconds', '10'));
  const format = arg('--format', 'json') === 'protobuf' ? 'protobuf' : 'json';
  const nats = await startNats();
  const child = fork(fileURLToPath(import.meta.url), ['--blaster', '--format', format], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const port = await new Promise<number>((r) => child.once('message', (m: { port: number }) => r(m.port)));
    const lines = Array.from({ length: connections }, (_, i) => JSON.stringify({ t: 0, s: `c${i}`, ev: 'connect', format, streams: [`sym${i}usdt@trade`] }));
    const scenario: Scenario = {
      name: 'agent-capacity', description: 'one agent against a blaster', file: '-', sessions: parseCapture(lines.join('\n')), amplify: 1, jitterMs: 0, speed: 1,
      durationMs: seconds * 1000, connect: `ws://127.0.0.1:${port}`, thresholds: [], http: [], faults: [],
    };
    const o = await runBench({ scenario, router: 'http://unused', nats: nats.url, agents: 1, remote: false, thresholds: [] });
    const sent = await new Promise<number>((r) => {
      child.once('message', (m: { sent: number }) => r(m.sent));
      child.send({ type: 'stop' });
    });
    const a = o.agents[0]!;
    // The middle of the run: skip the first and last interval (ramp-up, shut-down).
    const steady = o.intervals.slice(1, -1);
    const rates = steady.map((i) => i.msgsPerSec).sort((x, y) => x - y);
    console.log(JSON.stringify({
      command: `node bench/agent-capacity.ts --connections ${connections} --seconds ${seconds} --format ${format}`,
      msgs: o.counters.msgs, sent, gaps: o.counters.gaps, errors: o.counters.errors,
      msgsPerSecOverRun: Math.round((o.counters.msgs * 1000) / o.durationMs),
      msgsPerSecMedianInterval: rates[Math.floor(rates.length / 2)] ?? 0,
      agentCpu: a.healthOverRun, latencyMs: a.latency,
    }, null, 2));
  } finally {
    child.kill();
    await nats.stop();
  }
}

if (process.argv.includes('--blaster')) blaster();
else await main();
