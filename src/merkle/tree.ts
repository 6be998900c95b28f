/**
 * Merkle Tree Hash (MTH) exactly as RFC 9162 section 2.1.1 defines it:
 *   MTH({})    = SHA-256()
 *   MTH({d0})  = SHA-256(0x00 || d0)                       (leaf hash)
 *   MTH(D[n])  = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])) (node hash)
 * where k is the largest power of two smaller than n.
 *
 * The recursive definition is computed bottom up: pairing neighbours level by level and carrying
 * a lone rightmost node up unchanged yields exactly the same tree, because the left part of every
 * RFC split is a complete subtree of 2^j leaves. Hashes live in one contiguous Buffer per level,
 * so the two children of node i are the 64 bytes at 64*i of the level below: one copy into a
 * scratch buffer and one one-shot SHA-256 per node, and no per-node objects or hex strings.
 */
import { hash } from 'node:crypto';
import type { Hash32Hex } from '../encoding/brand.ts';
import { assert } from '../errors.ts';

/** Size in bytes of every hash in the tree (SHA-256). */
export const HASH_BYTES = 32;

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = 0x01;

/** Root of the empty tree: SHA-256 of the empty string (RFC 9162 section 2.1.1). */
export const EMPTY_ROOT: Buffer = hash('sha256', Buffer.alloc(0), 'buffer');

/** RFC 9162 leaf hash: SHA-256(0x00 || data). */
export function leafHash(data: Uint8Array): Buffer {
  return hash('sha256', Buffer.concat([LEAF_PREFIX, data]), 'buffer');
}

/**
 * RFC 9162 interior node hash: SHA-256(0x01 || left || right). Both children must be 32-byte
 * hashes; anything else is a caller bug (verifiers check lengths before they hash).
 */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  assert(left.byteLength === HASH_BYTES, `left child must be ${HASH_BYTES} bytes, got ${left.byteLength}`);
  assert(right.byteLength === HASH_BYTES, `right child must be ${HASH_BYTES} bytes, got ${right.byteLength}`);
  const scratch = Buffer.allocUnsafe(1 + 2 * HASH_BYTES);
  scratch[0] = NODE_PREFIX;
  scratch.set(left, 1);
  scratch.set(right, 1 + HASH_BYTES);
  return hash('sha256', scratch, 'buffer');
}

