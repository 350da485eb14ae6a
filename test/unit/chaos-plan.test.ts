import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iptablesRules, nftScript, planLink, tbfBurst, type Capabilities } from '../../cli/lib/chaos/plan.ts';
import { parseProfileText, resolveProfile } from '../../cli/lib/chaos/profile.ts';

const thisKernel: Capabilities = { root: true, netns: true, netem: false, tbf: true, nft: true, iptables: true, notes: [] };
const withNetem: Capabilities = { ...thisKernel, netem: true };
const noRoot: Capabilities = { root: false, netns: false, netem: false, tbf: false, nft: false, iptables: false, notes: [] };
const fields = (r: { field: string; backend: string | null }[]) => Object.fromEntries(r.map((x) => [x.field, x.backend]));

test('auto on a kernel without netem: delay from the proxy, bandwidth tbf, loss nft, the rest said to be impossible', () => {
  const plan = planLink({ profile: resolveProfile('lossy-wifi'), caps: thisKernel, choice: 'auto', link: true });
  assert.deepEqual(fields(plan.report), { delay: 'proxy', bandwidth: 'tc', loss: 'nft', duplicate: null, reorder: null });
  assert.match(plan.report.find((r) => r.field === 'delay')!.note!, /netem is missing/);
  assert.match(plan.report.find((r) => r.field === 'loss')!.note!, /correlation not realised/);
  assert.deepEqual(plan.tcDown?.args, ['tbf', 'rate', '20000000bit', 'burst', String(tbfBurst(20e6)), 'latency', '200ms']);
  assert.deepEqual(plan.proxy?.down, { latencyMs: 20, jitterMs: 10, distribution: 'normal' });
  assert.deepEqual(plan.filter, { tool: 'nft', lossUp: 5, lossDown: 5 });
});

test('auto with netem: one netem qdisc per direction carries delay, jitter, loss, duplicate, reorder and rate', () => {
  const plan = planLink({ profile: resolveProfile('lossy-wifi'), caps: withNetem, choice: 'auto', link: true });
  assert.ok(plan.report.every((r) => r.backend === 'tc'));
  assert.equal(plan.tcDown?.args.join(' '), 'netem delay 20ms 10ms distribution normal loss random 5% 25% duplicate 1% reorder 2% 25% rate 20000000bit');
  assert.equal(plan.proxy, undefined);
  assert.equal(plan.filter, undefined);
  const asym = planLink({ profile: resolveProfile('wpt-3g'), caps: withNetem, choice: 'auto', link: true });
  assert.match(asym.tcDown!.args.join(' '), /delay 150ms rate 1600000bit/);
  assert.match(asym.tcUp!.args.join(' '), /delay 150ms rate 768000bit/);
});

test('explicit backends do only what they can; without root only the proxy remains', () => {
  const gprs = resolveProfile('comcast-gprs');
  assert.deepEqual(fields(planLink({ profile: gprs, caps: thisKernel, choice: 'iptables', link: true }).report), { delay: null, bandwidth: null, loss: 'iptables' });
  assert.deepEqual(fields(planLink({ profile: gprs, caps: thisKernel, choice: 'proxy', link: true }).report), { delay: 'proxy', bandwidth: 'proxy', loss: null });
  const r = planLink({ profile: gprs, caps: noRoot, choice: 'auto', link: true }).report;
  assert.deepEqual(fields(r), { delay: 'proxy', bandwidth: 'proxy', loss: null });
  assert.match(r.find((x) => x.field === 'loss')!.note!, /needs root/);
  // An internal target has no link: the proxy, and partitions by the proxy.
  const part = planLink({ profile: resolveProfile('flapping-partition'), caps: thisKernel, choice: 'auto', link: false });
  assert.deepEqual(fields(part.report), { partition: 'proxy' });
  assert.deepEqual(part.proxyPartition, { mode: 'drop', schedule: { upMs: 20_000, downMs: 5_000 } });
  const slow = planLink({ profile: parseProfileText('source: s\nslowReader: 64kbit\nproxy: {resetAfter: 5s}\n', 'x'), caps: thisKernel, choice: 'auto', link: false });
  assert.deepEqual(slow.proxy, { slowReaderBps: 64_000, resetAfterMs: 5_000 });
});

test('nft and iptables rules: loss per direction by random numbers, partitions by DROP or REJECT with tcp-reset', () => {
  const nft = nftScript('mpchaos', 'vethX', { tool: 'nft', lossUp: 1.5, lossDown: 1.5, partition: { mode: 'reset' } }, true);
  assert.match(nft, /table inet mpchaos \{/);
  assert.match(nft, /oifname "vethX" numgen random mod 10000 < 150 drop/);
  assert.match(nft, /iifname "vethX" meta l4proto tcp reject with tcp reset/);
  assert.doesNotMatch(nftScript('mpchaos', 'vethX', { tool: 'nft', partition: { mode: 'drop' } }, false), /drop/);
  const ipt = iptablesRules('vethX', { tool: 'iptables', lossDown: 10, partition: { mode: 'drop' } }, true);
  assert.deepEqual(
    ipt.map((r) => `${r.chain} ${r.spec.join(' ')}`),
    [
      'OUTPUT -o vethX -m comment --comment mpchaos -j DROP',
      'INPUT -i vethX -m comment --comment mpchaos -j DROP',
      'INPUT -i vethX -m statistic --mode random --probability 0.1 -m comment --comment mpchaos -j DROP',
    ],
  );
});

test('a role port on a named host interface: filters scoped to the port, never a qdisc', () => {
  const plan = planLink({ profile: resolveProfile('comcast-gprs'), caps: withNetem, choice: 'auto', link: true, ports: [4222] });
  assert.deepEqual(fields(plan.report), { delay: 'proxy', bandwidth: 'proxy', loss: 'nft' });
  assert.equal(plan.tcDown, undefined);
  assert.equal(plan.tcUp, undefined);
  assert.deepEqual(plan.filter?.ports, [4222]);
  const nft = nftScript('mpchaos', 'lo', { tool: 'nft', lossUp: 2, lossDown: 2, ports: [4222], partition: { mode: 'reset' } }, true);
  assert.match(nft, /oifname "lo" tcp dport \{ 4222 \} reject with tcp reset/);
  assert.match(nft, /oifname "lo" tcp sport \{ 4222 \} numgen random mod 10000 < 200 drop/);
  assert.doesNotMatch(nft, /chain ingress/);
  const ipt = iptablesRules('lo', { tool: 'iptables', lossUp: 2, ports: [4222, 4223] }, false);
  assert.deepEqual(ipt.map((r) => `${r.chain} ${r.spec.join(' ')}`), ['OUTPUT -o lo -p tcp -m multiport --dports 4222,4223 -m statistic --mode random --probability 0.02 -m comment --comment mpchaos -j DROP']);
});
