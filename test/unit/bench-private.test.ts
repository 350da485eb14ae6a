// A scenario's `private:` section (private order-stream sessions): what it
// parses to, what it refuses, how its connections split over users and
// agents, and the bundled private-orders scenario.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePrivate, privateShare, privateUsers } from '../../cli/lib/bench/private-spec.ts';
import { loadScenario } from '../../cli/lib/bench/scenario.ts';
import { resolveScenario } from '../../cli/lib/bench/bundled.ts';
import { totalCopies } from '../../cli/lib/bench/plan.ts';

test('private: defaults, and every setting read', () => {
  assert.deepEqual(parsePrivate({}), { users: 100, perUser: 1, userPrefix: 'user', ackEvery: 10, ackIntervalMs: 250, concurrency: 100 });
  assert.deepEqual(parsePrivate({ users: 3, perUser: 7, userPrefix: 'acct-', ackEvery: 1, ackInterval: '1s', concurrency: 5 }), {
    users: 3, perUser: 7, userPrefix: 'acct-', ackEvery: 1, ackIntervalMs: 1000, concurrency: 5,
  });
  assert.equal(parsePrivate({ ackInterval: 0 }).ackIntervalMs, 0);
  assert.deepEqual(privateUsers({ users: 3, userPrefix: 'user' }), ['user1', 'user2', 'user3']);
});

test('private: bad settings are refused, naming the file and the setting', () => {
  const bad: Array<[unknown, RegExp]> = [
    [[1, 2], /f\.yaml: private must be a mapping/],
    ['100', /private must be a mapping/],
    [{ users: 0 }, /f\.yaml: private\.users must be a whole number from 1 to 10000 \(got 0\)/],
    [{ users: 2.5 }, /private\.users must be a whole number/],
    [{ perUser: -1 }, /private\.perUser must be a whole number/],
    [{ ackEvery: 'ten' }, /private\.ackEvery must be a whole number/],
    [{ ackInterval: 'soon' }, /private\.ackInterval must be a duration from 0 to 60s/],
    [{ userPrefix: 'no spaces' }, /private\.userPrefix "no spaces"/],
    [{ user: 3 }, /private\.user is not a setting \(users, perUser/],
  ];
  for (const [raw, re] of bad) assert.throws(() => parsePrivate(raw, 'f.yaml'), re, JSON.stringify(raw));
});

test('connections split over agents: every one placed once, users interleaved', () => {
  const spec = { users: 3, perUser: 4, userPrefix: 'user' };
  const shares = [0, 1].map((i) => privateShare(spec, i, 2));
  const all = shares.flat();
  assert.equal(all.length, 12);
  assert.equal(new Set(all.map((s) => s.key)).size, 12);
  for (const u of privateUsers(spec)) assert.equal(all.filter((s) => s.user === u).length, 4);
  // Each agent serves every user (3 users, 2 agents): loss is checked across a user's connections on one agent.
  for (const share of shares) assert.equal(new Set(share.map((s) => s.user)).size, 3);
});

test('a private scenario file: loads with no capture, counts its connections, refuses a capture beside it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-private-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ok = join(dir, 'p.yaml');
  writeFileSync(ok, 'private: { users: 4, perUser: 5 }\nduration: 5s\n');
  const sc = loadScenario(ok);
  assert.equal(sc.sessions.length, 0);
  assert.equal(sc.private?.users, 4);
  assert.equal(totalCopies(sc), 20);
  const both = join(dir, 'both.yaml');
  writeFileSync(both, 'private: { users: 4 }\ncapture: x.jsonl\n');
  assert.throws(() => loadScenario(both), /a private scenario replays no captured sessions/);
  const wrong = join(dir, 'wrong.yaml');
  writeFileSync(wrong, 'private: { users: none }\n');
  assert.throws(() => loadScenario(wrong), /wrong\.yaml: private\.users must be a whole number/);
});

test('the bundled private-orders: 10,000 connections, 100 per user for 100 users', () => {
  const sc = loadScenario(resolveScenario('private-orders'));
  assert.equal(sc.private?.users, 100);
  assert.equal(sc.private?.perUser, 100);
  assert.equal(totalCopies(sc), 10_000);
});
