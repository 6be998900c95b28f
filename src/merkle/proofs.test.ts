import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { merkleProofHashesMax } from '../constants.ts';
import { checkConsistencyHex, checkInclusionHex, hashFromHex, proofFromHex, proofToHex } from './hex.ts';
import { checkConsistency, checkInclusion, verifyConsistency, verifyInclusion } from './proofs.ts';
import { EMPTY_ROOT, leafHash, MerkleTree, splitPoint } from './tree.ts';

/**
 * What the RFC verifiers can see of an inclusion statement: the side of each sibling on the path
 * from the leaf up (L: sibling on the left, R: on the right). Computed top down from the RFC's
 * recursive PATH definition, independently of the verifier's bit walking. Two statements with the
 * same shape make the verifier compute the same hash from the same proof, so a proof valid for
 * one is valid for the other; statements with different shapes must reject each other's proofs.
 */
function inclusionShape(index: number, size: number): string | undefined {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size)
    return undefined;
  const sides: string[] = [];
  let lo = 0;
  let hi = size;
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    if (index < lo + k) {
      sides.push('R');
      hi = lo + k;
    } else {
      sides.push('L');
      lo += k;
    }
  }
  return sides.reverse().join('');
}

/**
 * The same for a consistency statement, from the RFC's SUBPROOF definition: where the proof starts
 * (the old root itself when the old tree is a complete subtree, else an explicit node), then per
 * later node whether it joins on the left (in both trees) or on the right (in the new tree only).
 */
function consistencyShape(size1: number, size2: number): string | undefined {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 1 || size1 > size2) {
    return undefined;
  }
  if (size1 === size2) return '=';
  const outer: string[] = [];
  let m = size1;
  let lo = 0;
  let hi = size2;
  let whole = true;
  while (m !== hi - lo) {
    const k = splitPoint(hi - lo);
    if (m <= k) {
      outer.push('R');
      hi = lo + k;
    } else {
      outer.push('L');
      lo += k;
      m -= k;
      whole = false;
    }
  }
  return (whole ? 'old-root:' : 'node:') + outer.reverse().join('');
}

const leavesArb = fc.array(fc.uint8Array({ maxLength: 8 }), { minLength: 1, maxLength: 300 });
/**
 * Distinct leaves, for properties about changed indices and sizes: when two leaves are equal, the
 * statement "this hash is at the other index" can be genuinely true, and its proof rightly verifies.
 */
const distinctLeavesArb = fc.uniqueArray(fc.uint8Array({ maxLength: 8 }), {
  minLength: 1,
  maxLength: 300,
  selector: (leaf) => Buffer.from(leaf).toString('hex'),
});

function flipBit(bytes: Uint8Array, bit: number): Buffer {
  const copy = Buffer.from(bytes);
  const at = bit % (copy.length * 8);
  copy[at >> 3]! ^= 1 << (at & 7);
  return copy;
}

/** Random mutations of a proof list: flip a bit, drop a hash, insert a hash. */
type ListMutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'drop'; at: number }
  | { kind: 'insert'; at: number; hash: Uint8Array };

const listMutationArb: fc.Arbitrary<ListMutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat() }),
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    hash: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  }),
);

/** Applies a mutation; undefined when it does not apply (flip or drop on an empty proof). */
function mutateList(proof: readonly Buffer[], mutation: ListMutation): Buffer[] | undefined {
  const copy: Buffer[] = proof.map((h) => Buffer.from(h));
  if (mutation.kind === 'insert') {
    copy.splice(mutation.at % (copy.length + 1), 0, Buffer.from(mutation.hash));
    return copy;
  }
  if (copy.length === 0) return undefined;
  const at = mutation.at % copy.length;
  if (mutation.kind === 'drop') copy.splice(at, 1);
  else copy[at] = flipBit(copy[at]!, mutation.bit);
  return copy;
}

