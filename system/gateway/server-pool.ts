// The gateway's links to the push-servers: a fixed pool of Attach streams per
// server (each on its own HTTP/2 connection) carrying every topic this
// gateway needs, however many clients want it. Which server serves a topic is
// rendezvous hashing over the healthy, non-draining servers the router lists.
// When a server dies or drains, its topics move to their new owner and
// resume from the last sequence this gateway saw, from the server's history.
import * as grpc from '@grpc/grpc-js';
import { create } from '@bufbuild/protobuf';
import { LinkRequestSchema, type LinkRequest, type LinkNotice } from '../../proto/gen/internal_pb.js';
import { LinkClient, LINK_CHANNEL_OPTIONS, type AttachClientCall } from '../common/link-service.ts';
import { decodeLinkItems } from '../common/link-codec.ts';
import { fnv1a, rendezvous } from '../common/hashing.ts';
import { fetchJson } from '../common/http.ts';
import type { Logger } from '../common/logger.ts';
import type { NodeRecord } from '../common/registry.ts';

interface ServerLink {
  id: string;
  addr: string;
  startedAt: number;
  clients: grpc.Client[];
  streams: AttachClientCall[];
  topics: Set<string>;
  failed: boolean;
}

export interface PoolOptions {
  gatewayId: string;
  routers: string[];
  /** Headers for the router lookups (the cluster token). */
  auth?: Record<string, string>;
  streamsPerServer: number;
  pollMs: number;
  log: Logger;
  onEvent: (bytes: Uint8Array) => void;
  onNotice: (n: LinkNotice) => void;
  /** Where this gateway stands in a topic, to resume after a move. */
  position: (topic: string) => { epoch: number; afterSeq: number };
}

/** A server whose link broke is not used again until the router shows it restarted, or this long passes. */
const SUSPECT_MS = 15_000;

export class ServerPool {
  #o: PoolOptions;
  #servers = new Map<string, ServerLink>();
  #listed: NodeRecord[] = [];
  #suspect = new Map<string, { until: number; startedAt: number }>();
  #owner = new Map<string, string | undefined>(); // topic → server id (undefined: waiting for a server)
  #timer: NodeJS.Timeout | undefined;
  #routerIdx = 0;
  #stopped = false;
  moves = 0;
  failovers = 0;

