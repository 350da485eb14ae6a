// The userspace fault proxy against real sockets on loopback: added round-trip
// latency, bandwidth per direction, partitions (stall, reset), slow close,
// timeout and the slicer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { ChaosProxy, flap, sampleDelay } from '../../cli/lib/chaos/proxy.ts';

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

async function echoServer(t: { after: (f: () => unknown) => void }): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return listen(server);
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Median round trip of `n` one-byte pings, ms. */
async function medianRtt(s: Socket, n = 15): Promise<number> {
  const rtts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      s.once('data', () => resolve());
      s.write('x');
    });
    rtts.push(performance.now() - t0);
  }
  rtts.sort((a, b) => a - b);
  return rtts[Math.floor(n / 2)]!;
}

async function startProxy(t: { after: (f: () => unknown) => void }, target: number, faults = {}): Promise<ChaosProxy> {
  const p = new ChaosProxy({ targetHost: '127.0.0.1', targetPort: target, faults });
  await p.listen();
  t.after(() => p.close());
  return p;
}

test('the proxy adds 100 ± 20 ms to a round trip (50 ms each way)', async (t) => {
  const echo = await echoServer(t);
  const direct = await open(echo);
  t.after(() => direct.destroy());
  const base = await medianRtt(direct);
  const proxy = await startProxy(t, echo, { up: { latencyMs: 50 }, down: { latencyMs: 50 } });
  const via = await open(proxy.port);
  t.after(() => via.destroy());
  const shaped = await medianRtt(via);
  const added = shaped - base;
  t.diagnostic(`added ${added.toFixed(1)} ms`);
  assert.ok(added >= 80 && added <= 120, `added ${added.toFixed(1)} ms (direct ${base.toFixed(2)} ms, via proxy ${shaped.toFixed(1)} ms)`);
});

test('jitter samples spread around the mean and never go negative', () => {
  for (const dist of ['uniform', 'normal', 'pareto', 'paretonormal'] as const) {
    const xs = Array.from({ length: 4000 }, () => sampleDelay(50, 10, dist));
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(Math.min(...xs) >= 0, dist);
    assert.ok(Math.abs(mean - 50) < 3, `${dist} mean ${mean}`);
    assert.ok(new Set(xs.map((x) => Math.round(x))).size > 5, `${dist} spreads`);
  }
});

/** Bytes per second at which `bytes` arrive from the far side of `port`, timed from the first to the last byte. */
function receiveRate(s: Socket, bytes: number): Promise<number> {
  return new Promise((resolve) => {
    let got = 0;
    let t0 = 0;
    s.on('data', (d: Buffer) => {
      if (got === 0) t0 = performance.now();
      got += d.length;
      if (got >= bytes) resolve(((got - d.length) * 1000) / (performance.now() - t0));
    });
  });
}

test('the proxy enforces its bandwidth per direction (1 Mbit/s down, 512 kbit/s up)', async (t) => {
  const BYTES = 125_000;
  const sockets: Socket[] = [];
  let upstreamGot = 0;
  let upT0 = 0;
  let upRate = 0;
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      if (upstreamGot === 0) upT0 = performance.now();
      upstreamGot += d.length;
      if (upstreamGot >= BYTES / 2) upRate = ((upstreamGot - d.length) * 1000) / (performance.now() - upT0);
    });
    s.write(Buffer.alloc(BYTES, 1));
  });
  const port = await listen(server);
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  const proxy = await startProxy(t, port, { down: { bandwidthBps: 1_000_000 }, up: { bandwidthBps: 512_000 } });
  const c = await open(proxy.port);
  t.after(() => c.destroy());
  const downRate = await receiveRate(c, BYTES);
  c.write(Buffer.alloc(BYTES / 2, 2));
  const deadline = Date.now() + 10_000;
  while (upRate === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const down = (downRate * 8) / 1e6;
  const up = (upRate * 8) / 1e3;
  t.diagnostic(`down ${down.toFixed(3)} Mbit/s, up ${up.toFixed(1)} kbit/s`);
  assert.ok(down >= 0.8 && down <= 1.2, `down ${down.toFixed(3)} Mbit/s`);
  assert.ok(up >= 512 * 0.8 && up <= 512 * 1.2, `up ${up.toFixed(1)} kbit/s`);
  assert.equal(proxy.stats.bytesDown, BYTES);
});