/** Largest power of two strictly smaller than n (n >= 2): the RFC's split point k. */
export function splitPoint(n: number): number {
  assert(Number.isSafeInteger(n) && n >= 2, `split point needs n >= 2, got ${n}`);
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** log2(n) when n is a power of two, else undefined (arithmetic, so safe beyond 32 bits). */
function exactLog2(n: number): number | undefined {
  let height = 0;
  let power = 1;
  while (power < n) {
    power *= 2;
    height += 1;
  }
  return power === n ? height : undefined;
}

/** Smallest h with 2^h >= n (n >= 1). */
function ceilLog2(n: number): number {
  let height = 0;
  let power = 1;
  while (power < n) {
    power *= 2;
    height += 1;
  }
  return height;
}

/** Copies leaf hashes into one contiguous buffer, asserting that each is a 32-byte hash. */
function packLeafHashes(leafHashes: readonly Uint8Array[]): Buffer {
  const packed = Buffer.allocUnsafe(leafHashes.length * HASH_BYTES);
  for (let i = 0; i < leafHashes.length; i++) {
    const h = leafHashes[i];
    assert(
      h !== undefined && h.byteLength === HASH_BYTES,
      `leaf hash ${i} must be ${HASH_BYTES} bytes, got ${h?.byteLength}`,
    );
    packed.set(h, i * HASH_BYTES);
  }
  return packed;
}

/**
 * Hashes one level of `count` packed nodes into the level above, writing into `out` (which may be
 * `level` itself: node i is written at 32*i only after its children at 64*i were read). Returns
 * the number of nodes in the level above.
 */
function reduceLevel(level: Buffer, count: number, out: Buffer, scratch: Buffer): number {
  const pairs = Math.floor(count / 2);
  for (let i = 0; i < pairs; i++) {
    level.copy(scratch, 1, 2 * i * HASH_BYTES, (2 * i + 2) * HASH_BYTES);
    out.set(hash('sha256', scratch, 'buffer'), i * HASH_BYTES);
  }
  if (count % 2 === 1) {
    // The lone rightmost node is carried up unchanged, exactly as the RFC split leaves it.
    level.copy(out, pairs * HASH_BYTES, (count - 1) * HASH_BYTES, count * HASH_BYTES);
  }
  return pairs + (count % 2);
}

function newScratch(): Buffer {
  const scratch = Buffer.allocUnsafe(1 + 2 * HASH_BYTES);
  scratch[0] = NODE_PREFIX;
  return scratch;
}

/** MTH over leaf hashes (not leaf data): the root of the tree whose leaves hash to these. */
export function merkleRoot(leafHashes: readonly Uint8Array[]): Buffer {
  if (leafHashes.length === 0) return Buffer.from(EMPTY_ROOT);
  const work = packLeafHashes(leafHashes);
  const scratch = newScratch();
  let count = leafHashes.length;
  while (count > 1) count = reduceLevel(work, count, work, scratch);
  return Buffer.from(work.subarray(0, HASH_BYTES));
}

/** MTH over leaf data: hashes every leaf with leafHash() first. */
export function merkleRootOfData(leaves: readonly Uint8Array[]): Buffer {
  return merkleRoot(leaves.map(leafHash));
}

/**
 * A tree over a fixed list of leaves with every level kept, so that after the O(n) build the root
 * costs nothing and inclusion and consistency proofs are read from the levels: no hashing for the
 * whole tree, and O(log n) hashes per proof element for an earlier size, whose right edge differs.
 * The ledger uses it for the transaction root of a block and per-transaction inclusion proofs.
 */
export class MerkleTree {
  /** levels[0] holds the leaf hashes and levels[j] the nodes at height j, packed 32 bytes per node. */
  readonly #levels: Buffer[];
  readonly #size: number;

  private constructor(levels: Buffer[], size: number) {
    this.#levels = levels;
    this.#size = size;
  }

  /** Builds the tree from leaf hashes (each 32 bytes, already RFC 9162 leaf hashes). */
  static fromLeafHashes(leafHashes: readonly Uint8Array[]): MerkleTree {
    const levels: Buffer[] = [packLeafHashes(leafHashes)];
    const scratch = newScratch();
    let count = leafHashes.length;
    while (count > 1) {
      const below = levels[levels.length - 1]!;
      const above = Buffer.allocUnsafe(Math.ceil(count / 2) * HASH_BYTES);
      count = reduceLevel(below, count, above, scratch);
      levels.push(above);
    }
    assert(
      levels[levels.length - 1]!.byteLength === Math.min(leafHashes.length, 1) * HASH_BYTES,
      'the top level must hold exactly the root',
    );
    return new MerkleTree(levels, leafHashes.length);
  }

  /** Builds the tree from leaf data, hashing every leaf with leafHash(). */
  static fromLeafData(leaves: readonly Uint8Array[]): MerkleTree {
    return MerkleTree.fromLeafHashes(leaves.map(leafHash));
  }

  /** Number of leaves. */
  get size(): number {
    return this.#size;
  }

  /** MTH of the whole tree; EMPTY_ROOT for no leaves. */
  root(): Buffer {
    if (this.#size === 0) return Buffer.from(EMPTY_ROOT);
    const top = this.#levels[this.#levels.length - 1]!;
    return Buffer.from(top.subarray(0, HASH_BYTES));
  }

  rootHex(): Hash32Hex {
    return this.root().toString('hex') as Hash32Hex;
  }

  /** The leaf hash at `index`. */
  leafHash(index: number): Buffer {
    assert(
      Number.isSafeInteger(index) && index >= 0 && index < this.#size,
      `leaf index ${index} out of range [0, ${this.#size})`,
    );
    return Buffer.from(this.#node(0, index));
  }

  /**
   * MTH(D[start:end]), the hash of an arbitrary leaf range. Ranges that are nodes of the tree of
   * size `end` (the only ones proofs need) come from the stored levels in O(log n) steps.
   */
  rangeHash(start: number, end: number): Buffer {
    assert(
      Number.isSafeInteger(start) &&
        Number.isSafeInteger(end) &&
        0 <= start &&
        start < end &&
        end <= this.#size,
      `leaf range [${start}, ${end}) must be non-empty and within [0, ${this.#size})`,
    );
    return Buffer.from(this.#rangeHash(start, end));
  }

  #rangeHash(start: number, end: number): Uint8Array {
    const width = end - start;
    // A complete, aligned subtree of 2^j leaves is stored as node start/2^j at level j.
    const height = exactLog2(width);
    if (height !== undefined && start % width === 0) return this.#node(height, start / width);
    if (end === this.#size) {
      // The right edge of the whole tree is stored too: the lone nodes carried up a level.
      const edgeHeight = ceilLog2(width);
      const span = 2 ** edgeHeight;
      if (start % span === 0) return this.#node(edgeHeight, start / span);
    }
    const k = splitPoint(width);
    return nodeHash(this.#rangeHash(start, start + k), this.#rangeHash(start + k, end));
  }

  #node(height: number, index: number): Uint8Array {
    const level = this.#levels[height];
    assert(level !== undefined, `no level ${height} in a tree of ${this.#size} leaves`);
    const offset = index * HASH_BYTES;
    assert(offset + HASH_BYTES <= level.byteLength, `no node ${index} at level ${height}`);
    return level.subarray(offset, offset + HASH_BYTES);
  }

  /**
   * RFC 9162 2.1.3.1 audit path PATH(index, D[0:size]), leaf first. `size` defaults to the whole
   * tree; an earlier size proves inclusion in an earlier root of the same growing list.
   */
  inclusionProof(index: number, size: number = this.#size): Buffer[] {
    assert(
      Number.isSafeInteger(size) && size >= 1 && size <= this.#size,
      `tree size ${size} must be in [1, ${this.#size}]`,
    );
    assert(
      Number.isSafeInteger(index) && index >= 0 && index < size,
      `leaf index ${index} must be in [0, ${size})`,
    );
    // Walk down from the root; each step records the sibling subtree, so reverse at the end.
    const topDown: Buffer[] = [];
    let lo = 0;
    let hi = size;
    while (hi - lo > 1) {
      const k = splitPoint(hi - lo);
      if (index < lo + k) {
        topDown.push(this.rangeHash(lo + k, hi));
        hi = lo + k;
      } else {
        topDown.push(this.rangeHash(lo, lo + k));
        lo += k;
      }
    }
    return topDown.reverse();
  }

  /**
   * RFC 9162 2.1.4.1 consistency proof PROOF(size1, D[0:size2]). size1 == size2 gives the empty
   * proof; size1 must be at least 1 because the RFC defines no proof from the empty tree.
   */
  consistencyProof(size1: number, size2: number = this.#size): Buffer[] {
    assert(
      Number.isSafeInteger(size2) && size2 >= 1 && size2 <= this.#size,
      `size2 ${size2} must be in [1, ${this.#size}]`,
    );
    assert(
      Number.isSafeInteger(size1) && size1 >= 1 && size1 <= size2,
      `size1 ${size1} must be in [1, ${size2}]`,
    );
    if (size1 === size2) return [];
    // SUBPROOF(m, D[lo:hi], b) unrolled: every step appends one hash after the inner subproof,
    // so collect those outer hashes and emit the innermost one first.
    const outer: Buffer[] = [];
    let m = size1;
    let lo = 0;
    let hi = size2;
    let wholeOldTree = true;
    while (m !== hi - lo) {
      const k = splitPoint(hi - lo);
      if (m <= k) {
        outer.push(this.rangeHash(lo + k, hi));
        hi = lo + k;
      } else {
        outer.push(this.rangeHash(lo, lo + k));
        lo += k;
        m -= k;
        wholeOldTree = false;
      }
    }
    const proof = wholeOldTree ? [] : [this.rangeHash(lo, hi)];
    for (let i = outer.length - 1; i >= 0; i--) proof.push(outer[i]!);
    return proof;
  }
}

/** RFC 9162 audit path for leaf `index` in the tree over all of `leafHashes`. */
export function inclusionProof(leafHashes: readonly Uint8Array[], index: number): Buffer[] {
  return MerkleTree.fromLeafHashes(leafHashes).inclusionProof(index);
}

/** RFC 9162 consistency proof from the first `size1` leaves to all of `leafHashes`. */
export function consistencyProof(leafHashes: readonly Uint8Array[], size1: number): Buffer[] {
  return MerkleTree.fromLeafHashes(leafHashes).consistencyProof(size1);
}
