// pushctl doctor's judgement and pushctl tune's plan on made-up hosts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { covers, hostChecks, parsePortList, type HostFacts } from '../../cli/lib/host-checks.ts';
import { planTune } from '../../cli/lib/host-tune.ts';

const good: HostFacts = {
  nofile: { soft: 1_048_576, hard: 1_048_576 },
  nrOpen: 1_048_576,
  fileMax: 9_000_000,
  somaxconn: 4096,
  synBacklog: 8192,
  portRange: [10_000, 65_535],
  reservedPorts: '7100-8199',
  twReuse: 1,
  congestion: 'bbr',
  availableCongestion: ['reno', 'cubic', 'bbr'],
  bbrLoadable: true,
  defaultQdisc: 'fq',
  netem: { ok: true, detail: 'added and removed' },
  cpu: { listed: 8 },
};
const target = { connections: 100_000, portBase: 7100, portSpan: 1100 };
const byId = (f: HostFacts, t = target) => Object.fromEntries(hostChecks(f, t).map((c) => [c.id, c]));

test('a well-tuned host passes every check, and a WARN always carries a fix', () => {
  for (const c of hostChecks(good, target)) assert.equal(c.status, 'ok', `${c.id}: ${c.detail}`);
  const bad: HostFacts = {
    ...good,
    nofile: { soft: 1024, hard: 20_000 },
    somaxconn: 128,
    portRange: [1024, 9000],
    reservedPorts: '',
    twReuse: 2,
    congestion: 'cubic',
    netem: { ok: false, detail: 'no sch_netem' },
    cpu: { listed: 8, quota: 0.5 },
  };
  const checks = hostChecks(bad, target);
  for (const id of ['nofile', 'somaxconn', 'ephemeral-ports', 'tw-reuse', 'congestion', 'netem', 'cpu-quota'])
    assert.equal(checks.find((c) => c.id === id)?.status, 'warn', id);
  for (const c of checks.filter((x) => x.status === 'warn')) assert.ok(c.fix && c.fix.length > 10, `${c.id} has a fix`);
});

test('open files: the hard limit and fs.nr_open against connections + headroom', () => {
  assert.equal(byId({ ...good, nofile: { soft: 1024, hard: 200_000 } }).nofile!.status, 'ok', 'the soft limit is raised by each role');
  assert.equal(byId({ ...good, nofile: { soft: 20_000, hard: 20_000 } }).nofile!.status, 'warn');
  assert.equal(byId({ ...good, nofile: { soft: 20_000, hard: 20_000 } }, { ...target, connections: 18_000 }).nofile!.status, 'ok');
  const nrOpen = byId({ ...good, nrOpen: 65_536, nofile: { soft: 2e6, hard: 2e6 } }).nofile!;
  assert.equal(nrOpen.status, 'warn');
  assert.match(nrOpen.fix!, /fs\.nr_open=101024/);
});

test('ephemeral ports: overlap with the port plan is fine only when reserved; too few ports warn', () => {
  const overlap = byId({ ...good, portRange: [1024, 65_535], reservedPorts: '' })['ephemeral-ports']!;
  assert.equal(overlap.status, 'warn');
  assert.match(overlap.fix!, /ip_local_reserved_ports=7100-8199/);
  assert.equal(byId({ ...good, portRange: [1024, 65_535], reservedPorts: '7000-9000' })['ephemeral-ports']!.status, 'ok');
  assert.equal(byId({ ...good, portRange: [1024, 65_535], reservedPorts: '7100-7500' })['ephemeral-ports']!.status, 'warn', 'part of the plan unreserved');
  assert.equal(byId({ ...good, portRange: [50_000, 60_000] })['ephemeral-ports']!.status, 'warn', '10,001 ports');
  assert.deepEqual(parsePortList('7100-8199, 9000'), [[7100, 8199], [9000, 9000]]);
  assert.equal(covers([[1, 5]], 2, 4), true);
  assert.equal(covers([[1, 3]], 2, 4), false);
});

test('congestion control: BBR in use is OK; available-but-off gives the sysctl; absent says so', () => {
  assert.match(byId({ ...good, congestion: 'cubic' }).congestion!.fix!, /tcp_congestion_control=bbr/);
  assert.match(byId({ ...good, congestion: 'cubic', availableCongestion: ['cubic'], bbrLoadable: false }).congestion!.fix!, /CONFIG_TCP_CONG_BBR/);
});

test('tune plans only what falls short, and leaves host-wide keys out of a namespace', () => {
  const cur = {
    'net.core.somaxconn': '4096',
    'net.ipv4.tcp_max_syn_backlog': '2048',
    'net.ipv4.tcp_tw_reuse': '2',
    'net.ipv4.ip_local_port_range': '32768 60999',
    'net.ipv4.ip_local_reserved_ports': '',
    'net.ipv4.tcp_congestion_control': 'cubic',
    'net.ipv4.tcp_available_congestion_control': 'reno cubic',
    'net.core.default_qdisc': 'pfifo_fast',
    'fs.nr_open': '1048576',
    'fs.file-max': '100000',
  };
  const host = planTune(cur, { connections: 100_000, portBase: 40_000, portSpan: 1100 }, { bbrLoadable: true });
  const keys = host.changes.map((c) => `${c.key}=${c.to}`);
  assert.deepEqual(keys, [
    'net.ipv4.tcp_max_syn_backlog=8192',
    'net.ipv4.tcp_tw_reuse=1',
    'net.ipv4.ip_local_reserved_ports=40000-41099',
    'net.core.default_qdisc=fq',
    'net.ipv4.tcp_congestion_control=bbr',
    'fs.file-max=202048',
  ]);
  const ns = planTune(cur, { connections: 100_000, portBase: 40_000, portSpan: 1100 }, { netns: 'x', bbrLoadable: true });
  assert.deepEqual(ns.skipped.map((c) => c.key), ['net.core.default_qdisc', 'fs.file-max']);
  assert.ok(ns.changes.every((c) => c.key.startsWith('net.ipv4.') || c.key === 'net.core.somaxconn'));
  // The plan outside the ephemeral range, BBR on, enough of everything: nothing to do.
  const tuned = { ...cur, 'net.ipv4.tcp_max_syn_backlog': '8192', 'net.ipv4.tcp_tw_reuse': '1', 'net.ipv4.tcp_congestion_control': 'bbr', 'fs.file-max': '9000000' };
  assert.deepEqual(planTune(tuned, { connections: 100_000, portBase: 7100, portSpan: 1100 }, { bbrLoadable: true }).changes, []);
  // Existing reserved ports are kept.
  const merged = planTune({ ...tuned, 'net.ipv4.ip_local_reserved_ports': '50000' }, { connections: 1, portBase: 40_000, portSpan: 1100 }, { bbrLoadable: true });
  assert.deepEqual(merged.changes.map((c) => c.to), ['50000,40000-41099']);
});
