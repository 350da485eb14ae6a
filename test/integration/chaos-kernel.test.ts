// pushctl chaos on the real kernel, in namespaces it creates: tbf bandwidth
// measured through the veth, nftables and iptables random loss counted on
// 2,000 datagrams, and the leftovers check after `chaos off` and after the
// holding pushctl is SIGKILLed and pushctl runs again. Needs root (CI is).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectCapabilities } from '../../cli/lib/chaos/kernel.ts';
import { resolveProfile } from '../../cli/lib/chaos/profile.ts';
import { applyProfile, type ActiveSession } from '../../cli/lib/chaos/session.ts';
import { readChaosState } from '../../cli/lib/chaos/state.ts';
import { isAlive } from '../../cli/lib/processes.ts';
import { inNetns } from '../helpers/netns.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const root = process.getuid?.() === 0;
const caps = root ? detectCapabilities() : undefined;
const why = !root ? 'needs root (network namespaces, tc, nft); CI runs as root' : !caps!.netns ? `cannot create network namespaces here: ${caps!.notes.join('; ')}` : undefined;

function tempDataDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'pushctl-chaos-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function apply(t: TestContext, profile: string, backend: 'tc' | 'nft' | 'iptables'): Promise<ActiveSession> {
  const dataDir = tempDataDir(t);
  const s = await applyProfile({ dataDir, profile: resolveProfile(profile), target: 'clients', backend, dryRun: false, ports: [], print: () => {} });
  t.after(() => s.revert());
  return s;
}


test('tc tbf at 1 Mbit/s: 250 KB through the veth arrive at 1 Mbit/s ± 20 %', { skip: why ?? (!caps?.tbf && 'this kernel has no tbf qdisc') }, async (t) => {
  const s = await apply(t, 'bw-1mbit', 'tc');
  assert.deepEqual(s.plan.report.map((r) => [r.field, r.backend]), [['bandwidth', 'tc']]);
  const BYTES = 250_000;
  // Receiver in the namespace: times the first to the last byte.
  const rx = inNetns(
    t,
    s.link!.netns,
    `import { createServer } from 'node:net';
     const srv = createServer((c) => { let n = 0, t0 = 0; c.on('data', (d) => { if (!n) t0 = performance.now(); n += d.length;
       if (n >= ${BYTES}) { console.log(JSON.stringify({ bytes: n, ms: performance.now() - t0 })); process.exit(0); } }); });
     srv.listen(9100, '${s.link!.peerAddr}', () => console.log('ready'));`,
  );
  assert.equal(await rx.firstLine, 'ready');
  const sock = connect({ host: s.link!.peerAddr, port: 9100 });
  t.after(() => sock.destroy());
  sock.on('error', () => {});
  sock.write(Buffer.alloc(BYTES, 0x5a));
  const out = (await rx.output).trim().split('\n').pop()!;
  const { bytes, ms } = JSON.parse(out) as { bytes: number; ms: number };
  const mbit = (bytes * 8) / (ms * 1000);
  t.diagnostic(`tbf 1 Mbit/s: measured ${mbit.toFixed(3)} Mbit/s`);
  assert.ok(mbit >= 0.8 && mbit <= 1.2, `measured ${mbit.toFixed(3)} Mbit/s (${bytes} B in ${ms.toFixed(0)} ms)`);
});

/**
 * Sends 2,000 datagrams from the host into the namespace and returns how many arrived. Batches of 100, each
 * followed by a sync the receiver answers with its count (retried: syncs can be dropped too), so at most 100
 * are in flight: a receiver descheduled on a busy machine never overflows its socket buffer, and every
 * missing datagram is the rule's.
 */