  constructor(o: PoolOptions) {
    this.#o = o;
  }

  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => void this.refresh(), this.#o.pollMs);
    this.#timer.unref();
  }

  get topicCount(): number {
    return this.#owner.size;
  }

  serverIds(): string[] {
    return [...this.#servers.keys()];
  }

  assignments(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.#owner.values()) out[s ?? '(none)'] = (out[s ?? '(none)'] ?? 0) + 1;
    return out;
  }

  subscribe(topic: string): void {
    if (this.#owner.has(topic)) return;
    this.#owner.set(topic, undefined);
    this.#place(topic);
  }

  unsubscribe(topic: string): void {
    const sid = this.#owner.get(topic);
    this.#owner.delete(topic);
    const link = sid ? this.#servers.get(sid) : undefined;
    if (link && !link.failed) {
      link.topics.delete(topic);
      this.#send(link, topic, create(LinkRequestSchema, { kind: { case: 'unsubscribe', value: { topics: [topic] } } }));
    }
  }

  /** Asks the current owner to resend a topic from where this gateway stands (to fill a gap from its history). */
  resubscribe(topic: string): void {
    const sid = this.#owner.get(topic);
    const link = sid ? this.#servers.get(sid) : undefined;
    if (link && !link.failed) this.#sendSubscribe(link, topic);
  }

  #healthyIds(): string[] {
    const now = Date.now();
    const ids: string[] = [];
    for (const rec of this.#listed) {
      const s = this.#suspect.get(rec.id);
      if (s && now < s.until && s.startedAt === rec.startedAt) continue;
      ids.push(rec.id);
    }
    return ids.sort();
  }

  async refresh(): Promise<void> {
    if (this.#stopped) return;
    const routers = this.#o.routers;
    let listed: NodeRecord[] | undefined;
    for (let i = 0; i < routers.length && !listed; i++) {
      const r = routers[(this.#routerIdx + i) % routers.length]!;
      try {
        listed = (await fetchJson<{ servers: NodeRecord[] }>(`${r}/v1/servers`, { timeoutMs: 2_000, headers: this.#o.auth ?? {} })).servers;
      } catch {
        this.#routerIdx++;
      }
    }
    if (!listed || this.#stopped) return; // keep the last known view while no router answers
    this.#listed = listed;
    const listedIds = new Set(listed.map((s) => s.id));
    // Servers gone from the router's view (expired or draining) lose their links once topics moved.
    for (const rec of listed) {
      const have = this.#servers.get(rec.id);
      if (have && (have.addr !== rec.urls.grpc || have.startedAt !== rec.startedAt)) this.#drop(have, 'restarted');
    }
    this.#rebalance();
    for (const link of [...this.#servers.values()]) {
      if (!listedIds.has(link.id) && link.topics.size === 0) this.#drop(link, 'no longer listed');
    }
  }

  #rebalance(): void {
    const healthy = this.#healthyIds();
    for (const [topic, current] of this.#owner) {
      const want = rendezvous(topic, healthy);
      if (want !== current) this.#place(topic, healthy);
    }
  }

  #place(topic: string, healthy = this.#healthyIds()): void {
    const want = rendezvous(topic, healthy);
    const current = this.#owner.get(topic);
    if (!want) {
      if (current === undefined) return;
      this.#owner.set(topic, undefined);
      return;
    }
    const link = this.#link(want);
    if (!link) return;
    link.topics.add(topic);
    this.#owner.set(topic, want);
    this.#sendSubscribe(link, topic);
    if (current && current !== want) {
      this.moves++;
      const old = this.#servers.get(current);
      if (old && !old.failed) {
        old.topics.delete(topic);
        this.#send(old, topic, create(LinkRequestSchema, { kind: { case: 'unsubscribe', value: { topics: [topic] } } }));
      }
    }
  }

  #sendSubscribe(link: ServerLink, topic: string): void {
    const { epoch, afterSeq } = this.#o.position(topic);
    this.#send(link, topic, create(LinkRequestSchema, {
      kind: { case: 'subscribe', value: { topics: [{ topic, epoch: BigInt(epoch), afterSeq: BigInt(afterSeq) }] } },
    }));
  }

  #send(link: ServerLink, topic: string, req: LinkRequest): void {
    const stream = link.streams[fnv1a(topic) % link.streams.length];
    stream?.write(req);
  }

  #link(id: string): ServerLink | undefined {
    const have = this.#servers.get(id);
    if (have) return have;
    const rec = this.#listed.find((s) => s.id === id);
    const addr = rec?.urls.grpc;
    if (!rec || !addr) return undefined;
    const link: ServerLink = { id, addr, startedAt: rec.startedAt, clients: [], streams: [], topics: new Set(), failed: false };
    for (let i = 0; i < this.#o.streamsPerServer; i++) {
      // A local subchannel pool gives every stream its own TCP connection.
      const client = new LinkClient(addr, grpc.credentials.createInsecure(), {
        ...LINK_CHANNEL_OPTIONS,
        'grpc.use_local_subchannel_pool': 1,
      });
      // The server refuses a link without the cluster token (UNAUTHENTICATED): it goes on every call.
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(this.#o.auth ?? {})) md.set(k, v);
      const call = (client as unknown as { attach(md: grpc.Metadata): AttachClientCall }).attach(md);
      call.on('data', (buf: Uint8Array) => this.#onBatch(buf));
      call.on('error', (err: Error) => this.#fail(link, err.message));
      call.on('end', () => this.#fail(link, 'stream ended'));
      call.write(create(LinkRequestSchema, { kind: { case: 'hello', value: { gatewayId: this.#o.gatewayId, streamIndex: i } } }));
      link.clients.push(client);
      link.streams.push(call);
    }
    this.#servers.set(id, link);
    this.#o.log.info('linked to server', { server: id, addr, streams: this.#o.streamsPerServer });
    return link;
  }

  #onBatch(buf: Uint8Array): void {
    let items;
    try {
      items = decodeLinkItems(buf);
    } catch (err) {
      this.#o.log.warn('malformed batch from server', { err: String(err) });
      return;
    }
    // In order: a notice applies exactly between the events around it.
    for (const it of items) {
      if (it instanceof Uint8Array) this.#o.onEvent(it);
      else this.#o.onNotice(it);
    }
  }

  /** A link broke: stop using that server, move its topics to their next owner at once. */
  #fail(link: ServerLink, why: string): void {
    if (link.failed || this.#stopped) return;
    this.failovers++;
    this.#o.log.warn('server link failed, moving its topics', { server: link.id, why, topics: link.topics.size });
    this.#suspect.set(link.id, { until: Date.now() + SUSPECT_MS, startedAt: link.startedAt });
    this.#drop(link, why);
    this.#rebalance();
  }

  #drop(link: ServerLink, why: string): void {
    link.failed = true;
    this.#servers.delete(link.id);
    for (const t of link.topics) if (this.#owner.get(t) === link.id) this.#owner.set(t, undefined);
    link.topics.clear();
    for (const s of link.streams) {
      s.removeAllListeners('data');
      s.on('error', () => {}); // cancellation surfaces as an error we no longer care about
      s.cancel();
    }
    for (const c of link.clients) c.close();
    this.#o.log.info('unlinked server', { server: link.id, why });
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const link of [...this.#servers.values()]) this.#drop(link, 'gateway stopping');
  }
}
