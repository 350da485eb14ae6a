import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Bus, BusHandler, BusSubscription } from './bus.ts';

import type { Credential } from './secrets.ts';

/** Connects to NATS; `auth` is the user of a server that takes only its users (the cluster's secrets). */
export async function connectNats(url: string, name: string, auth?: Credential): Promise<NatsConnection> {
  return connect({
    servers: url.split(','),
    name,
    ...(auth ? { user: auth.user, pass: auth.password } : {}),
    maxReconnectAttempts: -1, // a bus restart must not end a role
    reconnectTimeWait: 250,
    pingInterval: 10_000,
  });
}

export class NatsBus implements Bus {
  readonly kind = 'nats' as const;
  readonly nc: NatsConnection;
  // The bus owns the connection only when it opened it.
  #owned: boolean;

  constructor(nc: NatsConnection, owned = false) {
    this.nc = nc;
    this.#owned = owned;
  }

  static async connect(url: string, name: string, auth?: Credential): Promise<NatsBus> {
    return new NatsBus(await connectNats(url, name, auth), true);
  }

  publish(subject: string, data: Uint8Array): void {
    this.nc.publish(subject, data);
  }

  subscribe(subject: string, handler: BusHandler): BusSubscription {
    const sub = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) {
          console.error(`nats subscription ${subject} failed:`, err.message);
          return;
        }
        handler(msg.subject, msg.data);
      },
    });
    return { unsubscribe: () => sub.unsubscribe() };
  }

  async flush(): Promise<void> {
    await this.nc.flush();
  }

  async close(): Promise<void> {
    if (this.#owned && !this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
  }
}
