// The nats-server configuration `pushctl up` writes into its data dir (mode
// 0600: it holds every role's password): listen address, JetStream, and one
// user per role kind with what that kind may publish and subscribe to.
// Allow-lists only: a subject no entry names is refused, so a leaked gateway
// password cannot publish market data or write the router registry.
// Pure: the subjects each role uses are listed here from the code that uses
// them (see docs/operations.md, "NATS users").
import { ORDERS_STREAM, ACKS_BUCKET } from '../../system/gateway/orders.ts';
import { REGISTRY_BUCKET } from '../../system/common/kv-registry.ts';
import { LISTEN_KEYS_BUCKET } from '../../system/gateway/user-data-keys.ts';
import { KLINE_STREAM, KLINE_SUBJECTS, ARCHIVER_DURABLE } from '../../system/history/kline-stream.ts';
import { KLINE_INTERVALS } from '../../system/common/topics.ts';
import { NATS_USERS, type ClusterSecrets, type NatsUserKind } from '../../system/common/secrets.ts';

export interface SubjectRules {
  allow?: string[];
  deny?: string[];
}

export interface NatsPermissions {
  publish: SubjectRules;
  subscribe: SubjectRules;
}

const API = '$JS.API';
const kvStream = (bucket: string) => `KV_${bucket}`;

/** JetStream API requests that open (create if missing) one stream and read it. */
const ownStream = (stream: string) => [`${API}.STREAM.INFO.${stream}`, `${API}.STREAM.CREATE.${stream}`];

/** Ephemeral/ordered consumers on one stream: create, read, fetch, delete (names are generated). */
const consumersOn = (stream: string) => [
  `${API}.CONSUMER.CREATE.${stream}`,
  `${API}.CONSUMER.CREATE.${stream}.>`,
  `${API}.CONSUMER.INFO.${stream}.>`,
  `${API}.CONSUMER.MSG.NEXT.${stream}.>`,
  `${API}.CONSUMER.DELETE.${stream}.>`,
];

/** A KV bucket its owner reads and writes: its stream, keyed gets, watches (push consumers with flow control), puts. */
const kvBucket = (bucket: string) => [
  ...ownStream(kvStream(bucket)),
  ...consumersOn(kvStream(bucket)),
  `${API}.DIRECT.GET.${kvStream(bucket)}`,
  `${API}.DIRECT.GET.${kvStream(bucket)}.>`,
  `${API}.STREAM.MSG.GET.${kvStream(bucket)}`,
  `$JS.FC.${kvStream(bucket)}.>`,
  `$KV.${bucket}.>`,
];

/** Replies to every request (JetStream API, KV, bench) come back on the requester's inbox. */
const INBOX = '_INBOX.>';

/** What each role kind may publish and subscribe to. */
export function natsPermissions(kind: NatsUserKind): NatsPermissions {
  switch (kind) {
    case 'feed':
      // Market data, and closed klines into the KLINES stream (JetStream publishes: acked on an inbox).
      // With simulated users (--users), their order events into ORDERS (orders.<user>, JetStream-acked).
      return { publish: { allow: ['md.>', KLINE_SUBJECTS, `${API}.INFO`, ...ownStream(KLINE_STREAM), 'orders.>', ...ownStream(ORDERS_STREAM)] }, subscribe: { allow: [INBOX] } };
    case 'server':
      // Market data in; the kline archiver's durable pull consumer on KLINES.
      return {
        publish: {
          allow: [
            `${API}.INFO`,
            ...ownStream(KLINE_STREAM),
            `${API}.CONSUMER.INFO.${KLINE_STREAM}.${ARCHIVER_DURABLE}`,
            `${API}.CONSUMER.CREATE.${KLINE_STREAM}.${ARCHIVER_DURABLE}`,
            `${API}.CONSUMER.CREATE.${KLINE_STREAM}.${ARCHIVER_DURABLE}.>`,
            `${API}.CONSUMER.DURABLE.CREATE.${KLINE_STREAM}.${ARCHIVER_DURABLE}`,
            `${API}.CONSUMER.MSG.NEXT.${KLINE_STREAM}.${ARCHIVER_DURABLE}`,
            `$JS.ACK.${KLINE_STREAM}.${ARCHIVER_DURABLE}.>`,
          ],
        },
        subscribe: { allow: ['md.>', INBOX] },
      };
    case 'router':
      // The only writer of the node registry.
      return { publish: { allow: [`${API}.INFO`, ...kvBucket(REGISTRY_BUCKET)] }, subscribe: { allow: [INBOX] } };
    case 'gateway':
      // Private order streams: ordered consumers on ORDERS, the users' acks and the listenKeys in their own buckets.
      return {
        publish: { allow: [`${API}.INFO`, ...ownStream(ORDERS_STREAM), ...consumersOn(ORDERS_STREAM), ...kvBucket(ACKS_BUCKET), ...kvBucket(LISTEN_KEYS_BUCKET)] },
        subscribe: { allow: [INBOX] },
      };
    case 'history':
      // The history process (REST host): candles and trades in for its memory tier; it publishes nothing
      // (it does not archive, and it reaches the servers over HTTP), so a leaked password cannot feed the cluster.
      return { publish: { deny: ['>'] }, subscribe: { allow: [...KLINE_INTERVALS.map((i) => `md.kline_${i}.*`), 'md.trade.*'] } };
    case 'control':
      // Reads topology from the routers over HTTP; nothing on the bus.
      return { publish: { deny: ['>'] }, subscribe: { deny: ['>'] } };
    case 'operator':
      // pushctl's own tools (bench controller and agents: pushctl.>, answering requests on inboxes),
      // order publishers (orders.<user>, JetStream-acked), and reading market data to look at it.
      return {
        publish: { allow: ['pushctl.>', INBOX, 'orders.>', `${API}.INFO`, `${API}.STREAM.INFO.${ORDERS_STREAM}`] },
        subscribe: { allow: ['pushctl.>', INBOX, 'md.>'] },
      };
  }
}

export interface NatsServerConfigInput {
  host: string;
  port: number;
  /** JetStream store directory. */
  storeDir: string;
  secrets: ClusterSecrets;
  /** One node of a NATS cluster (`--nats-cluster N`): its name, route listener and routes (cli/lib/nats-cluster.ts). */
  cluster?: NatsClusterBlock;
}

export interface NatsClusterBlock {
  serverName: string;
  name: string;
  /** host:port of this node's route listener (audience: the cluster's other nodes, with the route credential). */
  listen: string;
  routes: string[];
  auth: { user: string; password: string };
}

/** The config file's text (nats-server reads JSON as its config syntax). No user: no connection. */
export function natsServerConfig(o: NatsServerConfigInput): string {
  const c = o.cluster;
  const config = {
    ...(c ? { server_name: c.serverName, cluster: { name: c.name, listen: c.listen, authorization: c.auth, routes: c.routes } } : {}),
    listen: `${o.host}:${o.port}`,
    jetstream: { store_dir: o.storeDir },
    authorization: {
      // A user a hand-written secrets file lacks (one from before it existed) gets no login rather than a broken config.
      users: NATS_USERS.filter((kind) => o.secrets.nats[kind] !== undefined).map((kind) => ({
        user: o.secrets.nats[kind].user,
        password: o.secrets.nats[kind].password,
        permissions: natsPermissions(kind),
      })),
    },
  };
  return JSON.stringify(config, null, 2) + '\n';
}
