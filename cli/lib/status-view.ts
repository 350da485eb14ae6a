// The cluster status table: rows from a control /v1/topology snapshot, the
// plain-text table (`pushctl status`, non-TTY `up`) and the Ink view (TTY `up`).
import type { ClusterEndpoints, Listener } from './state-file.ts';
import React from 'react';
import { Box, Text, useWindowSize } from 'ink';
import type { NodeRecord } from '../../system/common/registry.ts';
import { EVENT_LOOP_TICK_MS } from '../../system/common/process-stats.ts';

export interface NodeRow {
  id: string;
  role: string;
  address: string;
  /** ok | draining | unhealthy (missed heartbeats) | stale | down (no answer) | died (process exited). */
  health: string;
  connections?: number;
  subscriptions?: number;
  msgsInPerSec?: number;
  msgsOutPerSec?: number;
  /** Fraction of one core. */
  cpu?: number;
  eventLoopP99Ms?: number;
  rssMb?: number;
}

export interface Totals {
  nodes: number;
  healthy: number;
  connections: number;
  subscriptions: number;
  msgsInPerSec: number;
  msgsOutPerSec: number;
}

const ROLE_ORDER = ['router', 'control', 'server', 'gateway', 'feed'];
/** A node not seen for this long is shown as stale, whatever control says. */
export const STALE_AFTER_MS = 5_000;

type TopologyNode = Partial<NodeRecord> & { id: string; role: string; health?: string; healthy?: boolean; status?: string };

/**
 * The nodes in a topology body. Accepts `{nodes: [...]}` and also bodies that
 * group nodes by role (`{gateways: [...], servers: [...]}`), so the view does
 * not break when control adds grouping.
 */
export function topologyNodes(body: unknown): TopologyNode[] {
  if (!body || typeof body !== 'object') return [];
  const isNode = (x: unknown): x is TopologyNode =>
    !!x && typeof x === 'object' && typeof (x as { id?: unknown }).id === 'string' && typeof (x as { role?: unknown }).role === 'string';
  const b = body as Record<string, unknown>;
  if (Array.isArray(b.nodes)) return b.nodes.filter(isNode);
  const seen = new Map<string, TopologyNode>();
  for (const v of Object.values(b)) if (Array.isArray(v)) for (const n of v) if (isNode(n) && !seen.has(n.id)) seen.set(n.id, n);
  return [...seen.values()];
}

export function addressOf(role: string, urls: Record<string, string> = {}): string {
  const pick =
    role === 'gateway' ? (urls.ws ?? urls.http) : role === 'server' ? (urls.grpc ?? urls.admin) : role === 'feed' ? (urls.admin ?? urls.http) : urls.http;
  return pick ?? Object.values(urls)[0] ?? '-';
}

function healthOf(n: TopologyNode, now: number): string {
  if (typeof n.health === 'string') return n.health;
  if (typeof n.status === 'string') return n.status;
  if (n.healthy === false) return 'unhealthy';
  if (n.draining) return 'draining';
  if (typeof n.seenAt === 'number' && now - n.seenAt > STALE_AFTER_MS) return 'stale';
  return 'ok';
}

const compareIds = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

export function sortRows(rows: NodeRow[]): NodeRow[] {
  const rank = (r: string) => (ROLE_ORDER.indexOf(r) + ROLE_ORDER.length + 1) % (ROLE_ORDER.length + 1);
  return [...rows].sort((a, b) => rank(a.role) - rank(b.role) || compareIds(a.id, b.id));
}

export function rowsFromTopology(body: unknown, now = Date.now()): NodeRow[] {
  return sortRows(
    topologyNodes(body).map((n) => {
      const load: Partial<NodeRecord['load']> = n.load ?? {};
      return {
        id: n.id,
        role: n.role,
        address: addressOf(n.role, n.urls),
        health: healthOf(n, now),
        ...(load.connections !== undefined ? { connections: load.connections } : {}),
        ...(load.subscriptions !== undefined ? { subscriptions: load.subscriptions } : {}),
        ...(load.msgsInPerSec !== undefined ? { msgsInPerSec: load.msgsInPerSec } : {}),
        ...(load.msgsOutPerSec !== undefined ? { msgsOutPerSec: load.msgsOutPerSec } : {}),
        ...(load.cpu !== undefined ? { cpu: load.cpu } : {}),
        ...(load.eventLoopP99Ms !== undefined ? { eventLoopP99Ms: load.eventLoopP99Ms } : {}),
        ...(load.rssMb !== undefined ? { rssMb: load.rssMb } : {}),
      };
    }),
  );
}

