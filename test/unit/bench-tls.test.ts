// A fixed bench target over TLS: the scheme is kept for the connection to know to handshake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConnect } from '../../cli/lib/bench/scenario.ts';

test('connect: wss://, tls:// and grpcs:// targets keep their TLS scheme', () => {
  assert.deepEqual(parseConnect('wss://h:8443 tls://h:7301 grpcs://h:7400'), {
    ws: 'wss://h:8443',
    'grpc-web': 'https://h:8443',
    tcp: 'tls://h:7301',
    grpc: 'grpcs://h:7400',
  });
  assert.throws(() => parseConnect('grpcs://h'), /needs a port/);
});
