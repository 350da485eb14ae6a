// pushctl doctor on this machine (its findings checked against /proc), and
// pushctl tune: --dry-run lists the changes and touches nothing; a real
// apply and --undo run only inside a network namespace made for the test,
// on per-namespace net.* keys, so the host is never changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushctl } from '../helpers/pushctl.ts';
import { readFdLimit } from '../../system/common/fd-limit.ts';

const proc = (key: string) => readFileSync(`/proc/sys/${key.replace(/\./g, '/')}`, 'utf8').trim().split(/\s+/).join(' ');
const inNs = (ns: string, key: string) => execFileSync('ip', ['netns', 'exec', ns, 'cat', `/proc/sys/${key.replace(/\./g, '/')}`], { encoding: 'utf8' }).trim().split(/\s+/).join(' ');
const NET_KEYS = ['net.core.somaxconn', 'net.ipv4.tcp_max_syn_backlog', 'net.ipv4.tcp_tw_reuse', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_local_reserved_ports', 'net.ipv4.tcp_congestion_control'];
const hostSnapshot = () => Object.fromEntries([...NET_KEYS, 'fs.nr_open', 'fs.file-max'].map((k) => [k, proc(k)]));
const doctorNetns = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('mpdoctor-'));

interface DoctorJson {
  checks: Array<{ id: string; status: 'ok' | 'warn'; detail: string; fix?: string }>;
  warnings: number;
}

async function doctor(args: string[]): Promise<DoctorJson> {
  const r = await pushctl(['doctor', '--json', ...args]);
  assert.equal(r.code, 0, r.out);
  return JSON.parse(r.stdout) as DoctorJson;
}

test('doctor reports this machine as /proc sees it, and leaves no namespace behind', async () => {
  const before = doctorNetns();
  const hard = readFdLimit()!.hard;
  const nrOpen = Number(proc('fs.nr_open'));
  for (const connections of [1_000, 50_000]) {
    const out = await doctor(['--connections', String(connections)]);
    const ids = out.checks.map((c) => c.id);
    for (const id of ['nofile', 'somaxconn', 'ephemeral-ports', 'tw-reuse', 'congestion', 'netem', 'cpu-quota']) assert.ok(ids.includes(id), `no ${id} check`);
    const nofile = out.checks.find((c) => c.id === 'nofile')!;
    const enough = hard >= connections + 1024 && nrOpen >= connections + 1024;
    assert.equal(nofile.status, enough ? 'ok' : 'warn', nofile.detail);
    assert.match(nofile.detail, new RegExp(`hard ${hard === Infinity ? 'unlimited' : hard}\\b`));
    if (!enough) assert.match(nofile.fix!, new RegExp(`nofile=${connections + 1024}`));
    assert.equal(out.warnings, out.checks.filter((c) => c.status === 'warn').length);
    for (const c of out.checks) if (c.status === 'warn') assert.ok(c.fix, `${c.id} warns without a fix`);
  }
  const out = await doctor(['--connections', '1000']);
  const get = (id: string) => out.checks.find((c) => c.id === id)!;
  assert.match(get('somaxconn').detail, new RegExp(`somaxconn ${proc('net.core.somaxconn')}\\b`));
  assert.match(get('ephemeral-ports').detail, new RegExp(`^${proc('net.ipv4.ip_local_port_range').replace(' ', '-')} `));
  assert.equal(get('tw-reuse').status, proc('net.ipv4.tcp_tw_reuse') === '1' ? 'ok' : 'warn');
  assert.equal(get('congestion').status, proc('net.ipv4.tcp_congestion_control') === 'bbr' ? 'ok' : 'warn');
  assert.match(get('congestion').detail, new RegExp(`^${proc('net.ipv4.tcp_congestion_control')} in use`));
  // netem was really tried (as root) and its namespace removed; its verdict matches what tc says on a throwaway veth.
  if (process.getuid?.() === 0) assert.doesNotMatch(get('netem').detail, /not checked/);
  assert.deepEqual(doctorNetns(), before, 'doctor left a network namespace behind');

  // A port plan inside the ephemeral range, not reserved: a warning that names the reservation.
  const [lo] = proc('net.ipv4.ip_local_port_range').split(' ').map(Number);
  const reserved = proc('net.ipv4.ip_local_reserved_ports');
  if (!reserved) {
    const inside = await doctor(['--port-base', String(lo! + 10), '--no-netem']);
    const eph = inside.checks.find((c) => c.id === 'ephemeral-ports')!;
    assert.equal(eph.status, 'warn');
    assert.match(eph.fix!, new RegExp(`ip_local_reserved_ports=${lo! + 10}-${lo! + 10 + 1199}`));
  }
});

test('doctor prints OK/WARN lines with fixes; bad flags are refused', async () => {
  const r = await pushctl(['doctor', '--no-netem', '--connections', '1000']);
  assert.equal(r.code, 0, r.out);
  const lines = r.stdout.split('\n').filter((l) => /^(OK|WARN)\s/.test(l));
  assert.ok(lines.length >= 7, r.stdout);
  for (const [i, l] of r.stdout.split('\n').entries()) if (l.startsWith('WARN')) assert.match(r.stdout.split('\n')[i + 1]!, /^\s+fix: /);
  const strict = await pushctl(['doctor', '--no-netem', '--strict']);
  // --no-netem leaves netem unchecked, which is a warning: --strict exits 1.
  assert.equal(strict.code, 1, strict.out);
  const bad = await pushctl(['doctor', '--connections', '0']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /connections/);
  const badBase = await pushctl(['doctor', '--port-base', '70000']);
  assert.equal(badBase.code, 2);
});

