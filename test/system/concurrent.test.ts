/**
 * Issue 4 acceptance (c): 50 concurrent validations of distinct valid versions, spread over all 4
 * validators. Every answer must be true: an 'added' hash is in the chain, a 'failure' is not, and
 * no answer claims a block that does not exist. Afterwards every validator holds the same chain.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { answers, type ChainEntry, sha256OfText, startNetwork, type TestNetwork } from './harness.ts';

const COUNT = 50;
const FIRST = 6;

function attested(chain: readonly ChainEntry[]): Set<string> {
  const out = new Set<string>();
  for (const entry of chain) {
    for (const tx of entry.transactions as { body?: { type?: string; sha256?: string } }[]) {
      if (tx.body?.type === 'attest' && typeof tx.body.sha256 === 'string') out.add(tx.body.sha256);
    }
  }
  return out;
}

describe('concurrent validations', { timeout: 120_000 }, () => {
  let net: TestNetwork;
  before(async () => {
    net = await startNetwork({ versions: FIRST + COUNT - 1 });
  });
  after(async () => {
    await net?.stop();
  });

  it('(c) 50 concurrent distinct versions over 4 validators: every answer is true, chains identical', async () => {
    const versions = Array.from({ length: COUNT }, (_, i) => FIRST + i);
    const results = await Promise.all(
      versions.map(async (v, i) => ({
        v,
        hash: sha256OfText(String(v)),
        ...(await net.validateHash(i % 4, sha256OfText(String(v)))),
      })),
    );
    const chain = await net.waitSameChains([0, 1, 2, 3]);
    const inChain = attested(chain);
    let added = 0;
    let failed = 0;
    for (const r of results) {
      if (r.status === 200 && r.body === answers.added) {
        added++;
        assert.ok(inChain.has(r.hash), `version ${r.v} was answered 'added' but is not in the chain`);
      } else if (r.status === 200 && r.body === answers.failure) {
        failed++;
        assert.ok(!inChain.has(r.hash), `version ${r.v} was answered 'failure' but is in the chain`);
      } else {
        assert.equal(r.status, 503, `version ${r.v}: unexpected answer ${r.status} ${r.body}`);
      }
      assert.notEqual(r.body, answers.current, 'no version was current before it was sent');
    }
    assert.ok(added >= 1, 'at least one version was added');
    // A 503 says "not decided in time", which is honest; on a loaded machine a few may happen.
    const undecided = COUNT - added - failed;
    assert.ok(undecided <= COUNT / 10, `most validations were decided (${undecided} timed out)`);
    // Versions only grow along the chain: the attested versions appear in increasing order.
    const order: number[] = [];
    for (const entry of chain) {
      for (const tx of entry.transactions as { body?: { type?: string; version?: number } }[]) {
        if (tx.body?.type === 'attest' && typeof tx.body.version === 'number') order.push(tx.body.version);
      }
    }
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
    );
    console.log(
      `concurrent: ${added} added, ${failed} refused as stale, ${undecided} undecided, chain height ${chain.length - 1}`,
    );
  });
});
