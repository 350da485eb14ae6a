// A scenario's `private:` section: authenticated private order-stream
// sessions instead of replayed public ones (scenarios/README.md,
// "private:"). Parsing and the split of connections over users and agents
// only; the sessions are private-session.ts, the controller's part private-run.ts.

/** What a scenario asks for. */
export interface PrivateSpec {
  /** Users user1…userN (the order-flow simulator's names, with `userPrefix`). */
  users: number;
  /** Connections per user: every one subscribes to that user's `orders` stream. */
  perUser: number;
  userPrefix: string;
  /** An ACK (with an id, so its reply can be timed) after N order events a connection receives… */
  ackEvery: number;
  /** …and at least this long after its previous one: the gateway allows 5 client messages a second (inboundRatePerSec). */
  ackIntervalMs: number;
  /** Connects in flight at once per agent. */
  concurrency: number;
}

/** What the controller adds for the agents: tokens it minted, and where the streams start. */
export interface PrivatePlan extends PrivateSpec {
  /** user → JWT (HS256, signed with the cluster's key). */
  tokens: Record<string, string>;
  /** The ORDERS stream's last seq before the run: the first subscribe of each user starts after it. */
  after: number;
}

const KEYS = new Set(['users', 'perUser', 'userPrefix', 'ackEvery', 'ackInterval', 'concurrency']);
const SETTINGS = 'users, perUser, userPrefix, ackEvery, ackInterval, concurrency';
// Same rule as the gateway's user ids (system/common/api-keys.ts USER_ID), with room for the number.
const PREFIX = /^[-_=a-zA-Z0-9]{1,40}$/;

function count(v: unknown, d: number, what: string, max: number): number {
  if (v === undefined) return d;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new Error(`${what} must be a whole number from 1 to ${max} (got ${JSON.stringify(v)})`);
  return v;
}

/** `ackInterval`: ms (a number or "250ms", "1s"); default 250 ms, 4 ACKs a second at most (the gateway refuses a 6th). */
function interval(v: unknown, what: string): number {
  if (v === undefined) return 250;
  const m = typeof v === 'number' ? [String(v), String(v), 'ms'] : typeof v === 'string' ? /^(\d+(?:\.\d+)?)(ms|s)$/.exec(v.trim()) : null;
  const ms = m ? Number(m[1]) * (m[2] === 's' ? 1_000 : 1) : Number.NaN;
  if (!(ms >= 0 && ms <= 60_000)) throw new Error(`${what} must be a duration from 0 to 60s, e.g. 250ms (got ${JSON.stringify(v)})`);
  return ms;
}

/** Parses `private:`; `where` names the file in errors. */
export function parsePrivate(raw: unknown, where = 'scenario'): PrivateSpec {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${where}: private must be a mapping (${SETTINGS})`);
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.has(k)) throw new Error(`${where}: private.${k} is not a setting (${SETTINGS})`);
  const userPrefix = o.userPrefix === undefined ? 'user' : String(o.userPrefix);
  if (!PREFIX.test(userPrefix)) throw new Error(`${where}: private.userPrefix "${userPrefix}": 1-40 of A-Z a-z 0-9 - _ =`);
  return {
    users: count(o.users, 100, `${where}: private.users`, 10_000),
    perUser: count(o.perUser, 1, `${where}: private.perUser`, 100_000),
    userPrefix,
    ackEvery: count(o.ackEvery, 10, `${where}: private.ackEvery`, 1_000_000),
    ackIntervalMs: interval(o.ackInterval, `${where}: private.ackInterval`),
    concurrency: count(o.concurrency, 100, `${where}: private.concurrency`, 10_000),
  };
}

export const privateUsers = (p: Pick<PrivateSpec, 'users' | 'userPrefix'>): string[] => Array.from({ length: p.users }, (_, i) => `${p.userPrefix}${i + 1}`);

export const privateConnections = (p: Pick<PrivateSpec, 'users' | 'perUser'> | undefined): number => (p ? p.users * p.perUser : 0);

/**
 * This agent's connections: global connection g goes to user g mod users (so
 * every agent serves every user when it can) and to agent g mod agents.
 */
export function privateShare(p: Pick<PrivateSpec, 'users' | 'perUser' | 'userPrefix'>, index: number, agents: number): Array<{ key: string; user: string }> {
  const users = privateUsers(p);
  const out: Array<{ key: string; user: string }> = [];
  for (let g = 0; g < users.length * p.perUser; g++) {
    if (g % agents !== index) continue;
    const user = users[g % users.length]!;
    out.push({ key: `${user}#${Math.floor(g / users.length)}`, user });
  }
  return out;
}
