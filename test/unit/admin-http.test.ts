// The admin plane's credential check and the gateway's live-config validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { authorize } from '../../system/common/admin-http.ts';
import { generateSecrets } from '../../system/common/secrets.ts';
import { validateLiveConfig } from '../../system/gateway/admin-api.ts';

const secrets = generateSecrets();
const req = (authorization?: string, remoteAddress = '10.0.0.9') =>
  ({ headers: authorization === undefined ? {} : { authorization }, socket: { remoteAddress } }) as unknown as IncomingMessage;

test('admin token may do everything, cluster token only cluster routes, anything else is refused', () => {
  const admin = `Bearer ${secrets.adminToken}`;
  const cluster = `Bearer ${secrets.clusterToken}`;
  assert.equal(authorize(req(admin), 'admin', secrets), undefined);
  assert.equal(authorize(req(admin), 'cluster', secrets), undefined);
  assert.equal(authorize(req(cluster), 'cluster', secrets), undefined);
  assert.equal(authorize(req(cluster), 'admin', secrets)?.status, 403);
  assert.equal(authorize(req(), 'cluster', secrets)?.status, 401);
  assert.equal(authorize(req('Bearer nope'), 'cluster', secrets)?.status, 401);
  assert.equal(authorize(req(secrets.adminToken), 'admin', secrets)?.status, 401, 'a token without "Bearer" is not read');
  assert.equal(authorize(req(), 'public', secrets), undefined);
});

test('without secrets: no admin action for anyone; cluster routes from loopback only', () => {
  assert.equal(authorize(req(`Bearer ${secrets.adminToken}`, '127.0.0.1'), 'admin', undefined)?.status, 403);
  assert.equal(authorize(req(undefined, '127.0.0.1'), 'cluster', undefined), undefined);
  assert.equal(authorize(req(undefined, '::1'), 'cluster', undefined), undefined);
  assert.equal(authorize(req(undefined, '10.0.0.9'), 'cluster', undefined)?.status, 403);
});

test('gateway live config: known integer fields in range, or the reason', () => {
  assert.deepEqual(validateLiveConfig({ acceptRate: 20, maxConnections: 5 }), { acceptRate: 20, maxConnections: 5 });
  assert.deepEqual(validateLiveConfig({}), {});
  assert.match(validateLiveConfig({ acceptRate: -5 }) as string, /acceptRate must be between 1/);
  assert.match(validateLiveConfig({ acceptRate: 0 }) as string, /acceptRate must be between 1/);
  assert.match(validateLiveConfig({ acceptRate: 2.5 }) as string, /acceptRate must be an integer/);
  assert.match(validateLiveConfig({ maxConnections: '9' }) as string, /maxConnections must be an integer/);
  assert.match(validateLiveConfig({ inboundBurst: 3 }) as string, /not live-configurable: inboundBurst/);
  assert.match(validateLiveConfig([1]) as string, /JSON object/);
  assert.match(validateLiveConfig(null) as string, /JSON object/);
});