async function udpLoss(t: TestContext, s: ActiveSession): Promise<number> {
  const N = 2_000;
  const BATCH = 100;
  const rx = inNetns(
    t,
    s.link!.netns,
    `import { createSocket } from 'node:dgram';
     const sock = createSocket('udp4'); const seen = new Set();
     sock.on('message', (m, from) => { const text = m.toString();
       if (text.startsWith('sync:')) sock.send(text.slice(5) + ':' + seen.size, from.port, from.address);
       else seen.add(text); });
     sock.bind(9200, '${s.link!.peerAddr}', () => console.log('ready'));`,
  );
  assert.equal(await rx.firstLine, 'ready');
  const tx = createSocket('udp4');
  t.after(() => tx.close());
  const replies = new Map<number, number>();
  tx.on('message', (m) => {
    const [k, n] = m.toString().split(':').map(Number);
    replies.set(k!, n!);
  });
  const send = (msg: string) => new Promise<void>((resolve, reject) => tx.send(msg, 9200, s.link!.peerAddr, (err) => (err ? reject(err) : resolve())));
  let received = 0;
  for (let b = 0; b < N / BATCH; b++) {
    for (let i = 0; i < BATCH; i++) await send(`p${b * BATCH + i}`);
    for (let tries = 0; !replies.has(b); tries++) {
      assert.ok(tries < 200, `no answer to sync ${b}`);
      await send(`sync:${b}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    received = replies.get(b)!;
  }
  return N - received;
}

test('nftables 10 % random loss drops 5–15 % of 2,000 datagrams', { skip: why ?? (!caps?.nft && 'nft is not usable here (Debian package nftables)') }, async (t) => {
  const s = await apply(t, 'loss-10pct', 'nft');
  assert.deepEqual(s.plan.report.map((r) => [r.field, r.backend]), [['loss', 'nft']]);
  const lost = await udpLoss(t, s);
  t.diagnostic(`lost ${lost} of 2000`);
  assert.ok(lost >= 100 && lost <= 300, `lost ${lost} of 2000 (${(lost / 20).toFixed(1)} %)`);
});

test('iptables 10 % random loss (statistic match) drops 5–15 % of 2,000 datagrams', { skip: why ?? (!caps?.iptables && 'iptables is not usable here (Debian package iptables)') }, async (t) => {
  const s = await apply(t, 'loss-10pct', 'iptables');
  assert.deepEqual(s.plan.report.map((r) => [r.field, r.backend]), [['loss', 'iptables']]);
  const lost = await udpLoss(t, s);
  t.diagnostic(`lost ${lost} of 2000`);
  assert.ok(lost >= 100 && lost <= 300, `lost ${lost} of 2000 (${(lost / 20).toFixed(1)} %)`);
});

// ---- leftovers: what the machine shows, listed the way an operator would ----

/**
 * What the machine still shows of the given sessions, listed the way an operator would. Scoped by session id
 * (every name pushctl gives contains it): other pushctl chaos runs on this machine are not ours to judge.
 */
function leftovers(ids: string[]): string[] {
  const out: string[] = [];
  const sh = (argv: string[]) => spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' }).stdout ?? '';
  const ours = (l: string) => ids.some((id) => l.includes(id));
  for (const l of sh(['ip', 'netns', 'list']).split('\n')) if (ours(l)) out.push(`netns ${l}`);
  for (const l of sh(['tc', 'qdisc', 'show']).split('\n')) if (ours(l)) out.push(`qdisc ${l}`);
  for (const l of sh(['ip', '-o', 'link', 'show']).split('\n')) if (ours(l)) out.push(`link ${l}`);
  for (const l of sh(['nft', 'list', 'tables']).split('\n')) if (ours(l)) out.push(`nft ${l}`);
  for (const l of sh(['iptables-save']).split('\n')) if (ours(l)) out.push(`iptables ${l}`);
  return out;
}

interface Held {
  child: ChildProcess;
  output: () => string;
}

/** `pushctl chaos apply` holding a profile in the background, once it says the session is active. */
async function holdApply(t: TestContext, args: string[]): Promise<Held> {
  const child = spawn(process.execPath, ['bin/run.js', 'chaos', 'apply', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`chaos apply not active in 60 s:\n${out}`)), 60_000);
    child.stdout!.on('data', () => {
      if (/session \w+ active/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (c) => {
      clearTimeout(timer);
      reject(new Error(`chaos apply exited ${c}:\n${out}`));
    });
  });
  return { child, output: () => out };
}

function pushctl(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, ['bin/run.js', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

test('chaos off undoes a held profile; a SIGKILLed holder is undone by the next pushctl chaos run', { skip: why }, async (t) => {
  const dataDir = tempDataDir(t);
  // A profile that touches every kind: tbf qdiscs, an nft table, a proxy and the namespace forwarder.
  const echo = await import('node:net').then(({ createServer }) => createServer((s) => s.pipe(s)));
  const port = await new Promise<number>((r) => echo.listen(0, '127.0.0.1', () => r((echo.address() as { port: number }).port)));
  t.after(() => echo.close());
  const args = ['lossy-wifi', '--target', 'clients', '--port', String(port), '--data-dir', dataDir];

  const first = await holdApply(t, args);
  const [session] = readChaosState(dataDir).sessions;
  assert.ok(session, 'the session is recorded');
  const kinds = new Set(session.resources.map((r) => r.kind));
  for (const k of ['netns', 'veth', 'qdisc', 'nft-table', 'process']) assert.ok(kinds.has(k as never), `recorded a ${k}: ${JSON.stringify(session.resources)}`);
  assert.ok(leftovers([session.id]).length >= 3, `applied: ${leftovers([session.id]).join('\n')}`);
  const off = pushctl(['chaos', 'off', '--data-dir', dataDir]);
  assert.equal(off.code, 0, off.out);
  await new Promise<void>((r) => (first.child.exitCode !== null ? r() : first.child.once('exit', () => r())));
  assert.match(first.output(), /everything undone/);
  assert.deepEqual(leftovers([session.id]), [], 'nothing left after chaos off');
  assert.equal(readChaosState(dataDir).sessions.length, 0);

  // Mid-profile SIGKILL: nothing can run in the holder, so everything stays until pushctl runs again.
  const second = await holdApply(t, args);
  const s2 = readChaosState(dataDir).sessions[0]!;
  const forwarder = s2.resources.find((r) => r.kind === 'process');
  assert.ok(forwarder && forwarder.kind === 'process');
  second.child.kill('SIGKILL');
  await new Promise<void>((r) => second.child.once('exit', () => r()));
  assert.ok(leftovers([s2.id]).length >= 3, 'a killed holder leaves its namespace, qdiscs and rules behind');
  assert.ok(isAlive(forwarder.pid, forwarder.startTime), 'and its forwarder');
  const status = pushctl(['chaos', 'status', '--data-dir', dataDir]);
  assert.equal(status.code, 0, status.out);
  assert.match(status.out, /left behind by pid \d+; undoing it/);
  assert.match(status.out, /chaos: nothing applied/);
  assert.deepEqual(leftovers([s2.id]), [], 'nothing left after the next run');
  assert.equal(isAlive(forwarder.pid, forwarder.startTime), false, 'the forwarder is stopped');
});

test('--dry-run prints every command and changes nothing', { skip: why }, async (t) => {
  const dataDir = tempDataDir(t);
  const r = pushctl(['chaos', 'apply', 'comcast-gprs', '--target', 'clients', '--dry-run', '--port', '9', '--data-dir', dataDir]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /^ip netns add mpchaos-[0-9a-f]{6}$/m);
  assert.match(r.out, /tc qdisc replace dev mpc[0-9a-f]{6}h root handle 1: tbf rate 50000bit/);
  assert.match(r.out, /numgen random mod 10000 < 200 drop/);
  assert.match(r.out, /loss .*→ nft/);
  const id = /^ip netns add mpchaos-([0-9a-f]{6})$/m.exec(r.out)![1]!;
  assert.deepEqual(leftovers([id]), []);
  assert.equal(readChaosState(dataDir).sessions.length, 0);
});

for (const tool of ['nft', 'iptables'] as const) {
test(`a flapping ${tool} partition (reset) refuses connections while cut and lets them through while up`, { skip: why ?? (!caps?.[tool] && `${tool} is not usable here`) }, async (t) => {
  const dataDir = tempDataDir(t);
  const { parseProfileText } = await import('../../cli/lib/chaos/profile.ts');
  const s = await applyProfile({
    dataDir,
    profile: parseProfileText('source: test\npartition: {mode: reset, schedule: {up: 700ms, down: 700ms}}\n', 'flap'),
    target: 'clients',
    backend: tool,
    dryRun: false,
    ports: [],
    print: () => {},
  });
  t.after(() => s.revert());
  assert.deepEqual(s.plan.report.map((r) => [r.field, r.backend]), [['partition', tool]]);
  const rx = inNetns(t, s.link!.netns, `import { createServer } from 'node:net'; createServer((c) => c.end()).listen(9300, '${s.link!.peerAddr}', () => console.log('ready'));`);
  assert.equal(await rx.firstLine, 'ready');
  const outcomes: string[] = [];
  const deadline = Date.now() + 3_200;
  while (Date.now() < deadline) {
    outcomes.push(
      await new Promise<string>((resolve) => {
        const c = connect({ host: s.link!.peerAddr, port: 9300, timeout: 500 });
        c.once('connect', () => {
          c.destroy();
          resolve('ok');
        });
        c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        c.once('timeout', () => {
          c.destroy();
          resolve('timeout');
        });
      }),
    );
    await new Promise((r) => setTimeout(r, 50));
  }
  t.diagnostic(`outcomes: ${outcomes.join(' ')}`);
  assert.ok(outcomes.includes('ok'), 'connections pass while the link is up');
  assert.ok(outcomes.includes('ECONNREFUSED'), 'connections are reset while it is cut');
  assert.ok(!outcomes.includes('timeout'), 'reset mode answers at once, it does not blackhole');
  // Up → cut → up: the outcome changes at least twice.
  const changes = outcomes.filter((o, i) => i > 0 && o !== outcomes[i - 1]).length;
  assert.ok(changes >= 2, `flapped ${changes} times`);
});
}

test('without root: backends says only the proxy remains, a namespace target is refused with why, a role target still works', { skip: !root && 'needs root to run pushctl as another user (nobody)' }, async (t) => {
  const dataDir = tempDataDir(t);
  spawnSync('chmod', ['0777', dataDir]);
  const asNobody = (args: string[]) => spawnSync(process.execPath, ['bin/run.js', ...args], { cwd: ROOT, encoding: 'utf8', uid: 65534, gid: 65534, env: { ...process.env, HOME: dataDir }, timeout: 60_000 });
  const b = asNobody(['chaos', 'backends']);
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stdout, /backends available: proxy$/m);
  const refused = asNobody(['chaos', 'apply', 'loss-10pct', '--target', 'clients', '--data-dir', dataDir]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /needs a network namespace, which needs root; without root only the proxy backend remains/);
  const proxied = asNobody(['chaos', 'apply', 'comcast-gprs', '--target', 'tcp:127.0.0.1:9', '--duration', '200ms', '--data-dir', dataDir]);
  assert.equal(proxied.status, 0, proxied.stderr);
  assert.match(proxied.stdout, /delay .*→ proxy/);
  assert.match(proxied.stdout, /loss .*✗ not realised .*a TCP proxy cannot lose packets/);
  assert.match(proxied.stdout, /everything undone/);
  const nothing = asNobody(['chaos', 'apply', 'loss-10pct', '--target', 'tcp:127.0.0.1:9', '--data-dir', dataDir]);
  assert.equal(nothing.status, 1);
  assert.match(nothing.stderr, /nothing of loss-10pct can be realised on tcp:127.0.0.1:9 here/);
  assert.equal(readChaosState(dataDir).sessions.length, 0);
});

for (const tool of ['nft', 'iptables'] as const) {
  test(`--iface lo with a role's port (${tool}): a reset partition cuts open and new connections to that port only, and is undone`, { skip: why ?? (!caps?.[tool] && `${tool} is not usable here`) }, async (t) => {
    const { createServer } = await import('node:net');
    // The far end of a reset connection never hears of it: every accepted socket is closed at the end.
    const accepted = new Set<import('node:net').Socket>();
    const echo = () => createServer((s) => {
      accepted.add(s);
      s.on('error', () => {}).pipe(s);
    });
    const servers = [echo(), echo()];
    const [victim, bystander] = await Promise.all(servers.map((srv) => new Promise<number>((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as { port: number }).port)))));
    t.after(() => {
      for (const a of accepted) a.destroy();
      servers.forEach((srv) => srv.close());
    });
    const dial = (port: number) =>
      new Promise<import('node:net').Socket>((resolve, reject) => {
        const c = connect({ host: '127.0.0.1', port, timeout: 2_000 }, () => resolve(c));
        c.once('error', reject);
        c.once('timeout', () => reject(new Error('timeout')));
      });
    const open = await dial(victim);
    open.on('error', () => {});
    t.after(() => open.destroy());
    const dataDir = tempDataDir(t);
    const s = await applyProfile({
      dataDir,
      profile: resolveProfile('partition-reset'),
      target: `tcp:127.0.0.1:${victim}`,
      iface: 'lo',
      backend: tool,
      dryRun: false,
      ports: [],
      print: () => {},
    });
    let reverted = false;
    t.after(() => (reverted ? undefined : s.revert()));
    assert.deepEqual(s.plan.report.map((r) => [r.field, r.backend]), [['partition', tool]]);
    assert.equal(s.plan.tcDown, undefined, 'never a qdisc on a host interface for a port target');
    // The open connection is cut: what it sends is answered with a reset.
    const cut = new Promise<string>((resolve) => {
      open.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      open.once('close', () => resolve('close'));
    });
    open.write('ping');
    assert.equal(await cut, 'ECONNRESET');
    await assert.rejects(dial(victim), /ECONNREFUSED|ECONNRESET/);
    (await dial(bystander)).destroy(); // another port on lo is untouched
    await s.revert();
    reverted = true;
    (await dial(victim)).destroy();
    assert.deepEqual(leftovers([s.session.id]), []);
  });
}

