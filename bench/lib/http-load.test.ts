import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { describeAnswer, LoadConnection } from './http-load.ts';

/** A real node:http server on loopback whose paths answer in the ways the client must cope with. */
function startServer(): Promise<{ server: Server; url: URL; connections: () => number }> {
  let connections = 0;
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      switch (req.url) {
        case '/echo':
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
          res.end(body);
          return;
        case '/split': {
          // Head and body in separate writes, the body itself in two: the client must wait for all.
          const text = `split:${body}`;
          res.writeHead(201, { 'content-length': Buffer.byteLength(text) });
          res.flushHeaders();
          setTimeout(() => res.write(text.slice(0, 3)), 20);
          setTimeout(() => res.end(text.slice(3)), 40);
          return;
        }
        case '/close':
          res.writeHead(200, { 'content-length': 3, connection: 'close' });
          res.end('bye');
          return;
        case '/chunked':
          res.writeHead(200, { 'transfer-encoding': 'chunked' });
          res.write('a');
          res.end('b');
          return;
        case '/drop':
          req.socket.destroy();
          return;
        case '/never':
          return;
        default:
          res.writeHead(404, { 'content-length': 9 });
          res.end('not found');
      }
    });
  };
  const server = createServer({ keepAlive: true }, handle);
  server.on('connection', (_socket: Socket) => {
    connections++;
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: new URL(`http://127.0.0.1:${port}`), connections: () => connections });
    });
  });
}

describe('LoadConnection (the benchmark load generator client)', () => {
  let server: Server;
  let url: URL;
  let connections: () => number;
  before(async () => {
    ({ server, url, connections } = await startServer());
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('sends many requests over one kept-alive connection and reads status and body', async () => {
    const before = connections();
    const c = new LoadConnection(url);
    for (let i = 0; i < 20; i++) {
      const body = JSON.stringify({ hash: `h${i}`, note: 'é' });
      assert.deepEqual(await c.post('/echo', body), { ok: true, status: 200, body });
    }
    assert.deepEqual(await c.post('/missing', '{}'), { ok: true, status: 404, body: 'not found' });
    c.close();
    assert.equal(connections() - before, 1);
  });

  it('waits for a body that arrives in several writes', async () => {
    const c = new LoadConnection(url);
    assert.deepEqual(await c.post('/split', '{"a":1}'), { ok: true, status: 201, body: 'split:{"a":1}' });
    c.close();
  });

  it('opens a new connection after an answer that closes it', async () => {
    const c = new LoadConnection(url);
    const before = connections();
    assert.deepEqual(await c.post('/close', '{}'), { ok: true, status: 200, body: 'bye' });
    assert.deepEqual(await c.post('/echo', '{"again":true}'), {
      ok: true,
      status: 200,
      body: '{"again":true}',
    });
    c.close();
    assert.equal(connections() - before, 2);
  });

  it('reports an answer without Content-Length as an error instead of counting it', async () => {
    const c = new LoadConnection(url);
    const answer = await c.post('/chunked', '{}');
    assert.equal(answer.ok, false);
    assert.match(describeAnswer(answer), /^error .*Content-Length.*HTTP\/1\.1 200/);
    // The connection is usable again afterwards.
    assert.deepEqual(await c.post('/echo', '{}'), { ok: true, status: 200, body: '{}' });
    c.close();
  });

  it('reports a connection dropped before the answer, then recovers', async () => {
    const c = new LoadConnection(url);
    const answer = await c.post('/drop', '{}');
    assert.deepEqual(answer, { ok: false, error: 'the server closed the connection before answering' });
    assert.deepEqual(await c.post('/echo', '{"x":2}'), { ok: true, status: 200, body: '{"x":2}' });
    c.close();
  });

  it('gives up on a request after its timeout', async () => {
    const c = new LoadConnection(url, 100);
    const answer = await c.post('/never', '{}');
    assert.deepEqual(answer, { ok: false, error: 'no answer within 100 ms' });
    assert.deepEqual(await c.post('/echo', '{}'), { ok: true, status: 200, body: '{}' });
    c.close();
  });

  it('reports a refused connection as an error answer', async () => {
    const closed = await startServer();
    const port = closed.url.port;
    await new Promise<void>((resolve) => closed.server.close(() => resolve()));
    const answer = await new LoadConnection(new URL(`http://127.0.0.1:${port}`)).post('/echo', '{}');
    assert.equal(answer.ok, false);
    assert.match(describeAnswer(answer), /^error .*ECONNREFUSED/);
  });

  it('refuses a URL that is not plain http, and a second request while one is in flight', async () => {
    assert.throws(() => new LoadConnection(new URL('https://127.0.0.1:1')), /plain http, not https:/);
    const c = new LoadConnection(url);
    const first = c.post('/split', '{}');
    assert.throws(() => c.post('/echo', '{}'), /one request at a time/);
    assert.equal((await first).ok, true);
    c.close();
  });
});
