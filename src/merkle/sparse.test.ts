import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalHash, sha256 } from '../crypto/hash.ts';
import { fromHex, toHex } from '../encoding/bytes.ts';
import {
  EMPTY_SPARSE_ROOT,
  keyPath,
  SparseMerkleTree,
  type SparseProof,
  sparseLeafHash,
  sparseRootFromScratch,
  verifyStateProof,
} from './sparse.ts';

type Value = { readonly v: number; readonly k: string };

function put(tree: SparseMerkleTree<Value>, key: string, v: number): SparseMerkleTree<Value> {
  const value = { v, k: key };
  return tree.set(key, value, fromHex(canonicalHash(value)));
}

function scratch(map: ReadonlyMap<string, Value>): string {
  return sparseRootFromScratch(
    [...map].map(([key, value]) => ({ key, valueHash: fromHex(canonicalHash(value)) })),
  );
}

const internal = (l: Uint8Array, r: Uint8Array) => sha256(Buffer.concat([Buffer.of(1), l, r]));

describe('sparse Merkle tree', () => {
  it('has 32 zero bytes as the empty root and a lone leaf as the root of one entry', () => {
    const empty = SparseMerkleTree.empty<Value>();
    assert.equal(empty.root, '0'.repeat(64));
    assert.equal(EMPTY_SPARSE_ROOT, '0'.repeat(64));
    const one = put(empty, 'a', 1);
    const expected = sha256(
      Buffer.concat([Buffer.of(0), sha256('a'), fromHex(canonicalHash({ v: 1, k: 'a' }))]),
    );
    assert.equal(one.root, toHex(expected));
    assert.equal(one.size, 1);
  });

  it('hashes two leaves under the internal node where their paths first differ', () => {
    // Find two keys whose paths agree on bit 0 and differ on bit 1, so the root is
    // internal(internal(x, y), empty) or internal(empty, internal(x, y)).
    const keys = Array.from({ length: 64 }, (_, i) => `k${i}`);
    const bits = (k: string) => [(sha256(k)[0] as number) >> 7, ((sha256(k)[0] as number) >> 6) & 1];
    const a = keys.find((k) => bits(k)[0] === 0 && bits(k)[1] === 0) as string;
    const b = keys.find((k) => bits(k)[0] === 0 && bits(k)[1] === 1) as string;
    const tree = put(put(SparseMerkleTree.empty(), b, 2), a, 1);
    const leafA = sparseLeafHash(keyPath(a), fromHex(canonicalHash({ v: 1, k: a })));
    const leafB = sparseLeafHash(keyPath(b), fromHex(canonicalHash({ v: 2, k: b })));
    assert.equal(tree.root, toHex(internal(internal(leafA, leafB), Buffer.alloc(32))));
  });

  it('leaves older versions unchanged (persistence)', () => {
    const t1 = put(put(SparseMerkleTree.empty(), 'a', 1), 'b', 2);
    const root1 = t1.root;
    const t2 = put(t1, 'a', 10);
    const t3 = put(t1, 'c', 3);
    assert.equal(t1.root, root1);
    assert.deepEqual(t1.get('a'), { v: 1, k: 'a' });
    assert.deepEqual(t2.get('a'), { v: 10, k: 'a' });
    assert.equal(t1.get('c'), undefined);
    assert.deepEqual(t3.get('c'), { v: 3, k: 'c' });
    assert.equal(t1.size, 2);
    assert.equal(t2.size, 2);
    assert.equal(t3.size, 3);
    assert.notEqual(t2.root, root1);
  });

  it('sets the same value twice to the same root', () => {
    const t1 = put(put(SparseMerkleTree.empty(), 'a', 1), 'b', 2);
    assert.equal(put(t1, 'a', 1).root, t1.root);
  });

  it('rejects a proof for a tree of one leaf when the value differs, and proves absence of other keys', () => {
    const tree = put(SparseMerkleTree.empty(), 'a', 1);
    assert.ok(verifyStateProof(tree.root, 'a', { v: 1, k: 'a' }, tree.proof('a')));
    assert.ok(!verifyStateProof(tree.root, 'a', { v: 2, k: 'a' }, tree.proof('a')));
    assert.ok(verifyStateProof(tree.root, 'zz', null, tree.proof('zz')));
    assert.ok(!verifyStateProof(tree.root, 'a', null, tree.proof('a')));
    const empty = SparseMerkleTree.empty<Value>();
    assert.ok(verifyStateProof(empty.root, 'a', null, empty.proof('a')));
    assert.ok(!verifyStateProof(empty.root, 'a', { v: 1, k: 'a' }, empty.proof('a')));
  });

  it('returns false, never throws, on malformed proofs', () => {
    const tree = put(put(SparseMerkleTree.empty(), 'a', 1), 'b', 2);
    const good = tree.proof('a');
    for (const bad of [
      null,
      42,
      {},
      { siblings: 'x', leaf: null },
      { siblings: ['zz'], leaf: null },
      { siblings: good.siblings, leaf: { path: 'nothex' } },
      { siblings: Array(257).fill('0'.repeat(64)), leaf: null },
    ]) {
      assert.equal(verifyStateProof(tree.root, 'a', { v: 1, k: 'a' }, bad), false);
    }
    assert.equal(verifyStateProof('nothex', 'a', { v: 1, k: 'a' }, good), false);
    assert.equal(verifyStateProof(tree.root, 'a', { v: 1, k: 'a', f: () => 1 }, good), false);
  });

  it('refuses duplicate keys when loading in bulk or recomputing from scratch', () => {
    const item = { key: 'a', value: { v: 1, k: 'a' }, valueHash: Buffer.alloc(32) };
    assert.throws(() => SparseMerkleTree.fromItems([item, item]), /duplicate key/);
    assert.throws(() => sparseRootFromScratch([item, item]), /duplicate key/);
  });

  it('iterates every entry once', () => {
    let tree = SparseMerkleTree.empty<Value>();
    for (let i = 0; i < 100; i++) tree = put(tree, `key${i}`, i);
    const seen = [...tree.entries()].map(([k]) => k).sort();
    assert.deepEqual(seen, Array.from({ length: 100 }, (_, i) => `key${i}`).sort());
  });

  const ops = fc.array(fc.tuple(fc.string({ maxLength: 6 }), fc.integer({ min: 0, max: 1000 })), {
    minLength: 0,
    maxLength: 80,
  });

  it('property: the incremental root equals the from-scratch root after random updates', () => {
    fc.assert(
      fc.property(ops, (list) => {
        let tree = SparseMerkleTree.empty<Value>();
        const model = new Map<string, Value>();
        for (const [key, v] of list) {
          tree = put(tree, key, v);
          model.set(key, { v, k: key });
        }
        assert.equal(tree.root, scratch(model));
        assert.equal(tree.size, model.size);
        // The bulk loader builds the same tree, which then updates like any other.
        const items = [...model].map(([key, value]) => ({
          key,
          value,
          valueHash: fromHex(canonicalHash(value)),
        }));
        const bulk = SparseMerkleTree.fromItems(items);
        assert.equal(bulk.root, tree.root);
        assert.equal(bulk.size, tree.size);
        assert.equal(put(bulk, 'extra-key', 1).root, put(tree, 'extra-key', 1).root);
        for (const [key, value] of model) assert.deepEqual(tree.get(key), value);
      }),
      { numRuns: 150 },
    );
  });

  it('property: setMany gives the tree that one set() per key gives, and leaves the old tree alone', () => {
    const batch = fc.uniqueArray(fc.tuple(fc.string({ maxLength: 6 }), fc.integer({ min: 0, max: 1000 })), {
      selector: ([key]) => key,
      maxLength: 40,
    });
    fc.assert(
      fc.property(ops, fc.array(batch, { maxLength: 4 }), (start, batches) => {
        const base = start.reduce((t, [key, v]) => put(t, key, v), SparseMerkleTree.empty<Value>());
        const baseRoot = base.root;
        let one = base;
        let many = base;
        const model = new Map(start.map(([key, v]) => [key, { v, k: key }] as const));
        for (const list of batches) {
          for (const [key, v] of list) {
            one = put(one, key, v);
            model.set(key, { v, k: key });
          }
          many = many.setMany(
            list.map(([key, v]) => {
              const value = { v, k: key };
              return { key, value, valueHash: fromHex(canonicalHash(value)) };
            }),
          );
          assert.equal(many.root, one.root);
          assert.equal(many.size, one.size);
        }
        assert.equal(many.root, scratch(model));
        assert.equal(many.size, model.size);
        for (const [key, value] of model) {
          assert.deepEqual(many.get(key), value);
          assert.deepEqual(many.proof(key), one.proof(key));
        }
        assert.equal(base.root, baseRoot);
      }),
      { numRuns: 200 },
    );
  });

  it('setMany refuses a key given twice and a value hash of the wrong size', () => {
    const tree = put(SparseMerkleTree.empty<Value>(), 'a', 1);
    const item = (key: string, v: number) => ({
      key,
      value: { v, k: key },
      valueHash: fromHex(canonicalHash({ v, k: key })),
    });
    assert.throws(() => tree.setMany([item('b', 1), item('b', 2)]), /duplicate key "b"/);
    assert.throws(() => tree.setMany([{ ...item('c', 1), valueHash: new Uint8Array(31) }]), /32 bytes/);
    assert.equal(tree.setMany([]), tree);
  });

  it('property: the root does not depend on insertion order', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ maxLength: 8 }), { maxLength: 40 }), fc.nat(), (keys, seed) => {
        const forward = keys.reduce((t, k, i) => put(t, k, i), SparseMerkleTree.empty<Value>());
        const order = keys
          .map((k, i) => [k, i] as const)
          .sort((x, y) => ((x[1] * 7919 + seed) % 101) - ((y[1] * 7919 + seed) % 101));
        const shuffled = order.reduce((t, [k, i]) => put(t, k, i), SparseMerkleTree.empty<Value>());
        assert.equal(shuffled.root, forward.root);
      }),
      { numRuns: 100 },
    );
  });

  it('property: every inclusion and non-inclusion proof verifies, and mutated ones fail', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 40 }),
        fc.string({ minLength: 7, maxLength: 9 }),
        fc.nat(),
        (keys, absent, pick) => {
          const tree = keys.reduce((t, k, i) => put(t, k, i), SparseMerkleTree.empty<Value>());
          const index = pick % keys.length;
          const key = keys[index] as string;
          const value = { v: index, k: key };
          const proof = tree.proof(key);
          assert.ok(verifyStateProof(tree.root, key, value, proof));
          // A changed entry, a different key, or a changed sibling must fail.
          assert.ok(!verifyStateProof(tree.root, key, { v: index + 1, k: key }, proof));
          const other = keys[(index + 1) % keys.length] as string;
          if (other !== key) assert.ok(!verifyStateProof(tree.root, other, value, proof));
          if (proof.siblings.length > 0) {
            const at = pick % proof.siblings.length;
            const flipped = flipHex(proof.siblings[at] as string);
            const mutated: SparseProof = { ...proof, siblings: proof.siblings.with(at, flipped as never) };
            assert.ok(!verifyStateProof(tree.root, key, value, mutated));
            assert.ok(
              !verifyStateProof(tree.root, key, value, { ...proof, siblings: proof.siblings.slice(1) }),
            );
          }
          assert.ok(!verifyStateProof(flipHex(tree.root), key, value, proof));
          // Absence: a key never inserted has a valid non-inclusion proof that does not prove inclusion.
          const absence = tree.proof(absent);
          assert.ok(verifyStateProof(tree.root, absent, null, absence));
          assert.ok(!verifyStateProof(tree.root, absent, value, absence));
          // Nor can an inclusion proof be passed off as absence of the included key.
          assert.ok(!verifyStateProof(tree.root, key, null, proof));
          if (absence.leaf !== null) {
            const forged = {
              ...absence,
              leaf: { ...absence.leaf, valueHash: flipHex(absence.leaf.valueHash) },
            };
            assert.ok(!verifyStateProof(tree.root, absent, null, forged));
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('keeps the depth near log2(n) for 5,000 entries', () => {
    let tree = SparseMerkleTree.empty<Value>();
    for (let i = 0; i < 5000; i++) tree = put(tree, `device/${i}`, i);
    const depths = Array.from({ length: 50 }, (_, i) => tree.proof(`device/${i * 97}`).siblings.length);
    assert.ok(Math.max(...depths) <= 40, `depths ${depths}`);
    assert.ok(depths.reduce((a, b) => a + b) / depths.length < 20);
  });
});

function flipHex(hex: string): string {
  const last = hex.at(-1) === '0' ? '1' : '0';
  return hex.slice(0, -1) + last;
}