test('two pushctl chaos apply at once share a data dir: both recorded, different subnets, one chaos off undoes both', { skip: why }, async (t) => {
  const dataDir = tempDataDir(t);
  const [a, b] = await Promise.all([
    holdApply(t, ['bw-1mbit', '--target', 'clients', '--data-dir', dataDir]),
    holdApply(t, ['loss-10pct', '--target', 'clients', '--data-dir', dataDir]),
  ]);
  const sessions = readChaosState(dataDir).sessions;
  assert.equal(sessions.length, 2);
  assert.notEqual(sessions[0]!.hostAddr, sessions[1]!.hostAddr);
  const ids = sessions.map((x) => x.id);
  assert.equal(leftovers(ids).filter((l) => l.startsWith('netns')).length, 2);
  const off = pushctl(['chaos', 'off', '--data-dir', dataDir]);
  assert.equal(off.code, 0, off.out);
  await Promise.all([a, b].map((h) => new Promise<void>((r) => (h.child.exitCode !== null ? r() : h.child.once('exit', () => r())))));
  assert.deepEqual(leftovers(ids), []);
});

test('an undo that silently fails keeps the record of exactly what is left, and a later undo finishes it', { skip: why }, async (t) => {
  const { Shell } = await import('../../cli/lib/chaos/shell.ts');
  const { undoSession } = await import('../../cli/lib/chaos/session.ts');
  const dataDir = tempDataDir(t);
  const s = await applyProfile({ dataDir, profile: resolveProfile('bw-1mbit'), target: 'clients', backend: 'tc', dryRun: false, ports: [], print: () => {} });
  t.after(() => s.revert());
  // A shell whose commands do nothing, as when `ip`/`tc` fail under a busy machine and the failure is tolerated.
  class DeafShell extends Shell {
    override run(): string {
      return '';
    }
  }
  const lines: string[] = [];
  assert.equal(await undoSession(dataDir, readChaosState(dataDir).sessions[0]!, new DeafShell(), (l) => lines.push(l)), false);
  assert.match(lines.join('\n'), /could not undo .*"netns"/);
  const kept = readChaosState(dataDir).sessions[0]!;
  assert.deepEqual(kept.resources.map((r) => r.kind).sort(), ['netns', 'qdisc', 'qdisc', 'veth']);
  assert.ok(leftovers([s.session.id]).length > 0);
  assert.equal(await undoSession(dataDir, kept, new Shell(), () => {}), true);
  assert.deepEqual(leftovers([s.session.id]), []);
  assert.equal(readChaosState(dataDir).sessions.length, 0);
});