test('tune --dry-run lists the sysctl commands and changes nothing', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mp-tune-dry-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const before = hostSnapshot();
  // Port base inside the ephemeral range and a huge connection count: the reservation and fs.* are certainly planned.
  const [lo] = proc('net.ipv4.ip_local_port_range').split(' ').map(Number);
  const r = await pushctl(['tune', '--dry-run', '--data-dir', dataDir, '--port-base', String(lo! + 10), '--connections', String(Number(proc('fs.nr_open')) + 1)]);
  assert.equal(r.code, 0, r.out);
  const cmds = r.stdout.split('\n').filter((l) => l.startsWith('sysctl -w '));
  assert.ok(cmds.some((c) => c.startsWith('sysctl -w fs.nr_open=')), r.stdout);
  if (!proc('net.ipv4.ip_local_reserved_ports')) assert.ok(cmds.some((c) => c.includes(`net.ipv4.ip_local_reserved_ports=${lo! + 10}-`)), r.stdout);
  for (const c of cmds) {
    const key = c.slice('sysctl -w '.length).split('=')[0]!;
    assert.match(r.stdout, new RegExp(`# ${key.replace(/\./g, '\\.')}: .* → `), `${key} is explained`);
  }
  assert.deepEqual(hostSnapshot(), before, 'a dry run changed the host');
  assert.equal(existsSync(join(dataDir, 'tune.json')), false, 'a dry run recorded something');
});

test('tune applies and undoes inside a network namespace, recording the old values first; the host stays as it was', async (t) => {
  if (process.getuid?.() !== 0) throw new Error('this test needs root (ip netns); CI runs as root');
  const ns = `mptune-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  t.after(() => spawnSync('ip', ['netns', 'del', ns]));
  const dataDir = mkdtempSync(join(tmpdir(), 'mp-tune-ns-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const hostBefore = hostSnapshot();
  // Start the namespace from values tune must change.
  execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=0', 'net.core.somaxconn=128']);
  const nsBefore = Object.fromEntries(NET_KEYS.map((k) => [k, inNs(ns, k)]));
  const [lo] = nsBefore['net.ipv4.ip_local_port_range']!.split(' ').map(Number);
  const base = lo! + 100;
  const args = ['tune', '--netns', ns, '--data-dir', dataDir, '--port-base', String(base), '--connections', String(Number(proc('fs.nr_open')) + 1)];

  const r = await pushctl(args);
  assert.equal(r.code, 0, r.out);
  assert.match(r.stdout, /# skipped fs\.nr_open .*host-wide/);
  assert.equal(inNs(ns, 'net.ipv4.tcp_tw_reuse'), '1');
  assert.equal(inNs(ns, 'net.core.somaxconn'), '4096');
  assert.equal(inNs(ns, 'net.ipv4.ip_local_reserved_ports'), `${base}-${base + 1199}`);
  assert.deepEqual(hostSnapshot(), hostBefore, 'tuning a namespace changed the host');
  const rec = JSON.parse(readFileSync(join(dataDir, `tune-netns-${ns}.json`), 'utf8')) as { netns: string; changes: Array<{ key: string; before: string; after: string }> };
  assert.equal(rec.netns, ns);
  assert.deepEqual(
    Object.fromEntries(rec.changes.map((c) => [c.key, c.before])),
    Object.fromEntries(rec.changes.map((c) => [c.key, nsBefore[c.key]])),
    'the record holds the values from before',
  );
  assert.ok(rec.changes.some((c) => c.key === 'net.ipv4.tcp_tw_reuse' && c.before === '0'));

  // Tuning again changes nothing and keeps the first "before".
  const again = await pushctl(args);
  assert.equal(again.code, 0, again.out);
  assert.match(again.stdout, /nothing to change/);

  const undo = await pushctl(['tune', '--undo', '--netns', ns, '--data-dir', dataDir]);
  assert.equal(undo.code, 0, undo.out);
  assert.deepEqual(Object.fromEntries(NET_KEYS.map((k) => [k, inNs(ns, k)])), nsBefore, 'undo put every value back');
  assert.equal(existsSync(join(dataDir, `tune-netns-${ns}.json`)), false, 'the record is removed');
  assert.deepEqual(hostSnapshot(), hostBefore);

  const nothing = await pushctl(['tune', '--undo', '--netns', ns, '--data-dir', dataDir]);
  assert.equal(nothing.code, 0);
  assert.match(nothing.stdout, /nothing to undo/);

  // A namespace that is gone: tune refuses it, and --undo of its record says its settings went with it.
  await pushctl(args);
  spawnSync('ip', ['netns', 'del', ns]);
  const gone = await pushctl(['tune', '--undo', '--netns', ns, '--data-dir', dataDir]);
  assert.equal(gone.code, 0, gone.out);
  assert.match(gone.stdout, /no longer exists/);
  assert.equal(existsSync(join(dataDir, `tune-netns-${ns}.json`)), false);
  const refused = await pushctl(['tune', '--netns', ns, '--data-dir', dataDir]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`no network namespace "${ns}"`));
  const badName = await pushctl(['tune', '--netns', 'a b', '--data-dir', dataDir]);
  assert.equal(badName.code, 1);
  assert.match(badName.stderr, /not a namespace name/);
  assert.deepEqual(hostSnapshot(), hostBefore);
});
