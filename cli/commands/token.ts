import { Command, Flags } from '@oclif/core';
import { SignJWT } from 'jose';
import { fail } from '../lib/fail.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../lib/data-dir.ts';
import { secretsPath } from '../lib/cluster-secrets.ts';
import { liveProcesses, readState, type ClusterState } from '../lib/state-file.ts';
import { readSecretsFile } from '../../system/common/secrets.ts';
import { apiKeysPath, ensureApiKey, USER_ID } from '../../system/common/api-keys.ts';

const MAX_TTL_SEC = 30 * 86_400;

/** "90s", "30m", "1h", "7d" or plain seconds; undefined when it is none of those. */
export function parseTtl(s: string): number | undefined {
  const m = /^(\d{1,9})([smhd]?)$/.exec(s.trim());
  if (!m) return undefined;
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}

export default class Token extends Command {
  static override summary = "Mint a development JWT (or an API key) for a user of the cluster `pushctl up` started.";

  static override description = `Signs an HS256 token with the key in the cluster's secrets file (a cluster started with --auth hs256, the default), with the cluster's issuer and audience when it checks them, and prints it on stdout; how to use it goes to stderr (so TOKEN=$(pushctl token --user alice) works). A cluster started with --auth jwks:… checks tokens from your identity provider, which mints them: pushctl refuses. A cluster started with --auth none accepts no token.

With --api-key it prints the user's Binance-style API key instead (made on first use and kept in DATA_DIR/api-keys.json, mode 0600): send it as X-MBX-APIKEY to POST /api/v3/userDataStream for a listenKey. Its HMAC secret, for signed requests on the WebSocket API (/ws-api/v3), is printed once on stderr when it is made.`;

  static override examples = [
    '<%= config.bin %> token --user alice',
    '<%= config.bin %> token --user bob --ttl 15m --data-dir /tmp/cluster-a',
    '<%= config.bin %> token --user alice --api-key',
  ];

