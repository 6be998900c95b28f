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

/**
 * A stand-in config server for artifacts: "good" content under its hash, "liar" content under
 * another hash, and an endless stream under a third; it counts the bytes each answer wrote.
 */
function fakeArtifactServer() {
  const good = Buffer.from('mode=fast\n'.repeat(100), 'utf8');
  const goodHash = sha256Hex(good);
  const claimedHash = sha256Hex('what the release says');
  const endlessHash = sha256Hex('endless');
  const sent = { endless: 0, requests: 0 };
  const server = createServer((req, res) => {
    sent.requests++;
    if (req.url === `/v1/artifacts/${goodHash}`) {
      res.writeHead(200, { 'content-length': good.length }).end(good);
    } else if (req.url === `/v1/artifacts/${claimedHash}`) {
      res.writeHead(200).end(Buffer.from('something else entirely', 'utf8'));
    } else if (req.url === `/v1/artifacts/${endlessHash}`) {
      res.writeHead(200);
      const chunk = Buffer.alloc(16 * 1024, 120);
      const pump = () => {
        while (!res.destroyed && res.write(chunk)) sent.endless += chunk.length;
        if (!res.destroyed) res.once('drain', pump);
      };
      res.on('close', () => undefined);
      pump();
    } else {
      res.writeHead(404).end('{}');
    }
  });
  return { server, good, goodHash, claimedHash, endlessHash, sent };
}

describe('ConfigSourceClient.checkArtifact', () => {
  const fake = fakeArtifactServer();
  let base: string;
  before(async () => {
    await new Promise<void>((done) => fake.server.listen(0, '127.0.0.1', () => done()));
    base = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
  });
  after(() => {
    fake.server.closeAllConnections();
    fake.server.close();
  });

  it('accepts matching content once, caches the verdict and keeps small content for the copy', async () => {
    const client = new ConfigSourceClient({ baseUrl: base, keepContentBytesMax: 4096 });
    const before = fake.sent.requests;
    const verdicts = await Promise.all(
      Array.from({ length: 5 }, () => client.checkArtifact(fake.goodHash, fake.good.length)),
    );
    assert.ok(verdicts.every((v) => v.ok));
    assert.deepEqual(await client.checkArtifact(fake.goodHash, fake.good.length), { ok: true });
    assert.equal(fake.sent.requests - before, 1, 'one download for all the checks');
    assert.deepEqual(client.takeContent(fake.goodHash), fake.good);
    assert.equal(client.takeContent(fake.goodHash), undefined, 'handed over once');
    client.close();
  });

  it('refuses a wrong size or content as definite, and a missing artifact as not definite', async () => {
    const client = new ConfigSourceClient({ baseUrl: base });
    const short = await client.checkArtifact(fake.goodHash, fake.good.length + 1);
    assert.equal(short.ok, false);
    assert.equal(!short.ok && short.definite, true);
    assert.match(!short.ok ? short.reason : '', /bytes/);
    const lie = await client.checkArtifact(fake.claimedHash, 'something else entirely'.length);
    assert.equal(!lie.ok && lie.definite, true);
    assert.match(!lie.ok ? lie.reason : '', /hashing to/);
    const missing = await client.checkArtifact(sha256Hex('never uploaded'), 3);
    assert.equal(!missing.ok && !missing.definite, true);
    assert.match(!missing.ok ? missing.reason : '', /does not hold/);
    const tooBig = await new ConfigSourceClient({ baseUrl: base, artifactBytesMax: 10 }).checkArtifact(
      fake.goodHash,
      fake.good.length,
    );
    assert.match(!tooBig.ok ? tooBig.reason : '', /artifact limit/);
    client.close();
  });

  it('stops reading endless data at the release size', async () => {
    const client = new ConfigSourceClient({ baseUrl: base });
    const size = 64 * 1024;
    const verdict = await client.checkArtifact(fake.endlessHash, size);
    assert.equal(!verdict.ok && verdict.definite, true);
    assert.match(!verdict.ok ? verdict.reason : '', /more than the release's 65536 bytes/);
    // The server could only push what the socket buffers held before the client hung up.
    await new Promise((done) => setTimeout(done, 50));
    assert.ok(
      fake.sent.endless < 16 * 1024 * 1024,
      `the server wrote ${fake.sent.endless} bytes, not endlessly`,
    );
    client.close();
  });

  it('reports an unreachable server as not definite', async () => {
    const client = new ConfigSourceClient({ baseUrl: 'http://127.0.0.1:1' });
    const verdict = await client.checkArtifact(fake.goodHash, fake.good.length);
    assert.equal(!verdict.ok && !verdict.definite, true);
    assert.match(!verdict.ok ? verdict.reason : '', /unreachable/);
    client.close();
  });
});
