import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BlockHash, View } from '../encoding/brand.ts';
import { blockHash, genesisBlock } from '../ledger/index.ts';
import type { Block, CommitCertificate } from '../ledger/types.ts';
import { scenarioChain, TestChain } from '../storage/testchain.ts';
import { type BlockSource, ChainReader } from './chain-reader.ts';
import { ChainCheckError, ChainVerifier } from './chain-verifier.ts';

interface Rec {
  hash: string;
  block: Block;
  certificate: CommitCertificate | null;
}

/** A real chain: genesis block plus the five scenario blocks (every transaction kind), as records. */
function records(seed = 'ops-verifier'): { chain: TestChain; recs: Rec[] } {
  const chain = new TestChain({ seed });
  const genesis = genesisBlock(chain.genesis);
  const recs: Rec[] = [{ hash: blockHash(genesis.header), block: genesis, certificate: null }];
  for (const a of scenarioChain(chain)) {
    recs.push({ hash: blockHash(a.block.header), block: a.block, certificate: a.certificate });
  }
  return { chain, recs };
}

/** A deep copy the test may damage. */
function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Feeds records until one fails; returns the failure (or null when all verify). */
function firstFailure(verifier: ChainVerifier, recs: readonly unknown[]): ChainCheckError | null {
  for (const r of recs) {
    try {
      verifier.accept(r);
    } catch (error) {
      if (error instanceof ChainCheckError) return error;
      throw error;
    }
  }
  return null;
}

describe('ChainVerifier', () => {
  it('accepts a real certified chain and replays its state to the same root', () => {
    const { chain, recs } = records();
    const verifier = new ChainVerifier(chain.genesis);
    const verified = recs.map((r) => verifier.accept(r));
    assert.equal(verifier.height, recs.length - 1);
    assert.equal(verifier.state.root, chain.state.root);
    assert.equal(verified[1]?.txIds.length, 3);
    assert.equal(verifier.tipHash, recs.at(-1)?.hash);
  });

  /** Each damage names the height it was done at; nothing is accepted from that block on. */
  const damages: [string, number, (r: Rec, chain: TestChain) => unknown, RegExp][] = [
    [
      'a hash field that is not the header hash',
      2,
      (r) => ({ ...r, hash: '0'.repeat(64) }),
      /header hashes to/,
    ],
    [
      'a changed transaction (its root no longer matches)',
      3,
      (r) => {
        const d = copy(r);
        (d.block.txs[0]?.body as { seq: number }).seq = 9;
        return d;
      },
      /txRoot|hash to/,
    ],
    [
      'a changed certificate signature',
      4,
      (r) => {
        const d = copy(r);
        const s = d.certificate?.signatures[0] as { signature: string };
        s.signature = (s.signature[0] === 'a' ? 'b' : 'a') + s.signature.slice(1);
        return d;
      },
      /signature of validator 0 does not verify/,
    ],
    [
      'a certificate with only 2f signatures',
      2,
      (r) => {
        const d = copy(r);
        (d.certificate as unknown as { signatures: unknown[] }).signatures.pop();
        return d;
      },
      /quorum is 3/,
    ],
    [
      'one validator signing twice',
      2,
      (r) => {
        const d = copy(r);
        const sigs = (d.certificate as unknown as { signatures: unknown[] }).signatures;
        sigs[2] = sigs[1];
        return d;
      },
      /two signatures by validator 1/,
    ],
    ['no certificate', 5, (r) => ({ ...r, certificate: null }), /no commit certificate/],
    [
      "another block's certificate",
      3,
      (r, chain) => ({
        ...r,
        certificate: chain.certify({ ...r.block, header: { ...r.block.header, view: 7 as View } }),
      }),
      /another block hash/,
    ],
    ['an unknown extra field', 1, (r) => ({ ...r, note: 'trust me' }), /unknown fields note/],
    ['a block that is not JSON-shaped', 1, () => 'block', /not a JSON object/],
    [
      'a header with a state root the transactions do not give, certified by a quorum all the same',
      2,
      (r, chain) => {
        const header = { ...r.block.header, stateRoot: '1'.repeat(64) as typeof r.block.header.stateRoot };
        const block = { header, txs: r.block.txs };
        return { hash: blockHash(header), block, certificate: chain.certify(block) };
      },
      /stateRoot/,
    ],
  ];
  for (const [what, height, damage, reason] of damages) {
    it(`refuses ${what}, naming block ${height}`, () => {
      const { chain, recs } = records();
      const input: unknown[] = recs.map((r, h) => (h === height ? damage(r, chain) : r));
      const verifier = new ChainVerifier(chain.genesis);
      const failure = firstFailure(verifier, input);
      assert.ok(failure !== null, 'the damage is found');
      assert.equal(failure.height, height);
      assert.match(failure.message, reason);
      assert.equal(verifier.height, height - 1, 'the verifier keeps the last good block');
    });
  }

  it('refuses another network, a skipped block and blocks out of order', () => {
    const { chain, recs } = records();
    const other = records('another network');
    assert.match(
      firstFailure(new ChainVerifier(chain.genesis), other.recs)?.message ?? '',
      /not the genesis block/,
    );
    const skipped = [recs[0], recs[1], recs[3]];
    assert.equal(firstFailure(new ChainVerifier(chain.genesis), skipped)?.height, 2);
    const swapped = [recs[0], recs[2], recs[1]];
    assert.equal(firstFailure(new ChainVerifier(chain.genesis), swapped)?.height, 1);
  });
});

