// The controller's part of a private scenario (`private:`): tokens minted
// with the key of the cluster `pushctl up` recorded, the ORDERS position the
// streams start after, the gateways' RSS before and under load, and the
// agents' private results merged into the report's `private` figures.
import { SignJWT } from 'jose';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { readSecretsFile } from '../../../system/common/secrets.ts';
import { ORDERS_STREAM, orderSubject } from '../../../system/gateway/orders.ts';
import { readState } from '../state-file.ts';
import { secretsPath } from '../cluster-secrets.ts';
import { addEncoded, latencySummary, type LatencySummary } from './figures.ts';
import { newHistogram } from './meter.ts';
import { privateUsers, type PrivatePlan, type PrivateSpec } from './private-spec.ts';
import type { PrivateAgentResult } from './private-session.ts';

/** What the report shows for a private scenario. */
export interface PrivateFigures {
  users: number;
  perUser: number;
  connections: number;
  opened: number;
  /** Connections whose SUBSCRIBE was answered; SUBSCRIBEs the gateways refused (retried). */
  subscribed: number;
  subscribeRefusals: number;
  /** Connections opened per second: first connect attempt to the last first-time open, over every agent. */
  connectRate: number;
  connectSpanMs: number;
  orders: number;
  catchup: number;
  duplicates: number;
  gaps: number;
  acksSent: number;
  ackReplies: number;
  ackRtt: LatencySummary;
  /** Receive − the time JetStream stored the event (pt): the push system's part of the order latency, without the engine's publish queueing. */
  fromBus: LatencySummary;
  /** Σ gateway RSS under load − before, over the connections that delta covers (the gateways' own count when they report it). */
  memory?: { beforeMb: number; underLoadMb: number; connections: number; kbPerConnection: number; gateways: GatewaySample[] };
  /** Per user: its events (the most any agent saw), duplicates and gaps. */
  byUser: Record<string, { events: number; duplicates: number; gaps: number }>;
}

export interface GatewaySample {
  id: string;
  rssMb: number;
  connections?: number;
}

/** Tokens for every user, signed like `pushctl token` does, valid past the run; and where the streams start. */
export async function preparePrivate(
  spec: PrivateSpec,
  o: { dataDir?: string; nc: NatsConnection; durationMs: number },
): Promise<{ plan: PrivatePlan; warnings: string[] }> {
  const state = o.dataDir ? readState(o.dataDir) : undefined;
  if (!state || !o.dataDir) throw new Error(`a private scenario mints its users' tokens with the key of a cluster \`pushctl up --auth hs256\` recorded: none in ${o.dataDir ?? 'the data dir'}; pass --data-dir`);
  const auth = state.auth;
  if (!auth || auth.mode !== 'hs256') throw new Error(`the cluster in ${o.dataDir} checks tokens with --auth ${auth?.mode ?? '(unknown)'}: a private scenario needs one started with --auth hs256, whose key it signs with`);
  const key = readSecretsFile(state.endpoints.secretsFile ?? secretsPath(o.dataDir)).jwtHs256;
  const exp = Math.floor(Date.now() / 1000) + Math.ceil(o.durationMs / 1000) + 600;
  const users = privateUsers(spec);
  const tokens: Record<string, string> = {};
  const secret = new TextEncoder().encode(key);
  for (const user of users) {
    let jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(user).setIssuedAt().setExpirationTime(exp);
    if (auth.issuer) jwt = jwt.setIssuer(auth.issuer);
    if (auth.audience) jwt = jwt.setAudience(auth.audience);
    tokens[user] = await jwt.sign(secret);
  }
  // Start after what is stored now: no backlog replayed into the latency, every connection of a user from the same point.
  let info;
  try {
    info = await (await jetstreamManager(o.nc)).streams.info(ORDERS_STREAM, { subjects_filter: 'orders.>' });
  } catch (err) {
    throw new Error(`no ${ORDERS_STREAM} stream on the cluster's NATS (${(err as Error).message}): start it with \`pushctl up --users N\` (the order-flow simulator)`);
  }
  const warnings: string[] = [];
  const have = info.state.subjects ?? {};
  const silent = users.filter((u) => !have[orderSubject(u)]);
  if (silent.length) warnings.push(`${silent.length} of ${users.length} users have no order events in ${ORDERS_STREAM} (e.g. ${silent[0]}): is the cluster's --users at least ${users.length}? Their connections will receive nothing`);
  return { plan: { ...spec, tokens, after: info.state.last_seq }, warnings };
}

