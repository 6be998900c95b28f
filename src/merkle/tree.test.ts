import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AssertionFailure } from '../errors.ts';
import {
  consistencyProof,
  EMPTY_ROOT,
  inclusionProof,
  leafHash,
  MerkleTree,
  merkleRoot,
  merkleRootOfData,
  nodeHash,
  splitPoint,
} from './tree.ts';

/** The RFC 9162 2.1.1 definition, written as literally as possible, as an independent reference. */
function referenceMth(leaves: readonly Uint8Array[]): Buffer {
  const sha = (...parts: Uint8Array[]): Buffer => {
    const h = createHash('sha256');
    for (const p of parts) h.update(p);
    return h.digest();
  };
  if (leaves.length === 0) return sha();
  if (leaves.length === 1) return sha(Buffer.from([0]), leaves[0]!);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sha(Buffer.from([1]), referenceMth(leaves.slice(0, k)), referenceMth(leaves.slice(k)));
}

/** Leaves and roots published with the vectors (../shared/testdata/rfc9162/README.md). */
const README_LEAVES = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map((h) => Buffer.from(h, 'hex'));
const README_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

const leafData = fc.array(fc.uint8Array({ maxLength: 16 }), { minLength: 0, maxLength: 300 });

describe('RFC 9162 hashes', () => {
  it('the empty root is SHA-256 of nothing', () => {
    assert.equal(
      EMPTY_ROOT.toString('hex'),
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    assert.deepEqual(merkleRoot([]), EMPTY_ROOT);
    assert.deepEqual(MerkleTree.fromLeafHashes([]).root(), EMPTY_ROOT);
  });

  it('leaf and node hashes use the 0x00 and 0x01 prefixes', () => {
    const data = Buffer.from('config v1');
    assert.deepEqual(
      leafHash(data),
      createHash('sha256')
        .update(Buffer.from([0]))
        .update(data)
        .digest(),
    );
    const l = leafHash(Buffer.from('a'));
    const r = leafHash(Buffer.from('b'));
    assert.deepEqual(
      nodeHash(l, r),
      createHash('sha256')
        .update(Buffer.from([1]))
        .update(l)
        .update(r)
        .digest(),
    );
    assert.notDeepEqual(nodeHash(l, r), nodeHash(r, l));
  });

  it('nodeHash rejects children that are not 32-byte hashes', () => {
    const h = leafHash(Buffer.alloc(0));
    assert.throws(() => nodeHash(h.subarray(0, 31), h), AssertionFailure);
    assert.throws(() => nodeHash(h, Buffer.concat([h, h])), AssertionFailure);
  });

  it('splitPoint is the largest power of two below n', () => {
    const expected = new Map([
      [2, 1],
      [3, 2],
      [4, 2],
      [5, 4],
      [8, 4],
      [9, 8],
      [1025, 1024],
      [2 ** 40, 2 ** 39],
      [2 ** 40 + 1, 2 ** 40],
    ]);
    for (const [n, k] of expected) assert.equal(splitPoint(n), k, `n=${n}`);
    assert.throws(() => splitPoint(1), AssertionFailure);
  });
});

describe('merkleRoot and MerkleTree', () => {
  it('reproduce the published roots for the first 1..8 vector leaves', () => {
    for (let n = 1; n <= 8; n++) {
      const leaves = README_LEAVES.slice(0, n);
      assert.equal(merkleRootOfData(leaves).toString('hex'), README_ROOTS[n - 1], `N=${n}`);
      assert.equal(MerkleTree.fromLeafData(leaves).rootHex(), README_ROOTS[n - 1], `tree N=${n}`);
    }
  });

  it('equal the recursive RFC definition for random trees of 0..300 leaves', () => {
    fc.assert(
      fc.property(leafData, (leaves) => {
        const expected = referenceMth(leaves);
        assert.deepEqual(merkleRootOfData(leaves), expected);
        const tree = MerkleTree.fromLeafData(leaves);
        assert.deepEqual(tree.root(), expected);
        assert.equal(tree.size, leaves.length);
      }),
      { numRuns: 60 },
    );
  });

  it('give every prefix and range root the recursive definition gives', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 4 }), { minLength: 1, maxLength: 120 }),
        fc.nat(),
        fc.nat(),
        (leaves, a, b) => {
          const tree = MerkleTree.fromLeafData(leaves);
          const start = a % leaves.length;
          const end = start + 1 + (b % (leaves.length - start));
          assert.deepEqual(tree.rangeHash(start, end), referenceMth(leaves.slice(start, end)));
          assert.deepEqual(tree.rangeHash(0, end), merkleRoot(leaves.slice(0, end).map(leafHash)));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('handles 10,000 leaves and a size that is not a power of two', () => {
    const leaves = Array.from({ length: 10_001 }, (_, i) => Buffer.from(`tx-${i}`));
    const expected = referenceMth(leaves);
    assert.deepEqual(merkleRootOfData(leaves), expected);
    assert.deepEqual(MerkleTree.fromLeafData(leaves).root(), expected);
  });

  it('keeps its own copy of the leaf hashes', () => {
    const hashes = [leafHash(Buffer.from('a')), leafHash(Buffer.from('b'))];
    const tree = MerkleTree.fromLeafHashes(hashes);
    const before = tree.root();
    hashes[0]!.fill(0);
    assert.deepEqual(tree.root(), before);
    tree.root().fill(0);
    assert.deepEqual(tree.root(), before, 'root() hands out a copy');
  });

  it('rejects leaf hashes that are not 32 bytes', () => {
    assert.throws(() => merkleRoot([Buffer.alloc(31)]), AssertionFailure);
    assert.throws(() => MerkleTree.fromLeafHashes([Buffer.alloc(32), Buffer.alloc(33)]), AssertionFailure);
  });
});