test('partition drop stalls and then delivers; reset cuts and refuses until healed', async (t) => {
  const echo = await echoServer(t);
  const proxy = await startProxy(t, echo);
  const s = await open(proxy.port);
  t.after(() => s.destroy());
  await medianRtt(s, 1);

  proxy.setPartition('drop');
  let got: string = '';
  s.on('data', (d) => (got += d));
  s.write('held');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(got, '', 'nothing crosses a dropped link');
  proxy.setPartition(null);
  const deadline = Date.now() + 3_000;
  while ((got as string) !== 'held' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(got, 'held', 'a healed link delivers what was held, in order');

  const closed = new Promise<string>((resolve) => s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error')).once('close', () => resolve('close')));
  proxy.setPartition('reset');
  assert.equal(await closed, 'ECONNRESET');
  await assert.rejects(async () => {
    const again = await open(proxy.port);
    await new Promise((resolve, reject) => again.once('error', reject).once('close', resolve));
    again.destroy();
    throw Object.assign(new Error('closed'), { code: 'ECONNRESET' });
  }, /ECONNRESET|closed/);
  proxy.setPartition(null);
  const healed = await open(proxy.port);
  t.after(() => healed.destroy());
  assert.ok((await medianRtt(healed, 1)) >= 0);
  assert.ok(proxy.stats.resets >= 2);
});

test('flapping cuts and heals on schedule; slicer, slow close and timeout', async (t) => {
  const calls: Array<string | null> = [];
  const stop = flap({ setPartition: (m) => calls.push(m) }, 'drop', 30, 30, 10);
  await new Promise((r) => setTimeout(r, 150));
  stop();
  assert.ok(calls.filter((c) => c === 'drop').length >= 2, `calls ${calls.join(',')}`);
  assert.equal(calls.at(-1), null, 'stopping heals');

  const echo = await echoServer(t);
  const sliced = await startProxy(t, echo, { down: { slicer: { averageSize: 10, sizeVariation: 5, delayMs: 5 } }, slowCloseMs: 300 });
  const s = await open(sliced.port);
  t.after(() => s.destroy());
  const chunks: number[] = [];
  s.on('data', (d: Buffer) => chunks.push(d.length));
  s.write(Buffer.alloc(200, 7));
  const deadline = Date.now() + 3_000;
  while (chunks.reduce((a, b) => a + b, 0) < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(chunks.reduce((a, b) => a + b, 0), 200);
  // The receiving kernel may merge slices that arrive together; 200 bytes in one write still arrive in many reads.
  assert.ok(chunks.length >= 8, `slices ${chunks.join(',')}`);
  const t0 = performance.now();
  const closedAt = new Promise<number>((resolve) => s.once('end', () => resolve(performance.now())));
  s.end();
  const waited = (await closedAt) - t0;
  assert.ok(waited >= 250, `close delayed ${waited.toFixed(0)} ms`);

  const timing = await startProxy(t, echo, { timeoutMs: 200 });
  const s2 = await open(timing.port);
  let echoed = '';
  s2.on('data', (d) => (echoed += d));
  s2.write('lost');
  await new Promise<void>((resolve) => s2.once('close', () => resolve()));
  assert.equal(echoed, '', 'a timed-out link forwards nothing before it closes');
});

test('a slow reader drains at its rate (64 kbit/s), however fast the upstream writes', async (t) => {
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    s.write(Buffer.alloc(200_000, 3));
  });
  const port = await listen(server);
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  const proxy = await startProxy(t, port, { slowReaderBps: 64_000 });
  const c = await open(proxy.port);
  t.after(() => c.destroy());
  let got = 0;
  let t0 = 0;
  c.on('data', (d: Buffer) => {
    if (got === 0) t0 = performance.now();
    got += d.length;
  });
  await new Promise((r) => setTimeout(r, 1_500));
  const rate = (got * 8 * 1000) / (performance.now() - t0);
  t.diagnostic(`slow reader: ${(rate / 1000).toFixed(1)} kbit/s`);
  assert.ok(rate >= 64_000 * 0.8 && rate <= 64_000 * 1.2, `${(rate / 1000).toFixed(1)} kbit/s`);
});
