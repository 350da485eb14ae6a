// TLS on every client port: a router and a gateway started with the
// generated self-signed certificate (cli/lib/self-signed-cert.ts). Each
// client trusts ONLY that certificate, passed explicitly (this test process
// adds nothing to its default CAs), and the same client without it is
// refused with a certificate error: the ports speak real TLS.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { connect as netConnect } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import WebSocket from 'ws';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ClientFrameSchema, ServerBatchSchema, ServerFrameSchema, type ServerFrame } from '../../proto/gen/client_pb.js';
import { pushServiceDefinition } from '../../system/gateway/grpc-api.ts';
import { ensureSelfSignedCert } from '../../cli/lib/self-signed-cert.ts';
import { getJson, startCluster, waitFor, type RoleProc, type TestCluster } from '../helpers/cluster.ts';

const CERT_ERRORS = /DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|self[- ]signed certificate/;

const subscribeFrame = (id: number, topics: string[]) =>
  Buffer.from(toBinary(ClientFrameSchema, create(ClientFrameSchema, { id: BigInt(id), kind: { case: 'subscribe', value: { topics } } })));

const lengthPrefixed = (b: Buffer) => {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length, 0);
  return Buffer.concat([len, b]);
};

/** host and port of tls://h:p, grpcs://h:p or h:p. */
const hostPort = (url: string) => {
  const u = new URL(url.includes('://') ? url : `x://${url}`);
  return { host: u.hostname, port: Number(u.port) };
};

/** SHA-256 fingerprint of the certificate a TLS port presents to a new connection now. */
function presented(host: string, port: number, alpn?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host, port, rejectUnauthorized: false, ...(alpn ? { ALPNProtocols: [alpn] } : {}) }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.destroy();
      resolve(fp);
    });
    s.once('error', reject);
  });
}

/** A GET over https trusting only `ca` (or nothing extra): status and body, or the error's code. */
function httpsGet(url: string, ca?: Buffer): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = request(url, { ...(ca ? { ca } : {}), timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: `${err.code ?? ''} ${err.message}` }));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

