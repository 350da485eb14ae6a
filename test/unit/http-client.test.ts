// httpCall (system/common/http-client.ts) against a real loopback server:
// bodies and statuses, kept-alive reuse, a peer closing the reused socket,
// timeouts, and fetchJson's errors on top of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { httpCall } from '../../system/common/http-client.ts';
import { fetchJson, HttpError } from '../../system/common/http.ts';

async function serve(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void) {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => handler(req, res, body));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    sockets,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

test('httpCall: method, headers and body go out; status and body come back; sequential calls share one kept-alive socket', async () => {
  const peers = new Set<string>();
  const s = await serve((req, res, body) => {
    peers.add(`${req.socket.remotePort}`);
    res.writeHead(req.headers.authorization === 'Bearer t' ? 201 : 401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ method: req.method, body, length: req.headers['content-length'] }));
  });
  try {
    const r = await httpCall(`${s.url}/x`, { method: 'POST', headers: { authorization: 'Bearer t' }, body: '{"é":1}' });
    assert.equal(r.status, 201);
    assert.deepEqual(JSON.parse(r.text), { method: 'POST', body: '{"é":1}', length: '8' });
    assert.equal((await httpCall(`${s.url}/x`)).status, 401);
    for (let i = 0; i < 5; i++) await httpCall(`${s.url}/x`);
    assert.equal(peers.size, 1, `calls used ${peers.size} connections`);
  } finally {
    await s.close();
  }
});

test('httpCall: a kept-alive socket the server closed is replaced, and the call still succeeds', async () => {
  const s = await serve((_req, res) => res.end('ok'));
  try {
    assert.equal((await httpCall(s.url)).text, 'ok');
    // The server drops every idle connection (as its keep-alive timeout would).
    for (const sock of s.sockets) sock.destroy();
    for (let i = 0; i < 3; i++) assert.equal((await httpCall(s.url)).text, 'ok');
  } finally {
    await s.close();
  }
});

test('httpCall: no answer within timeoutMs rejects with the URL; refused connections and bad schemes reject', async () => {
  const s = await serve(() => {}); // never answers
  try {
    await assert.rejects(httpCall(`${s.url}/slow`, { timeoutMs: 200 }), /\/slow: no answer within 200 ms/);
  } finally {
    await s.close();
  }
  await assert.rejects(httpCall(s.url, { timeoutMs: 2_000 }), /ECONNREFUSED/);
  await assert.rejects(httpCall('ftp://127.0.0.1/x'), /only http and https/);
});

test('fetchJson: parses 2xx bodies, turns other statuses into HttpError with the status', async () => {
  const s = await serve((req, res) => {
    res.writeHead(req.url === '/ok' ? 200 : 503);
    res.end(req.url === '/ok' ? '{"servers":[1,2]}' : 'busy');
  });
  try {
    assert.deepEqual(await fetchJson(`${s.url}/ok`), { servers: [1, 2] });
    await assert.rejects(fetchJson(`${s.url}/down`), (err) => err instanceof HttpError && err.status === 503 && /busy/.test(err.message));
  } finally {
    await s.close();
  }
});
