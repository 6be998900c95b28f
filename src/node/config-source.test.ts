import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { sha256Hex } from '../crypto/hash.ts';
import { ConfigSourceClient } from './config-source.ts';

/** A stand-in config server B: target "t" offers versions 1..5 with contents "1".."5". */
function fakeConfigServer(): { server: Server; requests: string[] } {
  const requests: string[] = [];
  const versions = [1, 2, 3, 4, 5].map((v) => ({
    version: v,
    sha256: sha256Hex(String(v)),
    size: 1,
    mediaType: 'text/plain',
  }));
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/slow/v1/targets/t/versions') return; // never answers
    if (url.pathname !== '/v1/targets/t/versions') {
      res.writeHead(404).end('{}');
      return;
    }
    const after = Number(url.searchParams.get('after') ?? 0);
    const hash = url.searchParams.get('sha256');
    const list = versions.filter((v) => v.version > after && (hash === null || v.sha256 === hash));
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ target: 't', versions: list }));
  });
  return { server, requests };
}

describe('ConfigSourceClient', () => {
  const { server, requests } = fakeConfigServer();
  let base: string;
  before(async () => {
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('finds an offered hash with its version and size, and answers later lookups from its cache', async () => {
    const client = new ConfigSourceClient({ baseUrl: base });
    const found = await client.lookup('t', sha256Hex('3'), 1);
    assert.deepEqual(found, {
      ok: true,
      offer: { target: 't', version: 3, sha256: sha256Hex('3'), size: 1, mediaType: 'text/plain' },
    });
    const before = requests.length;
    // The page of versions newer than 1 was read once: 4 and 5 need no request.
    assert.equal((await client.lookup('t', sha256Hex('4'), 1)).ok, true);
    assert.equal(client.cached('t', sha256Hex('5'))?.version, 5);
    assert.equal(requests.length, before);
    client.close();
  });

  it('answers "not offered" for unknown hashes, other targets and malformed hashes', async () => {
    const client = new ConfigSourceClient({ baseUrl: base });
    assert.deepEqual(await client.lookup('t', sha256Hex('nope')), { ok: true, offer: undefined });
    assert.deepEqual(await client.lookup('other', sha256Hex('1')), { ok: true, offer: undefined });
    assert.deepEqual(await client.lookup('t', '2'), { ok: true, offer: undefined });
    // A hash older than the caller's current version is still found by asking about it alone.
    assert.equal((await client.lookup('t', sha256Hex('1'), 4)).ok, true);
    client.close();
  });

  it('shares one request between concurrent lookups of one hash', async () => {
    const client = new ConfigSourceClient({ baseUrl: base });
    const before = requests.length;
    const answers = await Promise.all(Array.from({ length: 20 }, () => client.lookup('t', sha256Hex('2'))));
    assert.ok(answers.every((a) => a.ok && a.offer?.version === 2));
    assert.equal(requests.length - before, 1);
    client.close();
  });

  it('reports an unreachable or silent server as not ok within its timeout, never hanging', async () => {
    const closed = new ConfigSourceClient({ baseUrl: 'http://127.0.0.1:1', timeoutMs: 500 });
    const down = await closed.lookup('t', sha256Hex('1'));
    assert.equal(down.ok, false);
    assert.match(down.ok ? '' : down.reason, /unreachable/);
    closed.close();

    const silent = new ConfigSourceClient({ baseUrl: `${base}/slow`, timeoutMs: 300 });
    const started = Date.now();
    const result = await silent.lookup('t', sha256Hex('1'));
    assert.equal(result.ok, false);
    assert.ok(Date.now() - started < 2000, 'the lookup ended near its timeout');
    silent.close();
  });
});