describe('TLS on the client ports (self-signed certificate)', () => {
  let dir: string;
  let ca: Buffer;
  let cluster: TestCluster;
  let gw: RoleProc;
  const cleanups: Array<() => void> = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'push-tls-'));
    const cert = ensureSelfSignedCert(dir);
    ca = readFileSync(cert.certFile);
    cluster = await startCluster({ servers: 1, gateways: 1, symbols: 3, rate: 20, tls: { certFile: cert.certFile, keyFile: cert.keyFile } });
    gw = cluster.gateways[0]!;
  });
  after(async () => {
    for (const c of cleanups) c();
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the gateway advertises wss://, https://, tls:// and grpcs://, and the https router hands them out', async () => {
    assert.match(gw.urls.ws!, /^wss:\/\/127\.0\.0\.1:\d+$/);
    assert.match(gw.urls.http!, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(gw.urls.tcp!, /^tls:\/\/127\.0\.0\.1:\d+$/);
    assert.match(gw.urls.grpc!, /^grpcs:\/\/127\.0\.0\.1:\d+$/);
    assert.match(cluster.routerUrl, /^https:/);
    // The gateway's heartbeat reached the router over https (it trusts tlsCaFile), so the router lists it.
    const body = await getJson<{ gateways: Array<{ id: string; url: string }> }>(`${cluster.routerUrl}/v1/gateways?protocol=ws`, join(dir, 'tls', 'cert.pem'));
    assert.equal(body.gateways[0]?.url, gw.urls.ws);
    const noCa = await httpsGet(`${cluster.routerUrl}/v1/gateways`);
    assert.ok('error' in noCa && CERT_ERRORS.test(noCa.error), `router without the CA: ${JSON.stringify(noCa)}`);
  });

  test('wss:// with the certificate as CA receives a stream; without it the handshake is refused', async () => {
    const ws = new WebSocket(`${gw.urls.ws}/ws/btcusdt@trade`, { ca, perMessageDeflate: false });
    cleanups.push(() => ws.terminate());
    const seqs: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${seqs.length} trades in 15 s`)), 15_000);
      ws.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      ws.on('message', (d: Buffer) => {
        const m = JSON.parse(d.toString()) as { e?: string; seq?: number };
        if (m.e === 'trade' && typeof m.seq === 'number') seqs.push(m.seq);
        if (seqs.length >= 5) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    assert.ok(seqs.every((s, i) => i === 0 || s === seqs[i - 1]! + 1), `contiguous: ${seqs.join(',')}`);

    const refused = await new Promise<string>((resolve) => {
      const bare = new WebSocket(`${gw.urls.ws}/ws/btcusdt@trade`, { perMessageDeflate: false });
      bare.on('open', () => {
        bare.terminate();
        resolve('opened');
      });
      bare.on('error', (err: NodeJS.ErrnoException) => resolve(`${err.code ?? ''} ${err.message}`));
    });
    assert.match(refused, CERT_ERRORS);
  });

  test('https:// REST (exchangeInfo, klines) with the CA; plain http on the same port gets no answer', async () => {
    const info = await httpsGet(`${gw.urls.http}/api/v3/exchangeInfo`, ca);
    assert.ok('status' in info && info.status === 200, JSON.stringify(info));
    const symbols = (JSON.parse(info.body) as { symbols: Array<{ symbol: string }> }).symbols.map((s) => s.symbol);
    assert.ok(symbols.includes('BTCUSDT'), `symbols over https (the gateway read them from the https router): ${symbols.join(',')}`);
    const klines = await httpsGet(`${gw.urls.http}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=5`, ca);
    assert.ok('status' in klines && klines.status === 200, JSON.stringify(klines));
    assert.ok(Array.isArray(JSON.parse(klines.body)));

    const noCa = await httpsGet(`${gw.urls.http}/api/v3/exchangeInfo`);
    assert.ok('error' in noCa && CERT_ERRORS.test(noCa.error), JSON.stringify(noCa));
    const plain = await fetch(`${gw.urls.http.replace(/^https/, 'http')}/api/v3/ping`, { signal: AbortSignal.timeout(5_000) }).then(
      (r) => `status ${r.status}`,
      (err: Error) => `failed: ${err.message}`,
    );
    assert.ok(!plain.startsWith('status 200'), `plain http on the TLS port: ${plain}`);
  });

  test('gRPC over TLS with the CA subscribes and receives events; plain-text gRPC to that port fails', async () => {
    const { host, port } = hostPort(gw.urls.grpc!);
    const Client = grpc.makeGenericClientConstructor(pushServiceDefinition, 'PushService');
    const client = new Client(`${host}:${port}`, grpc.credentials.createSsl(ca));
    const call = (client as unknown as { stream(): grpc.ClientDuplexStream<Buffer, Buffer> }).stream();
    cleanups.push(() => {
      call.cancel();
      client.close();
    });
    call.on('error', () => {});
    const events: ServerFrame[] = [];
    const got = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${events.length} events in 15 s`)), 15_000);
      call.on('data', (b: Buffer) => {
        for (const f of fromBinary(ServerBatchSchema, b).frames) if (f.kind.case === 'event') events.push(f);
        if (events.length >= 3) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    call.write(subscribeFrame(1, ['ethusdt@trade']));
    await got;
    assert.ok(events.every((f) => f.kind.case === 'event' && f.kind.value.topic === 'ethusdt@trade'));

    const plainClient = new Client(`${host}:${port}`, grpc.credentials.createInsecure());
    cleanups.push(() => plainClient.close());
    const plainErr = await new Promise<Error | undefined>((resolve) => plainClient.waitForReady(Date.now() + 3_000, (err) => resolve(err)));
    assert.ok(plainErr, 'a plain-text gRPC client never gets a ready channel to the TLS port');

    const noCaClient = new Client(`${host}:${port}`, grpc.credentials.createSsl());
    cleanups.push(() => noCaClient.close());
    const noCaErr = await new Promise<Error | undefined>((resolve) => noCaClient.waitForReady(Date.now() + 3_000, (err) => resolve(err)));
    assert.ok(noCaErr, 'a gRPC-TLS client without the CA is refused');
  });

  test('raw TCP in TLS: tls.connect with the CA, subscribe, receive a frame; without the CA the handshake fails', async () => {
    const { host, port } = hostPort(gw.urls.tcp!);
    const socket: TLSSocket = tlsConnect({ host, port, ca });
    cleanups.push(() => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
    });
    assert.equal(socket.authorized, true);
    const frames: ServerFrame[] = [];
    let buf: Buffer = Buffer.alloc(0);
    const got = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`frames: ${frames.map((f) => f.kind.case).join(',')}`)), 15_000);
      socket.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
          const len = buf.readUInt32BE(0);
          frames.push(fromBinary(ServerFrameSchema, buf.subarray(4, 4 + len)));
          buf = buf.subarray(4 + len);
        }
        if (frames.some((f) => f.kind.case === 'event')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    socket.write(lengthPrefixed(subscribeFrame(7, ['bnbusdt@trade'])));
    await got;
    assert.ok(frames.some((f) => f.kind.case === 'result' && f.kind.value.id === 7n), 'the subscribe result');

    const refused = await new Promise<string>((resolve) => {
      const bare = tlsConnect({ host, port });
      bare.once('secureConnect', () => {
        bare.destroy();
        resolve('connected');
      });
      bare.once('error', (err: NodeJS.ErrnoException) => resolve(`${err.code ?? ''} ${err.message}`));
    });
    assert.match(refused, CERT_ERRORS);

    // Plain protobuf-over-TCP on the TLS port: the gateway never reads it as a frame.
    const plain = netConnect(port, host);
    cleanups.push(() => plain.destroy());
    const plainGot = await new Promise<string>((resolve) => {
      plain.once('connect', () => plain.write(lengthPrefixed(subscribeFrame(8, ['bnbusdt@trade']))));
      const chunks: Buffer[] = [];
      plain.on('data', (c: Buffer) => chunks.push(c));
      plain.once('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      setTimeout(() => resolve(Buffer.concat(chunks).toString('latin1')), 3_000);
    });
    plain.destroy();
    assert.ok(!plainGot.includes('bnbusdt@trade'), 'no subscribe result for a plain-text client');
  });

  // Last: it replaces the certificate every other test trusts.
  test('a renewed certificate is served on every client port without a restart (SIGHUP, or the files changing)', async () => {
    const cert = join(dir, 'tls', 'cert.pem');
    const key = join(dir, 'tls', 'key.pem');
    const old = new X509Certificate(ca).fingerprint256;
    const renewed = ensureSelfSignedCert(join(dir, 'renewed'));
    assert.notEqual(renewed.fingerprint256, old);
    const http = hostPort(gw.urls.http!);
    const tcp = hostPort(gw.urls.tcp!);
    const grpcPort = hostPort(gw.urls.grpc!);
    const router = hostPort(cluster.routerUrl);
    assert.equal(await presented(http.host, http.port), old);

    copyFileSync(renewed.keyFile, key);
    copyFileSync(renewed.certFile, cert);
    gw.proc.kill('SIGHUP');
    const ports = { 'gateway http': () => presented(http.host, http.port), 'gateway tcp': () => presented(tcp.host, tcp.port), 'gateway grpc': () => presented(grpcPort.host, grpcPort.port, 'h2'), router: () => presented(router.host, router.port) };
    for (const [name, probe] of Object.entries(ports)) {
      await waitFor(async () => (await probe()) === renewed.fingerprint256, 10_000, `${name} to present the renewed certificate`);
    }
    assert.equal(gw.proc.exitCode, null, 'the gateway is still the same process');
    // And clients trusting the renewed certificate stream from it.
    const ws = new WebSocket(`${gw.urls.ws}/ws/btcusdt@trade`, { ca: readFileSync(renewed.certFile), perMessageDeflate: false });
    cleanups.push(() => ws.terminate());
    await new Promise<void>((resolve, reject) => {
      ws.once('message', () => resolve());
      ws.once('error', reject);
    });
  });
});
