// The kline history query over gRPC (KlineHistory.Klines, proto/history.proto)
// and gRPC-web, for the gateways: the same Binance semantics as REST, through
// the same KlineProxy to the push-server that owns the topic. Binance errors
// become INVALID_ARGUMENT (UNAVAILABLE for a tier that is down) with the
// Binance code in the "x-binance-code" trailer.
import * as grpc from '@grpc/grpc-js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { KlinesRequestSchema, KlinesResponseSchema } from '../../proto/gen/history_pb.js';
import { KlineSchema } from '../../proto/gen/market_pb.js';
import type { KlineProxy } from './gateway-proxy.ts';

export const KLINE_HISTORY_PATH = '/marketpush.v1.KlineHistory/';
const bytes = (b: Buffer) => b;

export const klineHistoryDefinition = {
  klines: {
    path: `${KLINE_HISTORY_PATH}Klines`,
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  },
} satisfies grpc.ServiceDefinition;

type Outcome = { ok: true; message: Uint8Array; tiers: string } | { ok: false; code: grpc.status; details: string; binanceCode: number };

/** Decodes a KlinesRequest, runs it, encodes the KlinesResponse or the error. */
export async function runKlines(proxy: KlineProxy, request: Uint8Array): Promise<Outcome> {
  let req;
  try {
    req = fromBinary(KlinesRequestSchema, request);
  } catch {
    return { ok: false, code: grpc.status.INVALID_ARGUMENT, details: 'malformed KlinesRequest', binanceCode: -1100 };
  }
  const params = new URLSearchParams({ symbol: req.symbol, interval: req.interval });
  if (req.startTime !== undefined) params.set('startTime', String(req.startTime));
  if (req.endTime !== undefined) params.set('endTime', String(req.endTime));
  if (req.limit > 0) params.set('limit', String(req.limit));
  const r = await proxy.query(params.toString());
  const body = JSON.parse(r.body.toString('utf8')) as unknown;
  if (r.status !== 200 || !Array.isArray(body)) {
    const e = body as { code?: number; msg?: string };
    return { ok: false, code: r.status === 503 ? grpc.status.UNAVAILABLE : r.status === 429 ? grpc.status.RESOURCE_EXHAUSTED : r.status === 400 ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL, details: e.msg ?? `status ${r.status}`, binanceCode: e.code ?? -1000 };
  }
  const now = Date.now();
  const klines = (body as unknown[][]).map((row) =>
    create(KlineSchema, {
      symbol: req.symbol.toUpperCase(),
      interval: req.interval,
      openTime: BigInt(row[0] as number),
      open: String(row[1]),
      high: String(row[2]),
      low: String(row[3]),
      close: String(row[4]),
      volume: String(row[5]),
      closeTime: BigInt(row[6] as number),
      quoteVolume: String(row[7]),
      tradeCount: BigInt(row[8] as number),
      takerBuyBaseVolume: String(row[9]),
      takerBuyQuoteVolume: String(row[10]),
      closed: (row[6] as number) < now,
    }),
  );
  const tiers = r.headers['x-mp-tiers'] ?? '';
  const degraded = r.headers['x-mp-degraded'] ?? '';
  const message = toBinary(KlinesResponseSchema, create(KlinesResponseSchema, { klines, tiers: tiers.split(',').filter(Boolean), degraded: degraded.split(',').filter(Boolean) }));
  return { ok: true, message, tiers };
}

/** The gRPC service implementation for the gateway's gRPC server. */
export function klineHistoryService(proxy: KlineProxy): { definition: grpc.ServiceDefinition; impl: grpc.UntypedServiceImplementation } {
  return {
    definition: klineHistoryDefinition,
    impl: {
      klines: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        runKlines(proxy, call.request)
          .then((o) => {
            if (o.ok) {
              const md = new grpc.Metadata();
              md.set('x-mp-tiers', o.tiers);
              cb(null, Buffer.from(o.message), md);
            } else {
              const md = new grpc.Metadata();
              md.set('x-binance-code', String(o.binanceCode));
              cb({ code: o.code, details: o.details, metadata: md });
            }
          })
          .catch((err: unknown) => cb({ code: grpc.status.INTERNAL, details: err instanceof Error ? err.message : String(err) }));
      },
    },
  };
}

const frame = (flag: number, payload: Uint8Array): Buffer => {
  const b = Buffer.alloc(5 + payload.length);
  b[0] = flag;
  b.writeUInt32BE(payload.length, 1);
  b.set(payload, 5);
  return b;
};

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'POST, OPTIONS',
  'access-control-allow-headers': 'content-type, x-grpc-web, x-user-agent, grpc-timeout, authorization',
  'access-control-expose-headers': 'grpc-status, grpc-message, x-binance-code, x-mp-tiers',
};

/** gRPC-web (binary and -text) for KlineHistory.Klines on the gateway's HTTP port. */
export async function handleKlinesGrpcWeb(proxy: KlineProxy, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method === 'OPTIONS') {
    res.writeHead(204, CORS);
    res.end();
    return;
  }
  const ctype = String(req.headers['content-type'] ?? 'application/grpc-web+proto');
  const text = ctype.startsWith('application/grpc-web-text');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 64 * 1024) break;
    chunks.push(c as Buffer);
  }
  let body = Buffer.concat(chunks);
  if (text) body = Buffer.from(body.toString('ascii'), 'base64');
  const send = (parts: Buffer[]) => {
    const out = Buffer.concat(parts);
    const payload = text ? Buffer.from(out.toString('base64'), 'ascii') : out;
    res.writeHead(200, { ...CORS, 'content-type': text ? 'application/grpc-web-text+proto' : 'application/grpc-web+proto', 'content-length': payload.length });
    res.end(payload);
  };
  const trailers = (status: number, message: string, extra: Record<string, string> = {}) =>
    frame(0x80, Buffer.from([`grpc-status:${status}`, `grpc-message:${encodeURIComponent(message)}`, ...Object.entries(extra).map(([k, v]) => `${k}:${v}`)].join('\r\n') + '\r\n'));
  if (path(req) !== `${KLINE_HISTORY_PATH}Klines`) return send([trailers(grpc.status.UNIMPLEMENTED, `unknown method ${path(req)}`)]);
  if (size > 64 * 1024 || body.length < 5 || body.readUInt32BE(1) !== body.length - 5) return send([trailers(grpc.status.INVALID_ARGUMENT, 'expected one length-prefixed KlinesRequest')]);
  const o = await runKlines(proxy, body.subarray(5));
  if (o.ok) send([frame(0, o.message), trailers(grpc.status.OK, '', { 'x-mp-tiers': o.tiers })]);
  else send([trailers(o.code, o.details, { 'x-binance-code': String(o.binanceCode) })]);
}

const path = (req: IncomingMessage) => new URL(req.url ?? '/', 'http://x').pathname;