  static override flags = {
    user: Flags.string({ description: 'the user (the token\'s sub): 1-64 of A-Z a-z 0-9 - _ =', required: true }),
    ttl: Flags.string({ description: 'lifetime: 90s, 30m, 1h, 7d or seconds (at most 30d)', default: '1h' }),
    'api-key': Flags.boolean({ description: "print the user's API key (X-MBX-APIKEY) instead of a JWT", default: false }),
    'data-dir': Flags.string({ description: DATA_DIR_HELP }),
    json: Flags.boolean({ description: 'print one JSON object (the credential and how to use it)', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Token);
    const dataDir = resolveDataDir(flags['data-dir']);
    const user = flags.user;
    if (!USER_ID.test(user)) fail(this, `--user ${JSON.stringify(user)}: a user id is 1-64 of A-Z a-z 0-9 - _ =`, 2);
    let state: ClusterState | undefined;
    try {
      state = readState(dataDir);
    } catch (err) {
      fail(this, (err as Error).message, 1);
    }
    const gw = state?.endpoints.gateways[0];
    if (flags['api-key']) return this.#apiKey(dataDir, user, flags.json, gw);

    const ttl = parseTtl(flags.ttl);
    if (ttl === undefined || ttl <= 0 || ttl > MAX_TTL_SEC) fail(this, `--ttl ${flags.ttl}: give a lifetime from 1s to 30d, e.g. 90s, 30m, 1h, 7d`, 2);
    if (!state) fail(this, `no cluster is recorded in ${dataDir}: start one with \`pushctl up --data-dir ${dataDir}\` (its --auth hs256 key signs the token), or pass its --data-dir`, 1);
    const auth = state.auth;
    if (!auth) fail(this, `the cluster in ${dataDir} records no client auth mode (started by an older pushctl): restart it with \`pushctl up --auth hs256\``, 1);
    if (auth.mode === 'jwks')
      fail(this, `the cluster in ${dataDir} checks tokens against ${auth.jwksUrl ?? auth.jwksFile} (--auth jwks): tokens come from your identity provider, which holds the signing keys; pushctl has none to sign with`, 1);
    if (auth.mode === 'none') fail(this, `the cluster in ${dataDir} was started with --auth none: its gateways accept no token; restart it with --auth hs256 (the default)`, 1);

    const file = state.endpoints.secretsFile ?? secretsPath(dataDir);
    let key: string;
    try {
      key = readSecretsFile(file).jwtHs256;
    } catch (err) {
      fail(this, (err as Error).message, 1);
    }
    const exp = Math.floor(Date.now() / 1000) + ttl;
    let jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(user).setIssuedAt().setExpirationTime(exp);
    if (auth.issuer) jwt = jwt.setIssuer(auth.issuer);
    if (auth.audience) jwt = jwt.setAudience(auth.audience);
    const token = await jwt.sign(new TextEncoder().encode(key));
    const expiresAt = new Date(exp * 1000).toISOString();
    const ws = gw ? `${gw.ws}/ws?token=${token}` : undefined;
    const subscribe = { method: 'SUBSCRIBE', params: ['orders'], id: 1 };
    if (flags.json) {
      this.log(JSON.stringify({ user, token, expiresAt, ...(ws ? { ws } : {}), header: `Authorization: Bearer ${token}`, subscribe }));
    } else {
      this.log(token);
      const lines = [
        `HS256 token for ${user}, valid until ${expiresAt} (key: jwtHs256 in ${file})`,
        ...(ws ? [`  WebSocket:  ${gw!.ws}/ws?token=$TOKEN   (or the header Authorization: Bearer $TOKEN)`] : []),
        `  then send:  ${JSON.stringify(subscribe)}   (add "after":<seq> to resume; ACK with {"method":"ACK","params":[<seq>]})`,
        ...(gw?.grpc ? [`  gRPC:       ${gw.grpc} with metadata authorization: Bearer $TOKEN`] : []),
        `  TCP, or a fresh token later: {"method":"AUTH","params":["$TOKEN"],"id":2}`,
      ];
      if (state.mode === 'embedded') lines.push('note: this cluster is embedded (no NATS JetStream): it refuses the orders channel; install nats-server or pass --nats URL to `pushctl up`');
      if (liveProcesses(state).length === 0) lines.push(`note: the cluster recorded in ${dataDir} is not running; the token works once it runs again with the same secrets`);
      for (const l of lines) process.stderr.write(`${l}\n`);
    }
  }

  #apiKey(dataDir: string, user: string, json: boolean, gw: ClusterState['endpoints']['gateways'][number] | undefined): void {
    const path = apiKeysPath(dataDir);
    let made;
    try {
      made = ensureApiKey(path, user);
    } catch (err) {
      fail(this, (err as Error).message, 1);
    }
    const http = gw?.http ?? 'http://<gateway>';
    const ws = gw?.ws ?? 'ws://<gateway>';
    // The secret is shown only when it is made (stderr, so KEY=$(pushctl token --api-key) still captures the key alone).
    const secret = made.newSecret;
    if (json) {
      this.log(JSON.stringify({ user, apiKey: made.entry.apiKey, ...(secret ? { secret } : {}), created: made.entry.created, new: made.created, file: path }));
      return;
    }
    this.log(made.entry.apiKey);
    for (const l of [
      `API key for ${user} (${made.created ? 'new' : `made ${made.entry.created}`}), kept in ${path}`,
      secret
        ? `  secret:     ${secret}   (shown once: the HMAC-SHA256 key of signed WebSocket-API requests)`
        : `  secret:     shown when it was made; to make a new one, delete this entry's "secret" from the file and run this again`,
      `  listenKey:  curl -X POST -H "X-MBX-APIKEY: $KEY" ${http}/api/v3/userDataStream`,
      `  stream:     ${ws}/ws/<listenKey>   (PUT keeps it alive, DELETE closes it)`,
      `  WS API:     ${ws}/ws-api/v3   (userDataStream.subscribe.signature; ccxt's watchOrders/watchBalance with apiKey + secret)`,
    ])
      process.stderr.write(`${l}\n`);
  }
}
