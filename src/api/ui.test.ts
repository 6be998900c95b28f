import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { MemoryFacade, memoryNetwork } from './memory-facade.ts';
import { buildApiServer } from './server.ts';
import { registerUi, uiNotBuiltMessage } from './ui.ts';

describe('dashboard at /ui', () => {
  let root: string;
  let dir: string;
  let app: FastifyInstance;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'configchain-ui-'));
    dir = join(root, 'dist');
    mkdirSync(join(dir, 'assets'), { recursive: true });
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>dash</title>');
    writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.info(1)');
    writeFileSync(join(dir, 'favicon.svg'), '<svg/>');
    writeFileSync(join(dir, '..', 'secret.txt'), 'outside');
    app = Fastify();
    registerUi(app, { distDir: dir });
    app.get('/v1/thing', async () => ({ ok: true }));
    app.post('/v1/thing', async () => ({ ok: true }));
    await app.ready();
  });
  after(async () => {
    await app.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('answers index.html for /ui/ and for app addresses, uncached', async () => {
    const redirect = await app.inject({ url: '/ui' });
    assert.equal(redirect.statusCode, 302);
    assert.equal(redirect.headers.location, '/ui/');
    for (const url of ['/ui/', '/ui/ledger', '/ui/configs/default?a=1']) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 200, url);
      assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
      assert.equal(res.headers['cache-control'], 'no-cache');
      assert.match(res.body, /<title>dash<\/title>/);
    }
  });

  it('serves hashed assets as immutable and other files uncached', async () => {
    const js = await app.inject({ url: '/ui/assets/index-abc123.js' });
    assert.equal(js.statusCode, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(js.body, 'console.info(1)');
    const svg = await app.inject({ url: '/ui/favicon.svg' });
    assert.equal(svg.headers['content-type'], 'image/svg+xml');
    assert.equal(svg.headers['cache-control'], 'no-cache');
  });

  it('answers 404 for a missing asset instead of the page', async () => {
    const res = await app.inject({ url: '/ui/assets/index-gone.js' });
    assert.equal(res.statusCode, 404);
    assert.match(res.json().message, /reload the page/);
  });

  it('never serves a file outside the build', async () => {
    for (const url of ['/ui/../secret.txt', '/ui/%2e%2e/secret.txt', '/ui/assets/..%2f..%2fsecret.txt']) {
      const res = await app.inject({ url });
      assert.notEqual(res.body, 'outside', url);
      assert.ok(res.statusCode === 400 || res.statusCode === 404, `${url} answered ${res.statusCode}`);
    }
    // An encoded slash reaches the handler as "assets/../../secret.txt", which it refuses itself.
    const res = await app.inject({ url: '/ui/assets/..%2f..%2fsecret.txt' });
    assert.equal(res.statusCode, 400);
  });

  it('lets other origins read public GET routes, and only those', async () => {
    const get = await app.inject({ url: '/v1/thing' });
    assert.equal(get.headers['access-control-allow-origin'], '*');
    const head = await app.inject({ method: 'HEAD', url: '/v1/thing' });
    assert.equal(head.headers['access-control-allow-origin'], '*');
    const post = await app.inject({ method: 'POST', url: '/v1/thing' });
    assert.equal(post.headers['access-control-allow-origin'], undefined);
  });

  it('answers 503 with what to do when the dashboard is not built', async () => {
    const bare = Fastify();
    registerUi(bare, { distDir: join(dir, 'missing') });
    const res = await bare.inject({ url: '/ui/network' });
    assert.equal(res.statusCode, 503);
    assert.equal(res.body, uiNotBuiltMessage);
    assert.match(res.body, /npm run build:web/);
    await bare.close();
  });

  it('is part of every validator API server', async () => {
    const server = await buildApiServer(new MemoryFacade(memoryNetwork(), 0));
    const res = await server.inject({ url: '/ui/' });
    assert.ok(res.statusCode === 200 || res.statusCode === 503, `status ${res.statusCode}`);
    if (res.statusCode === 200) assert.match(res.body, /<div id="root">/);
    const status = await server.inject({ url: '/v1/status' });
    assert.equal(status.headers['access-control-allow-origin'], '*');
    await server.close();
  });
});
