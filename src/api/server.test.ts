import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { sha256Hex } from '../crypto/hash.ts';
import type { Hash32Hex, TargetName } from '../encoding/brand.ts';
import { attestTx, signRelease } from '../ledger/index.ts';
import { ApiClient } from './client.ts';
import { MemoryFacade, memoryNetwork } from './memory-facade.ts';
import { routes } from './routes.ts';
import { buildApiServer, CompatText } from './server.ts';

const network = memoryNetwork();
const v = (n: number) => sha256Hex(String(n));

function validate(app: FastifyInstance, payload: unknown, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: '/validateHash',
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    headers: { 'content-type': 'application/json', ...headers },
  });
}

describe('validator API', () => {
  let facade: MemoryFacade;
  let app: FastifyInstance;

  before(async () => {
    facade = new MemoryFacade(network, 0);
    for (let n = 1; n <= 5; n++) facade.offer('default', n, v(n), 1);
    app = await buildApiServer(facade, { bodyLimitBytes: 4096 });
  });
  after(async () => {
    await app.close();
  });

  it("answers the article's demo with its exact strings", async () => {
    const one = await validate(app, { hash: v(1) });
    assert.equal(one.statusCode, 200);
    assert.equal(one.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(one.body, CompatText.added);
    assert.equal((await validate(app, { hash: v(2) })).body, CompatText.added);
    assert.equal((await validate(app, { hash: v(2) })).body, CompatText.current);
    const two = await validate(app, { hash: '2' });
    assert.equal(two.statusCode, 200);
    assert.equal(two.body, CompatText.invalid);
    assert.equal(facade.status().height, 2, 'the failure added no block');
  });

  it('refuses a rollback and unknown hashes, and accepts upper-case hex', async () => {
    assert.equal((await validate(app, { hash: v(1) })).body, CompatText.invalid);
    assert.equal((await validate(app, { hash: 'ab'.repeat(32) })).body, CompatText.invalid);
    assert.equal((await validate(app, { hash: v(2).toUpperCase() })).body, CompatText.current);
    assert.equal((await validate(app, { hash: v(3), target: 'default' })).body, CompatText.added);
    assert.equal((await validate(app, { hash: v(3), target: 'other' })).body, CompatText.invalid);
  });

  it('answers 400 with clear messages for malformed bodies, and keeps serving', async () => {
    for (const body of [{}, { hash: 5 }, { hash: null }, { hash: ['x'] }, { nohash: v(1) }]) {
      const res = await validate(app, body);
      assert.equal(res.statusCode, 400, JSON.stringify(body));
      assert.equal(res.body, CompatText.noHash);
    }
    const nul = await validate(app, 'null');
    assert.equal(nul.statusCode, 400);
    assert.match(nul.body, /^Error: the body must be a JSON object such as \{"hash"/);
    const arr = await validate(app, '[1]');
    assert.equal(arr.statusCode, 400);
    const notJson = await validate(app, '{hash: nope');
    assert.equal(notJson.statusCode, 400);
    assert.match(notJson.body, /^Error: the request body is not valid JSON/);
    const empty = await app.inject({
      method: 'POST',
      url: '/validateHash',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(empty.statusCode, 400);
    assert.match(empty.body, /^Error: /);
    const noBody = await app.inject({ method: 'POST', url: '/validateHash' });
    assert.equal(noBody.statusCode, 400);
    assert.equal(noBody.body, CompatText.noHash);
    const text = await validate(app, JSON.stringify({ hash: v(3) }), { 'content-type': 'text/plain' });
    assert.equal(text.body, CompatText.current, 'a JSON body sent as text/plain is still read');
    const textGarbage = await validate(app, 'hash=abc', { 'content-type': 'text/plain' });
    assert.equal(textGarbage.statusCode, 400);
    assert.match(textGarbage.body, /not JSON/);
    const form = await validate(app, 'hash=abc', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(form.statusCode, 415);
    const badTarget = await validate(app, { hash: v(3), target: 7 });
    assert.equal(badTarget.statusCode, 400);
    assert.match(badTarget.body, /"target" must be/);
    const huge = await validate(app, { hash: 'a'.repeat(5000) });
    assert.equal(huge.statusCode, 413);
    assert.match(huge.body, /^Error: the request body is larger/);
    assert.equal((await validate(app, { hash: v(3) })).body, CompatText.current, 'still serving');
  });

  it('answers every route table entry with 4xx and a message for malformed input', async () => {
    for (const def of Object.values(routes)) {
      if (def.method === 'POST') {
        for (const payload of ['{bad json', '"a string"', '7']) {
          const res = await app.inject({
            method: 'POST',
            url: def.url,
            payload,
            headers: { 'content-type': 'application/json' },
          });
          assert.ok(
            res.statusCode >= 400 && res.statusCode < 500,
            `${def.url} ${payload}: ${res.statusCode}`,
          );
          assert.ok(res.body.length > 20, `${def.url} says what was wrong: ${res.body}`);
        }
      }
      if (def.url.includes(':')) {
        const url = def.url.replace(/:([A-Za-z][A-Za-z0-9]*)/g, (_, name: string) =>
          name === 'target' || name === 'id' ? 'x'.repeat(500) : 'not-valid',
        );
        const res = await app.inject({ method: def.method, url });
        assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${url}: ${res.statusCode}`);
        assert.match(res.json().message, /invalid params/);
      }
    }
    assert.equal((await validate(app, { hash: v(3) })).statusCode, 200, 'still serving');
  });

  it('answers 503, never success or failure, when no decision is possible', async () => {
    try {
      for (const behaviour of ['timeout', 'unavailable', 'throw'] as const) {
        facade.behaviour = behaviour;
        const res = await validate(app, { hash: v(4) });
        assert.equal(res.statusCode, 503, behaviour);
        assert.match(res.body, /^Error: .*neither accepted nor refused/);
      }
      // The current hash is still answered from memory while consensus is stuck.
      assert.equal((await validate(app, { hash: v(3) })).body, CompatText.current);
    } finally {
      facade.behaviour = 'normal';
    }
  });

  it("serves /chain in the article's shape with real block hashes", async () => {
    const res = await app.inject({ method: 'GET', url: '/chain' });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.message, 'Current chain');
    assert.equal(body.length, 4);
    assert.equal(body.truncated, false);
    assert.equal(body.chain.length, 4);
    for (let i = 0; i < 4; i++) {
      const entry = body.chain[i];
      const record = facade.blockByHeight(i as never);
      assert.ok(record);
      assert.equal(entry.index, i);
      assert.equal(entry.hash, record.hash);
      assert.equal(entry.prev_hash, record.block.header.prevHash);
      assert.equal(entry.timestamp, record.block.header.timestampMs / 1000);
      if (i > 0) assert.equal(entry.prev_hash, body.chain[i - 1].hash);
    }
    assert.equal(body.chain[1].transactions[0].body.sha256, v(1));
  });

  it('lists the other validators and confirms registration only of genesis validators', async () => {
    const nodes = (await app.inject({ method: 'GET', url: '/nodes' })).json();
    assert.deepEqual(nodes.nodes, [
      'http://127.0.0.1:5002',
      'http://127.0.0.1:5003',
      'http://127.0.0.1:5004',
    ]);
    const ok = await app.inject({
      method: 'POST',
      url: '/nodes/register',
      payload: { nodes: ['http://127.0.0.1:5002', '127.0.0.1:5003/'] },
    });
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json(), { message: 'Success', Nodes_Added: 2 });
    const bad = await app.inject({
      method: 'POST',
      url: '/nodes/register',
      payload: { nodes: ['http://127.0.0.1:5002', 'http://evil.example:80'] },
    });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().message, /evil\.example.*Membership comes from genesis/);
    for (const payload of ['{}', '{"nodes": "x"}', '{"nodes": []}', 'null', '{bad']) {
      const res = await app.inject({
        method: 'POST',
        url: '/nodes/register',
        payload,
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(res.statusCode, 400, payload);
      assert.ok(res.json().message.length > 10);
    }
    assert.equal(facade.genesis.validators.length, 4);
  });

  it('serves blocks by range, height and hash, with bounds', async () => {
    const page = (await app.inject({ method: 'GET', url: '/v1/blocks?from=1&limit=2' })).json();
    assert.equal(page.tipHeight, 3);
    assert.deepEqual(
      page.blocks.map((b: { block: { header: { height: number } } }) => b.block.header.height),
      [1, 2],
    );
    const byHeight = (await app.inject({ method: 'GET', url: '/v1/blocks/2' })).json();
    assert.equal(byHeight.block.header.height, 2);
    const byHash = await app.inject({ method: 'GET', url: `/v1/blocks/hash/${byHeight.hash}` });
    assert.equal(byHash.json().block.header.height, 2);
    const missing = await app.inject({ method: 'GET', url: '/v1/blocks/99' });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().code, 'BLOCK_NOT_FOUND');
    for (const url of [
      '/v1/blocks?limit=1000',
      '/v1/blocks?from=-1',
      '/v1/blocks/abc',
      '/v1/blocks/hash/xyz',
    ]) {
      const res = await app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 400, url);
      assert.equal(res.json().code, 'BAD_REQUEST');
      assert.match(res.json().message, /See GET \/docs/);
    }
  });

  it('serves transactions, target state and history', async () => {
    const block = facade.blockByHeight(1 as never);
    const tx = block?.block.txs[0];
    assert.ok(tx);
    const current = facade.currentTarget('default' as TargetName);
    assert.ok(current);
    const txRes = await app.inject({ method: 'GET', url: `/v1/tx/${current.txId}` });
    assert.equal(txRes.statusCode, 200);
    assert.equal(txRes.json().height, 3);
    assert.equal((await app.inject({ method: 'GET', url: `/v1/tx/${'0'.repeat(64)}` })).statusCode, 404);
    const target = (await app.inject({ method: 'GET', url: '/v1/targets/default' })).json();
    assert.equal(target.version, 3);
    assert.equal(target.sha256, v(3));
    const none = await app.inject({ method: 'GET', url: '/v1/targets/nothing' });
    assert.equal(none.statusCode, 404);
    assert.equal(none.json().code, 'TARGET_NOT_FOUND');
    const history = (await app.inject({ method: 'GET', url: '/v1/targets/default/history' })).json();
    assert.deepEqual(
      history.entries.map((e: { version: number }) => e.version),
      [3, 2, 1],
    );
    const limited = (await app.inject({ method: 'GET', url: '/v1/targets/default/history?limit=1' })).json();
    assert.equal(limited.entries.length, 1);
  });

  it('submits transactions: committed, rejected with the ledger reason, malformed', async () => {
    const admins = network.adminKeys.map((a) => ({ id: a.id, privateKey: a.key.privateKey }));
    const release = signRelease(
      {
        type: 'release',
        chainId: network.genesis.chainId,
        target: 'app' as TargetName,
        version: 1,
        sha256: v(9) as Hash32Hex,
        size: 1,
        mediaType: 'text/plain',
      },
      admins.slice(0, 2) as never,
    );
    const ok = await app.inject({ method: 'POST', url: '/v1/tx', payload: { tx: release, waitMs: 1000 } });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(ok.json().status, 'committed');
    const again = await app.inject({ method: 'POST', url: '/v1/tx', payload: { tx: release } });
    assert.equal(again.statusCode, 422);
    assert.equal(again.json().status, 'rejected');
    assert.ok(again.json().reason.length > 10);
    // An attest (unsigned: the validators make it after checking config server B) is refused here,
    // before the facade (which would commit it) sees it; the answer says to use /validateHash.
    const heightBefore = facade.status().height;
    const attest = attestTx(facade.genesis.chainId, 'app' as TargetName, v(10) as Hash32Hex, {
      version: 2,
      size: 1,
    });
    const refused = await app.inject({ method: 'POST', url: '/v1/tx', payload: { tx: attest, waitMs: 500 } });
    assert.equal(refused.statusCode, 422, refused.body);
    assert.equal(refused.json().code, 'ATTEST_NOT_SUBMITTABLE');
    assert.match(refused.json().reason, /\/validateHash/);
    assert.equal(facade.status().height, heightBefore);
    for (const payload of [
      '{}',
      '{"tx": 5}',
      '{"tx": {"body": {}}}',
      '{"tx": {}, "waitMs": 99999999}',
      '[]',
      'nul',
    ]) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/tx',
        payload,
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(res.statusCode, 400, payload);
      assert.ok(['BAD_REQUEST', 'BAD_JSON'].includes(res.json().code));
    }
  });

  it('reports validators, status, health, readiness and metrics', async () => {
    const validators = (await app.inject({ method: 'GET', url: '/v1/validators' })).json();
    assert.equal(validators.validators.length, 4);
    assert.equal(validators.validators[0].self, true);
    assert.equal(validators.validators[3].connected, false);
    assert.equal(validators.validators[1].height, facade.status().height);
    const status = (await app.inject({ method: 'GET', url: '/v1/status' })).json();
    assert.equal(status.id, 0);
    assert.equal(status.peers.length, 3);
    assert.deepEqual((await app.inject({ method: 'GET', url: '/health' })).json(), { status: 'ok' });
    assert.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200);
    facade.ready_ = { ready: false, reasons: ['catching up: height 3 of 9'] };
    const notReady = await app.inject({ method: 'GET', url: '/ready' });
    assert.equal(notReady.statusCode, 503);
    assert.deepEqual(notReady.json().reasons, ['catching up: height 3 of 9']);
    facade.ready_ = { ready: true, reasons: [] };
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(metrics.statusCode, 200);
    assert.match(metrics.body, /configchain_height \d+/);
  });

  it('documents every route in OpenAPI at /docs/json and serves /docs', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json();
    assert.equal(doc.openapi.startsWith('3'), true);
    for (const def of Object.values(routes)) {
      const path = def.url.replace(/:([A-Za-z][A-Za-z0-9]*)/g, '{$1}');
      assert.ok(doc.paths[path]?.[def.method.toLowerCase()], `${def.method} ${path} is documented`);
    }
    const page = await app.inject({ method: 'GET', url: '/docs' });
    assert.match(page.headers['content-type'] as string, /text\/html/);
    assert.match(page.body, /\/docs\/json/);
  });

  it('answers unknown routes with a JSON 404 that points to /docs', async () => {
    const res = await app.inject({ method: 'GET', url: '/nope' });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().code, 'ROUTE_NOT_FOUND');
    assert.match(res.json().message, /\/docs/);
  });
});

describe('a network whose genesis refuses unauthenticated compat calls', () => {
  it('answers an unsigned /validateHash with 401 and why, and serves everything else', async () => {
    const facade = new MemoryFacade(memoryNetwork(5000, 1_700_000_000_000, false), 0);
    facade.offer('default', 1, v(1), 1);
    const app = await buildApiServer(facade);
    try {
      const res = await validate(app, { hash: v(1) });
      assert.equal(res.statusCode, 401);
      assert.match(res.body, /^Error: .*allowUnauthenticatedCompat is false.*--demo/);
      assert.equal(facade.status().height, 0, 'nothing was attested');
      assert.equal((await app.inject({ method: 'GET', url: '/chain' })).statusCode, 200);
    } finally {
      await app.close();
    }
  });
});

describe('typed client against a listening server', () => {
  it('speaks every route it wraps', async () => {
    const facade = new MemoryFacade(memoryNetwork(), 1);
    facade.offer('default', 1, v(1), 1);
    const app = await buildApiServer(facade);
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const address = app.server.address();
      assert.ok(address !== null && typeof address === 'object');
      const client = new ApiClient(`http://127.0.0.1:${address.port}`);
      assert.equal((await client.validateHash(v(1))).outcome, 'added');
      assert.equal((await client.validateHash(v(1))).outcome, 'current');
      assert.equal((await client.validateHash('2')).outcome, 'invalid');
      const chain = await client.chain();
      assert.equal(chain.chain.length, 2);
      assert.equal((await client.nodes()).length, 3);
      assert.equal((await client.status()).id, 1);
      assert.equal((await client.block(1)).block.header.height, 1);
      assert.equal((await client.blocks(0)).blocks.length, 2);
      assert.equal((await client.target('default')).version, 1);
      assert.equal((await client.targetHistory('default')).entries.length, 1);
      assert.equal((await client.validators()).self, 1);
      assert.equal(await client.health(), true);
      assert.equal((await client.ready()).ready, true);
      assert.match(await client.metrics(), /configchain_height/);
      await assert.rejects(
        client.block(42),
        (err: Error & { code?: string }) => err.code === 'BLOCK_NOT_FOUND',
      );
      const down = new ApiClient('http://127.0.0.1:1', { timeoutMs: 500 });
      assert.equal((await down.ready()).ready, false);
    } finally {
      await app.close();
    }
  });
});