export function totalsOf(rows: NodeRow[]): Totals {
  const sum = (f: (r: NodeRow) => number | undefined) => rows.reduce((s, r) => s + (f(r) ?? 0), 0);
  return {
    nodes: rows.length,
    healthy: rows.filter((r) => r.health === 'ok').length,
    // Every client connection is held by a gateway; servers count gateway streams.
    connections: sum((r) => (r.role === 'gateway' ? r.connections : 0)),
    subscriptions: sum((r) => (r.role === 'gateway' ? r.subscriptions : 0)),
    // Cluster ingress is what servers take from the bus; egress is what gateways send to clients.
    msgsInPerSec: sum((r) => (r.role === 'server' ? r.msgsInPerSec : 0)),
    msgsOutPerSec: sum((r) => (r.role === 'gateway' ? r.msgsOutPerSec : 0)),
  };
}

const int = (n?: number) => (n === undefined ? '-' : Math.round(n).toLocaleString('en-US'));
const rate = (n?: number) => (n === undefined ? '-' : n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1));
const pct = (n?: number) => (n === undefined ? '-' : `${(n * 100).toFixed(0)}%`);
const ms = (n?: number) => (n === undefined ? '-' : `${n.toFixed(1)}ms`);
const mb = (n?: number) => (n === undefined ? '-' : `${Math.round(n)}MB`);

interface Column {
  title: string;
  /** Columns with a drop rank go first when the terminal is narrow (lowest first). */
  drop?: number;
  width: number;
  right?: boolean;
  cell: (r: NodeRow) => string;
}

const COLUMNS: Column[] = [
  { title: 'ROLE', width: 7, drop: 2, cell: (r) => r.role },
  { title: 'ID', width: 11, cell: (r) => r.id },
  { title: 'ADDRESS', width: 22, cell: (r) => r.address },
  { title: 'HEALTH', width: 8, cell: (r) => r.health },
  { title: 'CONNS', width: 7, right: true, cell: (r) => int(r.connections) },
  { title: 'SUBS', width: 7, right: true, cell: (r) => int(r.subscriptions) },
  { title: 'IN/s', width: 7, right: true, cell: (r) => rate(r.msgsInPerSec) },
  { title: 'OUT/s', width: 8, right: true, cell: (r) => rate(r.msgsOutPerSec) },
  { title: 'CPU', width: 4, drop: 3, right: true, cell: (r) => pct(r.cpu) },
  { title: 'LOOP p99', width: 8, drop: 4, right: true, cell: (r) => ms(r.eventLoopP99Ms) },
  { title: 'RSS', width: 6, drop: 1, right: true, cell: (r) => mb(r.rssMb) },
];

/** The columns that fit `width` characters, dropping the least useful first. */
export function columnsFor(width: number): Column[] {
  let cols = [...COLUMNS];
  const needed = (cs: Column[]) => cs.reduce((s, c) => s + c.width, 0) + cs.length - 1;
  const droppable = COLUMNS.filter((c) => c.drop !== undefined).sort((a, b) => a.drop! - b.drop!);
  for (const c of droppable) {
    if (needed(cols) <= width) break;
    cols = cols.filter((x) => x !== c);
  }
  return cols;
}

const fit = (s: string, c: Column) => {
  const cut = s.length > c.width ? s.slice(0, c.width - 1) + '…' : s;
  return c.right ? cut.padStart(c.width) : cut.padEnd(c.width);
};

export function totalsLine(t: Totals): string {
  return (
    `${t.nodes} nodes, ${t.healthy} ok · ${int(t.connections)} connections · ${int(t.subscriptions)} subscriptions · ` +
    `${rate(t.msgsInPerSec)} msg/s from the bus · ${rate(t.msgsOutPerSec)} msg/s to clients`
  );
}

