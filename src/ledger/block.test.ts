import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256Hex } from '../crypto/hash.ts';
import type { TargetName } from '../encoding/brand.ts';
import { leafHash, merkleRoot } from '../merkle/index.ts';
import {
  blockHash,
  genesisBlock,
  txInclusionProof,
  txProofFor,
  txRoot,
  verifyTxInclusion,
  verifyTxProofAgainstHeader,
} from './block.ts';
import { createTestNetwork } from './testing.ts';
import { signRelease, txLeafData } from './tx.ts';
import type { Block, BlockHeader, Transaction } from './types.ts';

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

describe('transaction proofs against a header', () => {
  const blockOf = (list: readonly Transaction[]): Block => {
    const { header } = genesisBlock(genesis);
    const h: BlockHeader = {
      ...header,
      height: 1 as BlockHeader['height'],
      txCount: list.length,
      txRoot: txRoot(list),
    };
    return { header: h, txs: list };
  };

  it('verifies every position of blocks of every size from 1 to 7', () => {
    for (let size = 1; size <= txs.length; size++) {
      const block = blockOf(txs.slice(0, size));
      block.txs.forEach((tx, i) => {
        const proof = txProofFor(block, i);
        assert.equal(proof.index, i);
        assert.equal(proof.txCount, size);
        assert.ok(verifyTxProofAgainstHeader(block.header, tx, i, proof.inclusion));
      });
    }
  });

  it('refuses a proof checked with another position, count, transaction or root', () => {
    const block = blockOf(txs.slice(0, 6));
    const { inclusion } = txProofFor(block, 4);
    const tx = block.txs[4]!;
    assert.ok(verifyTxProofAgainstHeader(block.header, tx, 4, inclusion));
    assert.ok(!verifyTxProofAgainstHeader(block.header, tx, 5, inclusion));
    assert.ok(!verifyTxProofAgainstHeader(block.header, tx, -1, inclusion));
    assert.ok(!verifyTxProofAgainstHeader(block.header, tx, 6, inclusion));
    assert.ok(!verifyTxProofAgainstHeader(block.header, tx, 4.5, inclusion));
    assert.ok(!verifyTxProofAgainstHeader(block.header, block.txs[3]!, 4, inclusion));
    // A header that claims another tree size makes the same path invalid (RFC 9162 needs the size).
    assert.ok(!verifyTxProofAgainstHeader({ ...block.header, txCount: 7 }, tx, 4, inclusion));
    assert.ok(!verifyTxProofAgainstHeader({ ...block.header, txCount: 5 }, tx, 4, inclusion));
    assert.ok(!verifyTxProofAgainstHeader({ ...block.header, txRoot: sha256Hex('x') }, tx, 4, inclusion));
    assert.ok(!verifyTxProofAgainstHeader(block.header, tx, 4, [...inclusion, sha256Hex('extra')]));
    assert.ok(!verifyTxProofAgainstHeader(block.header, tx, 4, inclusion.slice(1)));
    assert.throws(() => txProofFor(block, 6), RangeError);
  });
});