describe('ChainReader', () => {
  function source(
    recs: readonly unknown[],
    tipHeight = recs.length - 1,
    pageMax = 2,
  ): BlockSource & { calls: number } {
    const s = {
      name: 'test source',
      calls: 0,
      async page(from: number, limit: number) {
        s.calls++;
        return { tipHeight, blocks: recs.slice(from, from + Math.min(limit, pageMax)) };
      },
    };
    return s;
  }

  it('reads page by page, keeps only the newest verified blocks, and reads only new blocks on the next sync', async () => {
    const { chain, recs } = records();
    const src = source(recs.slice(0, 4));
    const reader = new ChainReader(chain.genesis, src, { cachedBlocksMax: 2, pageSize: 2 });
    const seen: number[] = [];
    assert.equal(await reader.sync((b) => seen.push(b.height)), 3);
    assert.deepEqual(seen, [0, 1, 2, 3]);
    assert.equal(reader.cached(1), undefined, 'the cache keeps only the newest two');
    assert.equal(reader.cached(3)?.hash, recs[3]?.hash);
    const more = source(recs);
    const later = new ChainReader(chain.genesis, more, { pageSize: 2 });
    await later.sync();
    const calls = more.calls;
    assert.equal(await later.sync(), recs.length - 1);
    assert.equal(more.calls, calls + 1, 'a second sync asks once and finds nothing new');
  });

  it('fails when the source stops below the tip it named, or sends blocks that do not verify', async () => {
    const { chain, recs } = records();
    const short = new ChainReader(chain.genesis, source(recs.slice(0, 3), 5), { pageSize: 2 });
    await assert.rejects(
      short.sync(),
      (e: ChainCheckError) => e.height === 3 && /sent no block 3/.test(e.message),
    );
    const forged = recs.map((r, h) =>
      h === 4 ? { ...r, certificate: { ...r.certificate, blockHash: '0'.repeat(64) as BlockHash } } : r,
    );
    const lying = new ChainReader(chain.genesis, source(forged), { pageSize: 3 });
    const got: number[] = [];
    await assert.rejects(
      lying.sync((b) => got.push(b.height)),
      (e: ChainCheckError) => e.height === 4,
    );
    assert.deepEqual(got, [0, 1, 2, 3], 'nothing from the bad block on reaches the caller');
    assert.equal(lying.verifier.height, 3);
  });
});