/** The table as plain lines (no colour), for `pushctl status` and non-TTY output. */
export function formatTable(rows: NodeRow[]): string[] {
  const header = COLUMNS.map((c) => fit(c.title, c)).join(' ');
  const lines = rows.map((r) => COLUMNS.map((c) => fit(c.cell(r), c)).join(' ').trimEnd());
  return [header.trimEnd(), ...lines, `total: ${totalsLine(totalsOf(rows))}`, LOOP_NOTE];
}

/** What the LOOP column measures, said under the table (a reader cannot guess the sampler's tick). */
export const LOOP_NOTE = `LOOP p99: event-loop delay past a ${EVENT_LOOP_TICK_MS} ms sampling tick, last second`;

const healthColor = (h: string) => (h === 'ok' ? 'green' : h === 'draining' ? 'yellow' : 'red');

export interface StatusViewProps {
  title: string;
  rows: NodeRow[];
  /** Something worth the operator's attention, newest last (a child died, control unreachable…). */
  events: string[];
  error?: string;
  updatedAt?: number;
  /** Terminal width; by default the window's, following resizes. */
  width?: number;
}

const h = React.createElement;

/** The live view `pushctl up` shows on a terminal. */
export function StatusView(props: StatusViewProps): React.ReactElement {
  const totals = totalsOf(props.rows);
  const window = useWindowSize();
  const columns = columnsFor(props.width ?? window.columns);
  const cells = (r: NodeRow, key: string) =>
    h(
      Box,
      { key, flexDirection: 'row', gap: 1 },
      ...columns.map((c) =>
        h(
          Box,
          { key: c.title, width: c.width, flexShrink: 0, justifyContent: c.right ? 'flex-end' : 'flex-start' },
          h(Text, c.title === 'HEALTH' ? { color: healthColor(r.health), wrap: 'truncate' } : { wrap: 'truncate' }, c.cell(r)),
        ),
      ),
    );
  return h(
    Box,
    { flexDirection: 'column' },
    h(Text, { bold: true }, props.title),
    h(
      Box,
      { flexDirection: 'row', gap: 1 },
      ...columns.map((c) =>
        h(Box, { key: c.title, width: c.width, flexShrink: 0, justifyContent: c.right ? 'flex-end' : 'flex-start' }, h(Text, { dimColor: true }, c.title)),
      ),
    ),
    ...props.rows.map((r) => cells(r, r.id)),
    h(Text, null, `total: ${totalsLine(totals)}`),
    props.error ? h(Text, { color: 'red' }, props.error) : null,
    ...props.events.slice(-5).map((e, i) => h(Text, { key: `e${i}`, color: 'yellow' }, e)),
    h(Text, { dimColor: true }, LOOP_NOTE),
    h(
      Text,
      { dimColor: true },
      `${props.updatedAt ? `updated ${new Date(props.updatedAt).toLocaleTimeString('en-GB')} · ` : ''}Ctrl-C stops the cluster`,
    ),
  );
}

const AUDIENCE: Record<Listener['audience'], string> = {
  client: 'clients',
  admin: 'cluster only: Bearer token',
  bus: 'cluster only: bus/cache',
  peers: 'engine nodes only',
};

/** The listener table `up` and `status` print: every port, its protocol and audience. */
export function formatListeners(listeners: readonly Listener[]): string[] {
  return [
    'listeners:',
    ...listeners.map((l) => `  ${l.id.padEnd(12)}${l.protocol.padEnd(6)}${l.address.padEnd(27)} ${AUDIENCE[l.audience]}`),
  ];
}

/** The REST host's line: its URL and who it is for (none: the gateways' http URLs serve REST). */
export function restLines(e: ClusterEndpoints, embedded = false): string[] {
  const rest = e.rest ?? [];
  if (rest.length === 0) return [`${'rest'.padEnd(10)}(no history process: --history-procs 0) the gateways' http URLs serve REST, on the stream path`];
  return [
    `${'rest'.padEnd(10)}${rest.map((r) => r.http).join('  ')}`,
    embedded
      ? `${''.padEnd(10)}clients: Binance REST base URL for charts and market data (embedded: in the one process with the streams, so not isolated from them)`
      : `${''.padEnd(10)}clients: Binance REST base URL for charts and market data, kept off the stream path`,
  ];
}
