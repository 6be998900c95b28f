import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { sha256Hex } from '../crypto/hash.ts';
import { fetchVerifiedContent } from './content.ts';
import type { OpsError } from './errors.ts';

/** A loopback HTTP server answering each path from a table (404 otherwise). */
async function serve(
  table: Record<string, Buffer>,
): Promise<{ url: string; server: Server; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const body = table[req.url ?? ''];
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 'CONTENT_NOT_FOUND', message: 'no copy' }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(body);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, hits };
}

describe('fetchVerifiedContent', () => {
  const good = Buffer.from('fps = 30\n');
  const expected = { target: 'cam', version: 4, sha256: sha256Hex(good), size: good.byteLength };
  const versionPath = '/v1/targets/cam/versions/4/content';
  const servers: Server[] = [];
  let empty: string;
  let honest: string;
  let liar: string;
  let configServer: string;

  before(async () => {
    const e = await serve({});
    const h = await serve({ [versionPath]: good });
    const l = await serve({ [versionPath]: Buffer.from('fps = 1\n') });
    const c = await serve({ [`/v1/artifacts/${expected.sha256}`]: good });
    servers.push(e.server, h.server, l.server, c.server);
    [empty, honest, liar, configServer] = [e.url, h.url, l.url, c.url];
  });
  after(async () => {
    await Promise.all(servers.map((s) => new Promise((done) => s.close(done))));
  });

  it("takes the first validator's copy that matches the verified hash, after ones without a copy", async () => {
    const got = await fetchVerifiedContent(
      { validators: [empty, honest, liar], configServers: [] },
      expected,
    );
    assert.deepEqual([got.bytes, got.from], [good, honest]);
  });

  it('fails loudly when a validator serves other bytes, even if another would serve the right ones', async () => {
    await assert.rejects(
      fetchVerifiedContent({ validators: [liar, honest], configServers: [] }, expected),
      (e: OpsError) =>
        e.code === 'CONTENT_INVALID' && e.message.includes(liar) && e.message.includes(expected.sha256),
    );
  });

  it('falls back to inline release content, then to a config server by hash, and says when nobody has it', async () => {
    const inline = await fetchVerifiedContent(
      { validators: [empty], configServers: [{ id: 'B', url: configServer }] },
      { ...expected, inline: good.toString('base64') },
    );
    assert.equal(inline.from, 'inline in the release transaction');
    const fromServer = await fetchVerifiedContent(
      { validators: [empty], configServers: [{ id: 'B', url: configServer }] },
      expected,
    );
    assert.deepEqual([fromServer.bytes, fromServer.from], [good, `config server B (${configServer})`]);
    await assert.rejects(
      fetchVerifiedContent({ validators: [empty], configServers: [{ id: 'A', url: empty }] }, expected),
      (e: OpsError) => e.code === 'CONTENT_UNAVAILABLE' && /CONTENT_NOT_FOUND/.test(e.message),
    );
  });

  it('refuses content larger than it may read before asking anyone', async () => {
    await assert.rejects(
      fetchVerifiedContent({ validators: [honest], configServers: [] }, { ...expected, size: 1e12 }),
      (e: OpsError) => e.code === 'TOO_LARGE',
    );
  });
});
