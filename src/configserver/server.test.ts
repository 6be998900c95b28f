import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { generateKeyPair } from '../crypto/ed25519.ts';
import { sha256Hex } from '../crypto/hash.ts';
import type { AdminInfo } from '../ledger/types.ts';
import { uploadAuthorization } from './auth.ts';
import { ConfigServerClient } from './client.ts';
import { buildConfigServer, parseRange } from './server.ts';
import { ArtifactStore, listBlobs, seedArtifact } from './store.ts';

const admin = generateKeyPair();
const stranger = generateKeyPair();
const admins: AdminInfo[] = [{ id: 'admin-1', publicKey: admin.publicKeyHex }];

function authFor(
  method: string,
  path: string,
  body: Uint8Array,
  opts: { id?: string; key?: typeof admin; ts?: number } = {},
): string {
  return uploadAuthorization(opts.id ?? 'admin-1', (opts.key ?? admin).privateKey, {
    method,
    path,
    sha256: sha256Hex(body),
    timestampMs: opts.ts ?? Date.now(),
  });
}

describe('config server', () => {
  let dir: string;
  let store: ArtifactStore;
  let app: FastifyInstance;

  async function start(bytesMax = 1000): Promise<void> {
    store = ArtifactStore.open(join(dir, 'artifacts'), { artifactBytesMax: bytesMax });
    app = await buildConfigServer({ store, admins });
  }
  async function stop(): Promise<void> {
    await app.close();
    store.close();
  }
  async function upload(target: string, version: number, body: Buffer, auth?: string, type = 'text/plain') {
    const url = `/v1/targets/${target}/versions/${version}`;
    return app.inject({
      method: 'PUT',
      url,
      payload: body,
      headers: {
        'content-type': type,
        ...(auth === undefined ? {} : { authorization: auth }),
      },
    });
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cc-configserver-'));
    await start();
  });
  after(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses uploads without or with a bad signature (401, nothing stored)', async () => {
    const body = Buffer.from('config v1');
    const none = await upload('app', 1, body);
    assert.equal(none.statusCode, 401);
    assert.match(none.json().message, /admin signature.*configchain publish/);
    assert.equal(none.headers['www-authenticate'], 'ConfigChain-Upload');

    const wrongKey = await upload(
      'app',
      1,
      body,
      authFor('PUT', '/v1/targets/app/versions/1', body, { key: stranger }),
    );
    assert.equal(wrongKey.statusCode, 401);
    assert.match(wrongKey.json().message, /does not verify/);

    const unknownAdmin = await upload(
      'app',
      1,
      body,
      authFor('PUT', '/v1/targets/app/versions/1', body, { id: 'admin-9' }),
    );
    assert.equal(unknownAdmin.statusCode, 401);
    assert.match(unknownAdmin.json().message, /not an admin/);

    const otherPath = await upload('app', 1, body, authFor('PUT', '/v1/targets/app/versions/2', body));
    assert.equal(otherPath.statusCode, 401);

    const stale = await upload(
      'app',
      1,
      body,
      authFor('PUT', '/v1/targets/app/versions/1', body, { ts: Date.now() - 3_600_000 }),
    );
    assert.equal(stale.statusCode, 401);
    assert.match(stale.json().message, /clock/);

    const garbage = await upload('app', 1, body, 'Bearer 123');
    assert.equal(garbage.statusCode, 401);

    assert.equal(store.get('app', 1), undefined);
  });

  it('refuses a body that does not match the signed hash', async () => {
    const signed = Buffer.from('what the admin signed');
    const sent = Buffer.from('something else');
    const res = await upload('app', 7, sent, authFor('PUT', '/v1/targets/app/versions/7', signed));
    assert.equal(res.statusCode, 400);
    assert.match(res.json().message, /signed sha256/);
    assert.equal(store.get('app', 7), undefined);
  });

  it('stores a signed upload and serves it by version, latest and hash', async () => {
    const v1 = Buffer.from('{"mode":"one"}');
    const v2 = Buffer.from('{"mode":"two"}');
    const r1 = await upload(
      'app',
      1,
      v1,
      authFor('PUT', '/v1/targets/app/versions/1', v1),
      'application/json',
    );
    assert.equal(r1.statusCode, 201);
    assert.equal(r1.json().sha256, sha256Hex(v1));
    const again = await upload(
      'app',
      1,
      v1,
      authFor('PUT', '/v1/targets/app/versions/1', v1),
      'application/json',
    );
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().status, 'exists');
    const r2 = await upload(
      'app',
      2,
      v2,
      authFor('PUT', '/v1/targets/app/versions/2', v2),
      'application/json',
    );
    assert.equal(r2.statusCode, 201);

    const byVersion = await app.inject({ method: 'GET', url: '/v1/targets/app/versions/1' });
    assert.equal(byVersion.statusCode, 200);
    assert.equal(byVersion.body, v1.toString());
    assert.equal(byVersion.headers['content-type'], 'application/json');
    assert.equal(byVersion.headers.etag, `"${sha256Hex(v1)}"`);
    assert.equal(byVersion.headers['content-length'], String(v1.length));

    const latest = await app.inject({ method: 'GET', url: '/v1/targets/app/latest' });
    assert.equal(latest.body, v2.toString());
    assert.equal(latest.headers['x-configchain-version'], '2');

    const byHash = await app.inject({ method: 'GET', url: `/v1/artifacts/${sha256Hex(v2)}` });
    assert.equal(byHash.statusCode, 200);
    assert.equal(byHash.body, v2.toString());

    const list = await app.inject({ method: 'GET', url: '/v1/targets/app/versions' });
    assert.deepEqual(list.json(), {
      target: 'app',
      versions: [
        { version: 1, sha256: sha256Hex(v1), size: v1.length, mediaType: 'application/json' },
        { version: 2, sha256: sha256Hex(v2), size: v2.length, mediaType: 'application/json' },
      ],
    });
    const filtered = await app.inject({
      method: 'GET',
      url: `/v1/targets/app/versions?sha256=${sha256Hex(v2)}`,
    });
    assert.deepEqual(
      filtered.json().versions.map((v: { version: number }) => v.version),
      [2],
    );
    const paged = await app.inject({ method: 'GET', url: '/v1/targets/app/versions?after=1&limit=1' });
    assert.deepEqual(
      paged.json().versions.map((v: { version: number }) => v.version),
      [2],
    );
  });

  it('answers 409 for other content under an existing version, keeping the first', async () => {
    const other = Buffer.from('a different v1');
    const res = await upload('app', 1, other, authFor('PUT', '/v1/targets/app/versions/1', other));
    assert.equal(res.statusCode, 409);
    assert.match(res.json().message, /immutable, publish a new version/);
    const kept = await app.inject({ method: 'GET', url: '/v1/targets/app/versions/1' });
    assert.equal(kept.body, '{"mode":"one"}');
  });

  it('answers 413 above the size limit and stores nothing', async () => {
    const big = Buffer.alloc(1001, 7);
    const blobsBefore = listBlobs(join(dir, 'artifacts')).length;
    const res = await upload('big', 1, big, authFor('PUT', '/v1/targets/big/versions/1', big));
    assert.equal(res.statusCode, 413);
    assert.match(res.json().message, /limit of 1000/);
    assert.equal(store.get('big', 1), undefined);
    assert.equal(listBlobs(join(dir, 'artifacts')).length, blobsBefore);
  });

  it('answers 304 for a matching If-None-Match', async () => {
    const sha = sha256Hex(Buffer.from('{"mode":"one"}'));
    const res = await app.inject({
      method: 'GET',
      url: '/v1/targets/app/versions/1',
      headers: { 'if-none-match': `"${sha}"` },
    });
    assert.equal(res.statusCode, 304);
    assert.equal(res.body, '');
    const miss = await app.inject({
      method: 'GET',
      url: '/v1/targets/app/versions/1',
      headers: { 'if-none-match': `"${'0'.repeat(64)}"` },
    });
    assert.equal(miss.statusCode, 200);
  });

  it('serves single ranges with 206 and refuses unsatisfiable ones with 416', async () => {
    const content = '{"mode":"one"}';
    const mid = await app.inject({
      method: 'GET',
      url: '/v1/targets/app/versions/1',
      headers: { range: 'bytes=2-5' },
    });
    assert.equal(mid.statusCode, 206);
    assert.equal(mid.body, content.slice(2, 6));
    assert.equal(mid.headers['content-range'], `bytes 2-5/${content.length}`);
    const tail = await app.inject({
      method: 'GET',
      url: '/v1/targets/app/versions/1',
      headers: { range: 'bytes=-3' },
    });
    assert.equal(tail.statusCode, 206);
    assert.equal(tail.body, content.slice(-3));
    const open = await app.inject({
      method: 'GET',
      url: '/v1/targets/app/versions/1',
      headers: { range: 'bytes=10-' },
    });
    assert.equal(open.body, content.slice(10));
    const beyond = await app.inject({
      method: 'GET',
      url: '/v1/targets/app/versions/1',
      headers: { range: 'bytes=100-200' },
    });
    assert.equal(beyond.statusCode, 416);
    assert.equal(beyond.headers['content-range'], `bytes */${content.length}`);
    assert.deepEqual(parseRange('bytes=0-0,5-6', 10), { kind: 'none' });
    assert.deepEqual(parseRange('bytes=5-2', 10), { kind: 'none' });
    assert.deepEqual(parseRange('bytes=3-100', 10), { kind: 'range', start: 3, end: 9 });
  });

  it('honours a range only when If-Range names the content it serves', async () => {
    const content = '{"mode":"one"}';
    const same = await app.inject({
      method: 'GET',
      url: '/v1/targets/app/versions/1',
      headers: { range: 'bytes=2-5', 'if-range': `"${sha256Hex(Buffer.from(content))}"` },
    });
    assert.equal(same.statusCode, 206);
    assert.equal(same.body, content.slice(2, 6));
    const other = await app.inject({
      method: 'GET',
      url: '/v1/targets/app/versions/1',
      headers: { range: 'bytes=2-5', 'if-range': `"${'0'.repeat(64)}"` },
    });
    assert.equal(other.statusCode, 200);
    assert.equal(other.body, content);
  });

  it('answers 404 and 400 with clear messages', async () => {
    const missing = await app.inject({ method: 'GET', url: '/v1/targets/nope/latest' });
    assert.equal(missing.statusCode, 404);
    assert.match(missing.json().message, /no versions of target "nope"/);
    const noVersion = await app.inject({ method: 'GET', url: '/v1/targets/app/versions/99' });
    assert.equal(noVersion.statusCode, 404);
    const badVersion = await app.inject({ method: 'GET', url: '/v1/targets/app/versions/zero' });
    assert.equal(badVersion.statusCode, 400);
    const badHash = await app.inject({ method: 'GET', url: '/v1/artifacts/xyz' });
    assert.equal(badHash.statusCode, 400);
    const unknownHash = await app.inject({ method: 'GET', url: `/v1/artifacts/${'a'.repeat(64)}` });
    assert.equal(unknownHash.statusCode, 404);
  });

  it('keeps artifacts across a restart, including ones seeded while stopped', async () => {
    await stop();
    await seedArtifact(dir, 'default', 1, Buffer.from('1'));
    await start();
    const kept = await app.inject({ method: 'GET', url: '/v1/targets/app/versions/2' });
    assert.equal(kept.body, '{"mode":"two"}');
    const seeded = await app.inject({ method: 'GET', url: '/v1/targets/default/versions/1' });
    assert.equal(seeded.body, '1');
    assert.equal(seeded.headers.etag, '"6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"');
  });

  it('uploads and downloads over real HTTP with the client', async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    assert.ok(address !== null && typeof address === 'object');
    const client = new ConfigServerClient(`http://127.0.0.1:${address.port}`);
    const content = Buffer.from('firmware 3');
    const answer = await client.upload({
      target: 'group:cams',
      version: 3,
      content,
      mediaType: 'application/octet-stream',
      adminId: 'admin-1',
      adminKey: admin.privateKey,
    });
    assert.equal(answer.status, 'created');
    assert.equal(answer.sha256, sha256Hex(content));
    const down = await client.download('group:cams', 'latest');
    assert.deepEqual(down.content, content);
    await assert.rejects(
      client.upload({
        target: 'group:cams',
        version: 3,
        content: Buffer.from('other'),
        mediaType: 'application/octet-stream',
        adminId: 'admin-1',
        adminKey: admin.privateKey,
      }),
      (err: Error & { code?: string }) => err.code === 'ARTIFACT_CONFLICT',
    );
    await assert.rejects(
      client.download('group:cams', 9),
      (err: Error & { code?: string }) => err.code === 'VERSION_NOT_FOUND',
    );
  });
});
