import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256Hex } from '../crypto/hash.ts';
import type { TargetName } from '../encoding/brand.ts';
import { leafHash, merkleRoot } from '../merkle/index.ts';
import { blockHash, genesisBlock, txInclusionProof, txRoot, verifyTxInclusion } from './block.ts';
import { createTestNetwork } from './testing.ts';
import { signRelease, txLeafData } from './tx.ts';
import type { Transaction } from './types.ts';

const { genesis, adminKeys } = createTestNetwork({ seed: 'block-tests' });

const txs: Transaction[] = Array.from({ length: 7 }, (_, i) =>
  signRelease(
    {
      type: 'release',
      chainId: genesis.chainId,
      target: `t${i}` as TargetName,
      version: 1,
      sha256: sha256Hex(`${i}`),
      size: 1,
      mediaType: 'text/plain',
    },
    adminKeys.slice(0, 2),
  ),
);

describe('transaction roots and proofs', () => {
  it('computes the RFC 9162 root over canonical transaction bytes', () => {
    assert.equal(txRoot(txs), merkleRoot(txs.map((tx) => leafHash(txLeafData(tx)))).toString('hex'));
    assert.equal(txRoot([]), sha256Hex(''));
    assert.notEqual(txRoot(txs), txRoot([...txs].reverse()));
  });

  it('proves each transaction of a block and refuses a wrong index, transaction or root', () => {
    const root = txRoot(txs);
    txs.forEach((tx, i) => {
      const proof = txInclusionProof(txs, i);
      assert.ok(verifyTxInclusion(tx, i, txs.length, proof, root));
      assert.ok(!verifyTxInclusion(tx, (i + 1) % txs.length, txs.length, proof, root));
      assert.ok(!verifyTxInclusion(txs[(i + 1) % txs.length]!, i, txs.length, proof, root));
      assert.ok(!verifyTxInclusion(tx, i, txs.length, proof, sha256Hex('other')));
      assert.ok(!verifyTxInclusion(tx, i, txs.length, ['zz'], root));
    });
    assert.throws(() => txInclusionProof(txs, 7), RangeError);
  });
});

describe('block hashes', () => {
  it('hash the canonical header, so key order does not matter and every field does', () => {
    const { header } = genesisBlock(genesis);
    const reordered = Object.fromEntries(Object.entries(header).reverse()) as typeof header;
    assert.equal(blockHash(reordered), blockHash(header));
    assert.notEqual(blockHash({ ...header, timestampMs: header.timestampMs + 1 }), blockHash(header));
  });
});
