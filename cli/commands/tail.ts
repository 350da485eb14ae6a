import { Args, Command, Flags } from '@oclif/core';
import WebSocket from 'ws';
import { fromBinary, toJsonString } from '@bufbuild/protobuf';
import { ServerFrameSchema } from '../../proto/gen/client_pb.js';
import { fail } from '../lib/fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../lib/data-dir.ts';
import { readState } from '../lib/state-file.ts';
import { trustClusterCert } from '../lib/cluster-tls.ts';

export default class Tail extends Command {
  static override summary = 'Print live events of one or more streams, one JSON line each.';

  static override description = `Connects to a gateway's combined stream (/stream?streams=a/b) and prints every frame as one line of JSON until Ctrl-C, --count frames or --seconds. The gateway comes from --gateway, else the router of the cluster recorded in the data dir (the least-loaded gateway it hands out, as clients get it).

--format protobuf connects with ?format=protobuf and prints each decoded ServerFrame as JSON.`;

  static override examples = [
    '<%= config.bin %> tail btcusdt@ticker',
    '<%= config.bin %> tail btcusdt@trade ethusdt@depth --count 5',
    '<%= config.bin %> tail btcusdt@kline_1m --format protobuf',
    '<%= config.bin %> tail btcusdt@bookTicker --gateway ws://127.0.0.1:7200',
  ];

  static override strict = false;
  static override args = { streams: Args.string({ description: 'stream names, Binance style (btcusdt@trade)', required: true }) };

  static override flags = {
    gateway: Flags.string({ description: 'gateway URL (ws://host:port); default: ask the cluster\'s router' }),
    'data-dir': Flags.string({ description: DATA_DIR_HELP }),
    format: Flags.string({ description: 'wire format to subscribe with', options: ['json', 'protobuf'], default: 'json' }),
    count: Flags.integer({ description: 'stop after this many frames', min: 1 }),
    seconds: Flags.integer({ description: 'stop after this many seconds', min: 1 }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Tail);
    const streams = (argv as string[]).filter(Boolean);
    trustClusterCert(resolveDataDir(flags['data-dir'])); // a `pushctl up --tls` cluster's self-signed certificate
    const gateway = flags.gateway ?? (await this.gatewayFromRouter(flags['data-dir']));
    const url = new URL(`/stream?streams=${streams.map(encodeURIComponent).join('/')}`, gateway.replace(/^http/, 'ws'));
    if (flags.format === 'protobuf') url.searchParams.set('format', 'protobuf');
    process.stderr.write(`pushctl: tailing ${streams.join(', ')} from ${url.origin}\n`);

    const ws = new WebSocket(url, { perMessageDeflate: false });
    let frames = 0;
    const done = new Promise<number>((resolve) => {
      const stop = (code: number) => {
        ws.close();
        resolve(code);
      };
      if (flags.seconds) setTimeout(() => stop(0), flags.seconds * 1000).unref();
      process.once('SIGINT', () => stop(0));
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          process.stderr.write(`pushctl: the gateway refused the stream: HTTP ${res.statusCode} ${body}\n`);
          resolve(1);
        });
      });
      ws.on('error', (err) => {
        process.stderr.write(`pushctl: ${url.origin}: ${err.message}\n`);
        resolve(1);
      });
      ws.on('close', (code, reason) => {
        if (code !== 1000 && code !== 1005) process.stderr.write(`pushctl: closed by the gateway: ${code} ${reason.toString()}\n`);
        resolve(code === 1000 || code === 1005 ? 0 : 1);
      });
      ws.on('message', (data: Buffer, isBinary) => {
        const line = isBinary ? toJsonString(ServerFrameSchema, fromBinary(ServerFrameSchema, data)) : data.toString('utf8');
        process.stdout.write(line + '\n');
        if (flags.count && ++frames >= flags.count) stop(0);
      });
    });
    const code = await done;
    if (code !== 0) this.exit(code);
  }

  /** The gateway the cluster's router hands a WebSocket client, as any client would ask for it. */
  private async gatewayFromRouter(dataDirFlag: string | undefined): Promise<string> {
    const dataDir = resolveDataDir(dataDirFlag);
    const state = readState(dataDir);
    if (!state) fail(this, `no cluster is recorded in ${dataDir}; start one with \`pushctl up\`, or pass --gateway ws://HOST:PORT`, 1);
    for (const router of state.endpoints.routers) {
      try {
        const res = await fetch(`${router}/v1/gateways?protocol=ws&limit=1`, { signal: AbortSignal.timeout(3_000) });
        const body = (await res.json()) as { gateways?: Array<{ urls?: Record<string, string> }> };
        const ws = body.gateways?.[0]?.urls?.ws;
        if (ws) return ws;
      } catch {
        // the next router
      }
    }
    const first = state.endpoints.gateways[0]?.ws;
    if (!first) fail(this, `no router of the cluster in ${dataDir} answered and it records no gateway; pass --gateway`, 1);
    return first;
  }
}