describe('inclusion proofs', () => {
  it('every proof of a random tree of 1..300 leaves verifies, also against earlier roots', () => {
    fc.assert(
      fc.property(leavesArb, fc.nat(), (leaves, seed) => {
        const tree = MerkleTree.fromLeafData(leaves);
        const root = tree.root();
        for (let i = 0; i < tree.size; i++) {
          const proof = tree.inclusionProof(i);
          assert.deepEqual(checkInclusion(i, tree.size, tree.leafHash(i), proof, root), { ok: true });
        }
        const size = 1 + (seed % tree.size);
        const earlierRoot = tree.rangeHash(0, size);
        for (let i = 0; i < size; i++) {
          assert.ok(verifyInclusion(i, size, tree.leafHash(i), tree.inclusionProof(i, size), earlierRoot));
        }
      }),
      { numRuns: 40 },
    );
  });

  it('a flipped bit, a dropped or an added hash in the proof is rejected', () => {
    fc.assert(
      fc.property(leavesArb, fc.nat(), listMutationArb, (leaves, a, mutation) => {
        const tree = MerkleTree.fromLeafData(leaves);
        const index = a % tree.size;
        const mutated = mutateList(tree.inclusionProof(index), mutation);
        fc.pre(mutated !== undefined);
        assert.equal(verifyInclusion(index, tree.size, tree.leafHash(index), mutated, tree.root()), false);
      }),
      { numRuns: 300 },
    );
  });

  it('a flipped bit in the leaf hash or the root is rejected', () => {
    fc.assert(
      fc.property(leavesArb, fc.nat(), fc.nat(), fc.boolean(), (leaves, a, bit, inLeaf) => {
        const tree = MerkleTree.fromLeafData(leaves);
        const index = a % tree.size;
        const proof = tree.inclusionProof(index);
        const leaf = inLeaf ? flipBit(tree.leafHash(index), bit) : tree.leafHash(index);
        const root = inLeaf ? tree.root() : flipBit(tree.root(), bit);
        assert.equal(verifyInclusion(index, tree.size, leaf, proof, root), false);
      }),
      { numRuns: 200 },
    );
  });

  it('another index is always rejected; another size only when the path shape differs', () => {
    fc.assert(
      fc.property(
        distinctLeavesArb,
        fc.nat(),
        fc.integer({ min: -5, max: 600 }),
        fc.integer({ min: -5, max: 600 }),
        (leaves, a, otherIndex, otherSize) => {
          const tree = MerkleTree.fromLeafData(leaves);
          const index = a % tree.size;
          const proof = tree.inclusionProof(index);
          const leaf = tree.leafHash(index);
          if (otherIndex !== index) {
            assert.equal(verifyInclusion(otherIndex, tree.size, leaf, proof, tree.root()), false);
          }
          // The RFC algorithm binds only the shape of the path, not the size itself: the proof of
          // leaf 0 in a tree of 8 also verifies as leaf 0 of 7 against the same root. Callers must
          // take the tree size from a trusted source (a signed header), never from the proof.
          const sameShape = inclusionShape(index, otherSize) === inclusionShape(index, tree.size);
          assert.equal(verifyInclusion(index, otherSize, leaf, proof, tree.root()), sameShape);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('the shape caveat is real: leaf 4 of 5 and leaf 1 of 2 share a proof', () => {
    const tree = MerkleTree.fromLeafData([0, 1, 2, 3, 4].map((i) => Buffer.from([i])));
    const proof = tree.inclusionProof(4);
    assert.ok(verifyInclusion(4, 5, tree.leafHash(4), proof, tree.root()));
    assert.ok(verifyInclusion(1, 2, tree.leafHash(4), proof, tree.root()));
    assert.equal(verifyInclusion(1, 3, tree.leafHash(4), proof, tree.root()), false);
  });

  it('equal leaves make the same proof valid for each of their indices', () => {
    const tree = MerkleTree.fromLeafData([Buffer.from('same'), Buffer.from('same')]);
    const proof = tree.inclusionProof(0);
    assert.ok(verifyInclusion(0, 2, tree.leafHash(0), proof, tree.root()));
    assert.ok(verifyInclusion(1, 2, tree.leafHash(0), proof, tree.root()));
  });
});

describe('consistency proofs', () => {
  it('every proof between prefixes of a random tree of 1..300 leaves verifies', () => {
    fc.assert(
      fc.property(leavesArb, fc.nat(), (leaves, seed) => {
        const tree = MerkleTree.fromLeafData(leaves);
        const size2 = 1 + (seed % tree.size);
        const root2 = tree.rangeHash(0, size2);
        for (let size1 = 1; size1 <= size2; size1++) {
          const proof = tree.consistencyProof(size1, size2);
          const root1 = tree.rangeHash(0, size1);
          assert.deepEqual(checkConsistency(size1, size2, root1, root2, proof), { ok: true });
        }
      }),
      { numRuns: 40 },
    );
  });

  it('a flipped bit, a dropped or an added hash in the proof is rejected', () => {
    fc.assert(
      fc.property(leavesArb, fc.nat(), fc.nat(), listMutationArb, (leaves, a, b, mutation) => {
        const tree = MerkleTree.fromLeafData(leaves);
        const size2 = 1 + (a % tree.size);
        const size1 = 1 + (b % size2);
        const mutated = mutateList(tree.consistencyProof(size1, size2), mutation);
        fc.pre(mutated !== undefined);
        const ok = verifyConsistency(
          size1,
          size2,
          tree.rangeHash(0, size1),
          tree.rangeHash(0, size2),
          mutated,
        );
        assert.equal(ok, false);
      }),
      { numRuns: 300 },
    );
  });

  it('a flipped bit in either root is rejected', () => {
    fc.assert(
      fc.property(leavesArb, fc.nat(), fc.nat(), fc.nat(), fc.boolean(), (leaves, a, b, bit, first) => {
        const tree = MerkleTree.fromLeafData(leaves);
        const size2 = 1 + (a % tree.size);
        const size1 = 1 + (b % size2);
        const proof = tree.consistencyProof(size1, size2);
        const root1 = tree.rangeHash(0, size1);
        const root2 = tree.rangeHash(0, size2);
        const ok = first
          ? verifyConsistency(size1, size2, flipBit(root1, bit), root2, proof)
          : verifyConsistency(size1, size2, root1, flipBit(root2, bit), proof);
        assert.equal(ok, false);
      }),
      { numRuns: 200 },
    );
  });

  it('other sizes are rejected unless the proof shape is the same', () => {
    fc.assert(
      fc.property(
        distinctLeavesArb,
        fc.nat(),
        fc.nat(),
        fc.integer({ min: -3, max: 600 }),
        fc.integer({ min: -3, max: 600 }),
        fc.constantFrom('size1', 'size2', 'both'),
        (leaves, a, b, other1, other2, which) => {
          const tree = MerkleTree.fromLeafData(leaves);
          const size2 = 1 + (a % tree.size);
          const size1 = 1 + (b % size2);
          const proof = tree.consistencyProof(size1, size2);
          const root1 = tree.rangeHash(0, size1);
          const root2 = tree.rangeHash(0, size2);
          const s1 = which === 'size2' ? size1 : other1;
          const s2 = which === 'size1' ? size2 : other2;
          const sameShape =
            consistencyShape(s1, s2) !== undefined &&
            consistencyShape(s1, s2) === consistencyShape(size1, size2);
          assert.equal(verifyConsistency(s1, s2, root1, root2, proof), sameShape, `${s1} -> ${s2}`);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('rejects a proof from the empty tree and accepts equal sizes only with equal roots', () => {
    const tree = MerkleTree.fromLeafData([Buffer.from('a'), Buffer.from('b')]);
    assert.equal(verifyConsistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, []), false);
    assert.equal(verifyConsistency(0, 2, EMPTY_ROOT, tree.root(), []), false);
    assert.equal(verifyConsistency(2, 2, tree.root(), tree.root(), []), true);
    assert.equal(verifyConsistency(2, 2, tree.root(), tree.root(), [tree.root()]), false);
    assert.equal(verifyConsistency(2, 2, tree.root(), EMPTY_ROOT, []), false);
    assert.equal(verifyConsistency(2, 1, tree.root(), tree.leafHash(0), []), false);
  });
});

describe('verifiers on hostile input', () => {
  it('never throw, whatever they are given', () => {
    const h = leafHash(Buffer.from('x'));
    const anyArg = fc.oneof(
      fc.anything(),
      fc.constant(h),
      fc.array(fc.constant(h), { maxLength: 4 }),
      fc.constant(h.toString('hex')),
      fc.array(fc.constant(h.toString('hex')), { maxLength: 4 }),
      fc.integer({ min: -2, max: 10 }),
      fc.double(),
    );
    fc.assert(
      fc.property(anyArg, anyArg, anyArg, anyArg, anyArg, (a, b, c, d, e) => {
        // Deliberately untyped: JSON from the network can be anything.
        const inclusion = checkInclusion as (...args: unknown[]) => { ok: boolean };
        const consistency = checkConsistency as (...args: unknown[]) => { ok: boolean };
        const inclusionHex = checkInclusionHex as (...args: unknown[]) => { ok: boolean };
        const consistencyHex = checkConsistencyHex as (...args: unknown[]) => { ok: boolean };
        for (const check of [inclusion, consistency, inclusionHex, consistencyHex]) {
          assert.equal(typeof check(a, b, c, d, e).ok, 'boolean');
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('do not call into hostile objects while explaining a rejection', () => {
    // Found by the property above: String() on { toString: 0 } throws a TypeError.
    const hostile = { toString: 0 } as unknown as number;
    const h = leafHash(Buffer.from('x'));
    assert.equal(checkConsistency(hostile, 1, h, h, []).ok, false);
    assert.equal(checkInclusion(0, hostile, h, [], h).ok, false);
  });

  it('reject proofs longer than the limit before hashing them', () => {
    const h = leafHash(Buffer.from('x'));
    const long = Array.from({ length: merkleProofHashesMax + 1 }, () => h);
    const result = checkInclusion(0, 2, h, long, h);
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.reason : '', /more than/);
  });

  it('say why a proof failed', () => {
    const tree = MerkleTree.fromLeafData([Buffer.from('a'), Buffer.from('b'), Buffer.from('c')]);
    const proof = tree.inclusionProof(1);
    assert.deepEqual(checkInclusion(3, 3, tree.leafHash(1), proof, tree.root()), {
      ok: false,
      reason: 'leaf index 3 is not below tree size 3',
    });
    const short = checkInclusion(1, 3, tree.leafHash(1), proof.slice(0, 1), tree.root());
    assert.deepEqual(short, {
      ok: false,
      reason: 'the proof is shorter than the path from this leaf to the root',
    });
  });
});

describe('hex helpers', () => {
  it('round-trip proofs and verify hex input', () => {
    const tree = MerkleTree.fromLeafData(Array.from({ length: 11 }, (_, i) => Buffer.from([i])));
    const proofHex = proofToHex(tree.inclusionProof(9));
    assert.ok(proofHex.every((h) => /^[0-9a-f]{64}$/.test(h)));
    assert.deepEqual(proofFromHex(proofHex), tree.inclusionProof(9));
    const leafHex = tree.leafHash(9).toString('hex');
    assert.deepEqual(checkInclusionHex(9, 11, leafHex, proofHex, tree.rootHex()), { ok: true });
    const c = proofToHex(tree.consistencyProof(5));
    const root5 = tree.rangeHash(0, 5).toString('hex');
    assert.deepEqual(checkConsistencyHex(5, 11, root5, tree.rootHex(), c), { ok: true });
  });

  it('reject malformed hex instead of throwing', () => {
    const tree = MerkleTree.fromLeafData([Buffer.from('a'), Buffer.from('b')]);
    const leafHex = tree.leafHash(0).toString('hex');
    const proofHex = proofToHex(tree.inclusionProof(0));
    assert.equal(hashFromHex(leafHex.toUpperCase()), undefined);
    assert.equal(hashFromHex(leafHex.slice(2)), undefined);
    assert.equal(proofFromHex('not a list'), undefined);
    assert.equal(proofFromHex([...proofHex, 'zz']), undefined);
    assert.equal(checkInclusionHex(0, 2, leafHex, proofHex, tree.rootHex().toUpperCase()).ok, false);
    assert.equal(checkInclusionHex(0, 2, `${leafHex}00`, proofHex, tree.rootHex()).ok, false);
    assert.equal(checkConsistencyHex(1, 2, leafHex, tree.rootHex(), ['']).ok, false);
  });
});