/** Every gateway's RSS and connections, from its admin /stats (the cluster's admin token); unreachable ones are left out. */
export async function sampleGateways(dataDir: string | undefined): Promise<GatewaySample[]> {
  const state = dataDir ? readState(dataDir) : undefined;
  if (!state || !dataDir) return [];
  const token = readSecretsFile(state.endpoints.secretsFile ?? secretsPath(dataDir)).adminToken;
  const out = await Promise.all(
    state.endpoints.gateways.filter((g) => g.admin).map(async (g): Promise<GatewaySample | undefined> => {
      try {
        const res = await fetch(`${g.admin}/stats`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(3_000) });
        const s = (await res.json()) as { rssMb?: number; connections?: number };
        return typeof s.rssMb === 'number' ? { id: g.id, rssMb: s.rssMb, ...(typeof s.connections === 'number' ? { connections: s.connections } : {}) } : undefined;
      } catch {
        return undefined;
      }
    }),
  );
  return out.filter((x): x is GatewaySample => x !== undefined);
}

export function mergePrivate(spec: PrivateSpec, results: PrivateAgentResult[], before: GatewaySample[], under: GatewaySample[], open: number): PrivateFigures {
  const ack = newHistogram();
  const bus = newHistogram();
  const sum = (k: 'connections' | 'opened' | 'subscribed' | 'subscribeRefusals' | 'orders' | 'catchup' | 'duplicates' | 'gaps' | 'acksSent' | 'ackReplies') => results.reduce((n, r) => n + r[k], 0);
  const byUser: PrivateFigures['byUser'] = {};
  for (const r of results) {
    addEncoded(ack, r.ack);
    if (r.bus) addEncoded(bus, r.bus);
    for (const [u, f] of Object.entries(r.perUser)) {
      const p = (byUser[u] ??= { events: 0, duplicates: 0, gaps: 0 });
      // Agents see the same user stream: its events are the most any agent saw, not their sum.
      p.events = Math.max(p.events, f.events);
      p.duplicates += f.duplicates;
      p.gaps += f.gaps;
    }
  }
  const first = Math.min(...results.filter((r) => r.firstAttemptUs > 0).map((r) => r.firstAttemptUs));
  const last = Math.max(...results.map((r) => r.lastOpenUs));
  const opened = sum('opened');
  const spanMs = Number.isFinite(first) && last > first ? (last - first) / 1000 : 0;
  let memory: PrivateFigures['memory'];
  const matched = under.filter((u) => before.some((b) => b.id === u.id));
  if (matched.length) {
    const beforeMb = matched.reduce((n, u) => n + before.find((b) => b.id === u.id)!.rssMb, 0);
    const underLoadMb = matched.reduce((n, u) => n + u.rssMb, 0);
    const counted = matched.every((u) => u.connections !== undefined && before.find((b) => b.id === u.id)!.connections !== undefined);
    const connections = counted ? matched.reduce((n, u) => n + u.connections! - before.find((b) => b.id === u.id)!.connections!, 0) : open;
    const r1 = (x: number) => Math.round(x * 10) / 10;
    memory = {
      beforeMb: r1(beforeMb), underLoadMb: r1(underLoadMb), connections,
      kbPerConnection: connections > 0 ? r1(((underLoadMb - beforeMb) * 1024) / connections) : 0, gateways: under,
    };
  }
  const out: PrivateFigures = {
    users: spec.users, perUser: spec.perUser, connections: sum('connections'), opened, subscribed: sum('subscribed'), subscribeRefusals: sum('subscribeRefusals'),
    connectRate: spanMs > 0 ? Math.round((opened * 1000) / spanMs) : 0, connectSpanMs: Math.round(spanMs),
    orders: sum('orders'), catchup: sum('catchup'), duplicates: sum('duplicates'), gaps: sum('gaps'),
    acksSent: sum('acksSent'), ackReplies: sum('ackReplies'), ackRtt: latencySummary(ack), fromBus: latencySummary(bus), ...(memory ? { memory } : {}), byUser,
  };
  ack.destroy();
  bus.destroy();
  return out;
}
