/**
 * Issue 4 acceptance (a), (b), (g) and (h) on one real network of 4 validator processes and two
 * config servers (they do not disturb each other, so they share it, in this order).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { answers, type ChainEntry, sha256OfText, startNetwork, type TestNetwork } from './harness.ts';

const H = (v: number) => sha256OfText(String(v));

/** Hashes of the version attests in a chain, in chain order. */
function attestedHashes(chain: readonly ChainEntry[]): string[] {
  const out: string[] = [];
  for (const entry of chain) {
    for (const tx of entry.transactions as { body?: { type?: string; sha256?: string } }[]) {
      if (tx.body?.type === 'attest' && typeof tx.body.sha256 === 'string') out.push(tx.body.sha256);
    }
  }
  return out;
}

describe('the article flow on 4 validator processes', { timeout: 180_000 }, () => {
  let net: TestNetwork;
  before(async () => {
    net = await startNetwork();
  });
  after(async () => {
    await net?.stop();
  });

  it('(a) gives the four demo answers, and every validator holds the same chain', async () => {
    const v1 = await net.validateHash(0, H(1));
    assert.deepEqual(v1, { status: 200, body: answers.added });
    const v2 = await net.validateHash(1, H(2));
    assert.deepEqual(v2, { status: 200, body: answers.added });
    // Validator 1 answers once IT has executed the block; validator 2 may execute it a moment later,
    // and until then v2 is new to it (it would truthfully answer "added" when the block lands).
    // The article's "current" answer is about a validator that holds the block, so wait for that.
    await net.waitSameChains([0, 1, 2, 3]);
    const again = await net.validateHash(2, H(2));
    assert.deepEqual(again, { status: 200, body: answers.current });
    const bad = await net.validateHash(3, '2');
    assert.deepEqual(bad, { status: 200, body: answers.failure });

    const chain = await net.waitSameChains([0, 1, 2, 3]);
    const attested = attestedHashes(chain);
    assert.deepEqual(attested, [H(1), H(2)], 'exactly the two added hashes are in the chain, in order');
    const history = (await (await fetch(`${net.apiUrl(3)}/v1/targets/default/history`)).json()) as {
      entries: { sha256: string; version: number; source: string }[];
    };
    assert.deepEqual(
      history.entries.map((e) => [e.version, e.sha256, e.source]),
      [
        [2, H(2), 'attest'],
        [1, H(1), 'attest'],
      ],
      'the history lists both attests, newest first',
    );
    for (let i = 1; i < chain.length; i++) {
      assert.equal(chain[i]?.prev_hash, chain[i - 1]?.hash, `block ${i} links to block ${i - 1}`);
      assert.match(chain[i]?.hash ?? '', /^[0-9a-f]{64}$/);
    }
  });

  it('(b) accepts a valid hash sent after three invalid ones', async () => {
    const before = attestedHashes(await net.chain(0));
    for (const invalid of ['2', randomBytes(32).toString('hex'), sha256OfText('not offered by B')]) {
      assert.deepEqual(await net.validateHash(0, invalid), { status: 200, body: answers.failure });
    }
    assert.deepEqual(attestedHashes(await net.chain(0)), before, 'nothing was added by the invalid hashes');
    assert.deepEqual(await net.validateHash(0, H(3)), { status: 200, body: answers.added });
    const chain = await net.waitSameChains([0, 1, 2, 3]);
    assert.deepEqual(attestedHashes(chain).slice(-1), [H(3)]);
  });

  it('(g) refuses a stale (older) configuration version: no rollback', async () => {
    const chainBefore = await net.waitSameChains([0, 1, 2, 3]);
    for (const id of [0, 1, 2, 3]) {
      assert.deepEqual(
        await net.validateHash(id, H(1)),
        { status: 200, body: answers.failure },
        `v1 on ${id}`,
      );
      assert.deepEqual(
        await net.validateHash(id, H(2)),
        { status: 200, body: answers.failure },
        `v2 on ${id}`,
      );
    }
    // The current one is still current, and no attest of an old version was added anywhere.
    assert.deepEqual(await net.validateHash(1, H(3)), { status: 200, body: answers.current });
    const chainAfter = await net.waitSameChains([0, 1, 2, 3]);
    assert.deepEqual(attestedHashes(chainAfter), attestedHashes(chainBefore));
  });

  it('(h) answers malformed bodies on every endpoint with 4xx and a clear message, and keeps serving', async () => {
    const url = net.apiUrl(2);
    const cases: { method: string; path: string; body?: string; type?: string }[] = [
      { method: 'POST', path: '/validateHash', body: '{not json', type: 'application/json' },
      { method: 'POST', path: '/validateHash', body: 'null', type: 'application/json' },
      { method: 'POST', path: '/validateHash', body: '{}', type: 'application/json' },
      { method: 'POST', path: '/validateHash', body: '{"hash": 5}', type: 'application/json' },
      { method: 'POST', path: '/validateHash', body: '[1,2]', type: 'application/json' },
      { method: 'POST', path: '/validateHash', body: 'hash=abc', type: 'text/plain' },
      { method: 'POST', path: '/nodes/register', body: '{"nodes": "x"}', type: 'application/json' },
      { method: 'POST', path: '/nodes/register', body: '{oops', type: 'application/json' },
      {
        method: 'POST',
        path: '/nodes/register',
        body: '{"nodes": ["http://10.9.9.9:1"]}',
        type: 'application/json',
      },
      { method: 'POST', path: '/v1/tx', body: '{"tx": 1}', type: 'application/json' },
      {
        method: 'POST',
        path: '/v1/tx',
        body: '{"body": {"type": "attest"}, "signatures": []}',
        type: 'application/json',
      },
      { method: 'POST', path: '/v1/tx', body: 'garbage', type: 'application/json' },
      { method: 'GET', path: '/v1/blocks?from=abc' },
      { method: 'GET', path: '/v1/blocks?limit=-1' },
      { method: 'GET', path: '/v1/blocks/not-a-height' },
      { method: 'GET', path: '/v1/blocks/99999999' },
      { method: 'GET', path: '/v1/blocks/hash/xyz' },
      { method: 'GET', path: '/v1/tx/nothex' },
      { method: 'GET', path: `/v1/tx/${'0'.repeat(64)}` },
      { method: 'GET', path: `/v1/targets/${'x'.repeat(300)}` },
      { method: 'GET', path: '/v1/targets/default/history?limit=zero' },
    ];
    for (const c of cases) {
      const response = await fetch(`${url}${c.path}`, {
        method: c.method,
        ...(c.body === undefined
          ? {}
          : { body: c.body, headers: { 'content-type': c.type ?? 'application/json' } }),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await response.text();
      assert.ok(
        response.status >= 400 && response.status < 500,
        `${c.method} ${c.path} ${c.body ?? ''} answered ${response.status}: ${text}`,
      );
      assert.ok(text.length > 10, `${c.method} ${c.path} explains the error (got ${JSON.stringify(text)})`);
    }
    const missing = await fetch(`${url}/validateHash`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"other": 1}',
    });
    assert.equal(missing.status, 400);
    assert.equal(await missing.text(), 'Error: no hash provided');

    // Metrics are served and count what happened.
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /configchain_height\{validator="2"\} [1-9]/);
    assert.match(metrics, /configchain_validate_hash_total\{outcome="rejected",validator="2"\} [1-9]/);
    assert.match(metrics, /configchain_peer_connections\{validator="2"\} 3/);

    // Still serving: reads, the current hash, and a new validation.
    assert.equal((await fetch(`${url}/chain`)).status, 200);
    assert.deepEqual(await net.validateHash(2, H(3)), { status: 200, body: answers.current });
    assert.deepEqual(await net.validateHash(2, H(4)), { status: 200, body: answers.added });
    await net.waitSameChains([0, 1, 2, 3]);
  });
});