describe('proof builders', () => {
  const tree = MerkleTree.fromLeafData(README_LEAVES);

  it('give audit paths of the RFC lengths', () => {
    assert.equal(tree.inclusionProof(0).length, 3);
    assert.equal(tree.inclusionProof(6, 7).length, 2, 'leaf 6 of 7 pairs with nothing at the bottom');
    assert.deepEqual(tree.inclusionProof(0, 1), []);
    assert.deepEqual(tree.consistencyProof(8), []);
    assert.equal(tree.consistencyProof(4).length, 1, 'a complete old tree is the implicit first node');
    assert.equal(tree.consistencyProof(3).length, 4, 'PROOF(3, D[8]) = [c, d, g, root of leaves 4..7]');
  });

  it('match the RFC 9162 2.1.5 example tree of 7 leaves', () => {
    // The RFC's figure: leaves a..f are d0..d5 and j is d6; g = (a, b), h = (c, d), i = (e, f),
    // k = (g, h), l = (i, j). It lists PATH(0) = [b, h, l], PATH(3) = [c, g, l],
    // PATH(4) = [f, j, k], PATH(6) = [i, k], PROOF(3) = [c, d, g, l], PROOF(4) = [l] and
    // PROOF(6) = [i, j, k].
    const hashes = README_LEAVES.slice(0, 7).map(leafHash);
    const [a, b, c, d, e, f, j] = hashes as [Buffer, Buffer, Buffer, Buffer, Buffer, Buffer, Buffer];
    const g = nodeHash(a, b);
    const h = nodeHash(c, d);
    const i = nodeHash(e, f);
    const k = nodeHash(g, h);
    const l = nodeHash(i, j);
    assert.deepEqual(merkleRoot(hashes), nodeHash(k, l));
    assert.deepEqual(inclusionProof(hashes, 0), [b, h, l]);
    assert.deepEqual(inclusionProof(hashes, 3), [c, g, l]);
    assert.deepEqual(inclusionProof(hashes, 4), [f, j, k]);
    assert.deepEqual(inclusionProof(hashes, 6), [i, k]);
    assert.deepEqual(consistencyProof(hashes, 3), [c, d, g, l]);
    assert.deepEqual(consistencyProof(hashes, 4), [l]);
    assert.deepEqual(consistencyProof(hashes, 6), [i, j, k]);
  });

  it('assert their preconditions', () => {
    assert.throws(() => tree.inclusionProof(8), AssertionFailure);
    assert.throws(() => tree.inclusionProof(-1), AssertionFailure);
    assert.throws(() => tree.inclusionProof(1.5), AssertionFailure);
    assert.throws(() => tree.inclusionProof(3, 3), AssertionFailure);
    assert.throws(() => tree.inclusionProof(0, 9), AssertionFailure);
    assert.throws(() => tree.consistencyProof(0), AssertionFailure);
    assert.throws(() => tree.consistencyProof(5, 4), AssertionFailure);
    assert.throws(() => tree.consistencyProof(1, 9), AssertionFailure);
    assert.throws(() => MerkleTree.fromLeafHashes([]).inclusionProof(0), AssertionFailure);
    assert.throws(() => tree.rangeHash(3, 3), AssertionFailure);
  });
});
