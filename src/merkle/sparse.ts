/**
 * A persistent sparse Merkle tree over 256-bit key paths, in the compact form of Diem/Aptos's
 * Jellyfish design (written from the description, not from their code):
 *
 * - a key's path is SHA-256 of the key string, read most significant bit first;
 * - an empty subtree hashes to a fixed placeholder, 32 zero bytes;
 * - a subtree that holds exactly one leaf hashes to that leaf's hash, wherever the leaf sits, so
 *   the tree is only as deep as it takes to separate the paths (about log2(n) levels);
 * - leafHash = SHA-256(0x00 || path || valueHash), internal = SHA-256(0x01 || left || right).
 *
 * Nodes are immutable and shared between versions: set() copies only the nodes on one path, so an
 * update costs O(log n) hashes and allocations and every older tree stays valid. Consensus relies
 * on that: it validates block s+1 on top of the uncommitted state after block s while both stay
 * usable.
 *
 * This file imports nothing but src/crypto/hash.ts and src/encoding/*, because the device verifier
 * reuses verifyStateProof with only node:crypto and the project's encoding.
 */
import { canonicalHash, sha256 } from '../crypto/hash.ts';
import { type Hash32Hex, isHash32Hex } from '../encoding/brand.ts';
import { fromHex, toHex } from '../encoding/bytes.ts';

const PATH_BITS = 256;
const LEAF_PREFIX = 0x00;
const INTERNAL_PREFIX = 0x01;
/** The hash of an empty subtree, and so the root of an empty tree. */
const PLACEHOLDER: Buffer = Buffer.alloc(32);

export const EMPTY_SPARSE_ROOT: Hash32Hex = toHex(PLACEHOLDER) as Hash32Hex;

/**
 * A proof for one key against a root. siblings[i] is the hash of the sibling subtree at depth i
 * (root first); the walk along the key's path ends after siblings.length steps, at `leaf` (the one
 * leaf of that subtree) or, when leaf is null, at an empty subtree. For an included key, leaf is
 * the key's own leaf; for an absent key it is null or another key's leaf sharing the prefix.
 */
export interface SparseProof {
  readonly siblings: readonly Hash32Hex[];
  readonly leaf: { readonly path: Hash32Hex; readonly valueHash: Hash32Hex } | null;
}

interface Leaf<V> {
  readonly kind: 'leaf';
  readonly hash: Buffer;
  readonly path: Buffer;
  readonly valueHash: Buffer;
  readonly key: string;
  readonly value: V;
}

interface Internal<V> {
  readonly kind: 'internal';
  readonly hash: Buffer;
  readonly left: TreeNode<V>;
  readonly right: TreeNode<V>;
}

type TreeNode<V> = Leaf<V> | Internal<V> | null;

export function keyPath(key: string): Buffer {
  return sha256(key);
}

/**
 * Both node kinds hash 65 bytes (a prefix byte and two 32-byte halves). One scratch buffer serves
 * every call, because hashing is synchronous and the hot path (an update rehashes one whole tree
 * path) should not allocate a concatenation per level.
 */
const scratch = Buffer.alloc(65);

function hash65(prefix: number, first: Uint8Array, second: Uint8Array): Buffer {
  if (first.byteLength !== 32 || second.byteLength !== 32) {
    throw new Error('sparse Merkle tree: paths and hashes are 32 bytes');
  }
  scratch[0] = prefix;
  scratch.set(first, 1);
  scratch.set(second, 33);
  return sha256(scratch);
}

export function sparseLeafHash(path: Uint8Array, valueHash: Uint8Array): Buffer {
  return hash65(LEAF_PREFIX, path, valueHash);
}

function internalHash(left: Uint8Array, right: Uint8Array): Buffer {
  return hash65(INTERNAL_PREFIX, left, right);
}

function bitAt(path: Uint8Array, depth: number): number {
  return ((path[depth >> 3] as number) >> (7 - (depth & 7))) & 1;
}

function hashOf<V>(node: TreeNode<V>): Buffer {
  return node === null ? PLACEHOLDER : node.hash;
}

function makeLeaf<V>(key: string, path: Buffer, value: V, valueHash: Buffer): Leaf<V> {
  return { kind: 'leaf', hash: sparseLeafHash(path, valueHash), path, valueHash, key, value };
}

function makeInternal<V>(left: TreeNode<V>, right: TreeNode<V>): Internal<V> {
  return { kind: 'internal', hash: internalHash(hashOf(left), hashOf(right)), left, right };
}

/** An internal node at `depth` whose subtree holds exactly the two leaves a and b (distinct paths). */
function splitLeaves<V>(a: Leaf<V>, b: Leaf<V>, depth: number): Internal<V> {
  if (depth >= PATH_BITS) {
    // Two different keys with one SHA-256 path: a collision, which we treat as impossible.
    throw new Error(`sparse Merkle tree: SHA-256 path collision between ${a.key} and ${b.key}`);
  }
  const bitA = bitAt(a.path, depth);
  const bitB = bitAt(b.path, depth);
  if (bitA === bitB) {
    const below = splitLeaves(a, b, depth + 1);
    return bitA === 0 ? makeInternal(below, null) : makeInternal(null, below);
  }
  return bitA === 0 ? makeInternal(a, b) : makeInternal(b, a);
}

function insert<V>(node: TreeNode<V>, leaf: Leaf<V>, depth: number): { node: TreeNode<V>; added: boolean } {
  if (node === null) return { node: leaf, added: true };
  if (node.kind === 'leaf') {
    if (node.path.equals(leaf.path)) return { node: leaf, added: false };
    return { node: splitLeaves(node, leaf, depth), added: true };
  }
  if (bitAt(leaf.path, depth) === 0) {
    const result = insert(node.left, leaf, depth + 1);
    return { node: makeInternal(result.node, node.right), added: result.added };
  }
  const result = insert(node.right, leaf, depth + 1);
  return { node: makeInternal(node.left, result.node), added: result.added };
}

/**
 * An immutable sparse Merkle tree from string keys to values of type V. The caller supplies each
 * value's hash (the ledger passes canonicalHash(entry)), so the tree never guesses an encoding.
 * Keys are never deleted: the ledger records revocation as a status, not as a removal.
 */
export class SparseMerkleTree<V> {
  readonly #root: TreeNode<V>;
  readonly #size: number;

  private constructor(root: TreeNode<V>, size: number) {
    this.#root = root;
    this.#size = size;
  }

  static empty<V>(): SparseMerkleTree<V> {
    return new SparseMerkleTree<V>(null, 0);
  }

  get size(): number {
    return this.#size;
  }

  get root(): Hash32Hex {
    return toHex(hashOf(this.#root)) as Hash32Hex;
  }

  get rootBytes(): Buffer {
    return hashOf(this.#root);
  }

  /**
   * A tree holding exactly these items, built bottom-up from sorted paths: about 2n hashes
   * instead of n full-path insertions, for loading a stored state. Throws on a duplicate key.
   */
  static fromItems<V>(
    items: Iterable<{ readonly key: string; readonly value: V; readonly valueHash: Uint8Array }>,
  ): SparseMerkleTree<V> {
    const leaves: Leaf<V>[] = [];
    for (const item of items) {
      if (item.valueHash.byteLength !== 32) throw new Error('sparse Merkle tree: a value hash is 32 bytes');
      leaves.push(makeLeaf(item.key, keyPath(item.key), item.value, Buffer.from(item.valueHash)));
    }
    sortDistinct(leaves);
    return new SparseMerkleTree(nodesFromSorted(leaves, 0, leaves.length, 0), leaves.length);
  }

  /** A new tree where key maps to value; this tree is left unchanged. O(log n) hashes. */
  set(key: string, value: V, valueHash: Uint8Array): SparseMerkleTree<V> {
    if (valueHash.byteLength !== 32) throw new Error('sparse Merkle tree: a value hash is 32 bytes');
    const leaf = makeLeaf(key, keyPath(key), value, Buffer.from(valueHash));
    const result = insert(this.#root, leaf, 0);
    return new SparseMerkleTree(result.node, this.#size + (result.added ? 1 : 0));
  }

  /**
   * A new tree with every one of these keys set, as the same set() calls in any order would give,
   * in one pass: the nodes above the changed leaves are rebuilt and hashed once, where separate
   * set() calls rehash the shared upper levels once per key. Throws on a key given twice.
   */
  setMany(
    items: readonly { readonly key: string; readonly value: V; readonly valueHash: Uint8Array }[],
  ): SparseMerkleTree<V> {
    if (items.length === 0) return this;
    const leaves = items.map((item) => {
      if (item.valueHash.byteLength !== 32) throw new Error('sparse Merkle tree: a value hash is 32 bytes');
      return makeLeaf(item.key, keyPath(item.key), item.value, Buffer.from(item.valueHash));
    });
    sortDistinct(leaves);
    const result = insertSorted(this.#root, leaves, 0, leaves.length, 0);
    return new SparseMerkleTree(result.node, this.#size + result.added);
  }

  get(key: string): V | undefined {
    const path = keyPath(key);
    let node = this.#root;
    for (let depth = 0; node !== null; depth++) {
      if (node.kind === 'leaf') return node.path.equals(path) ? node.value : undefined;
      node = bitAt(path, depth) === 0 ? node.left : node.right;
    }
    return undefined;
  }

  /** Inclusion proof for a present key, non-inclusion proof for an absent one. */
  proof(key: string): SparseProof {
    const path = keyPath(key);
    const siblings: Hash32Hex[] = [];
    let node = this.#root;
    for (let depth = 0; node !== null && node.kind === 'internal'; depth++) {
      const goRight = bitAt(path, depth) === 1;
      siblings.push(toHex(hashOf(goRight ? node.left : node.right)) as Hash32Hex);
      node = goRight ? node.right : node.left;
    }
    const leaf =
      node === null
        ? null
        : { path: toHex(node.path) as Hash32Hex, valueHash: toHex(node.valueHash) as Hash32Hex };
    return { siblings, leaf };
  }

  /** Every (key, value) pair in path order, which is the same for every replica. */
  *entries(): Generator<[string, V]> {
    const stack: TreeNode<V>[] = [this.#root];
    while (stack.length > 0) {
      const node = stack.pop() as TreeNode<V>;
      if (node === null) continue;
      if (node.kind === 'leaf') {
        yield [node.key, node.value];
      } else {
        stack.push(node.right, node.left);
      }
    }
  }
}

/** Sorts leaves by path; throws when two share a path (the same key given twice). */
function sortDistinct<V>(leaves: Leaf<V>[]): void {
  leaves.sort((a, b) => Buffer.compare(a.path, b.path));
  for (let i = 1; i < leaves.length; i++) {
    const previous = leaves[i - 1] as Leaf<V>;
    const leaf = leaves[i] as Leaf<V>;
    if (previous.path.equals(leaf.path)) {
      throw new Error(`sparse Merkle tree: duplicate key ${JSON.stringify(leaf.key)}`);
    }
  }
}

/**
 * The subtree at `depth` rooted at `node` with leaves[start, end) (sorted, distinct, all on this
 * subtree's path prefix) set in it, and how many of them were new keys. An untouched side keeps
 * its node (and hash) as it is; a leaf the batch reaches is merged into the batch and the
 * subtree rebuilt from the sorted leaves, which gives the same shape as inserting one by one.
 */
function insertSorted<V>(
  node: TreeNode<V>,
  leaves: readonly Leaf<V>[],
  start: number,
  end: number,
  depth: number,
): { node: TreeNode<V>; added: number } {
  if (end === start) return { node, added: 0 };
  if (node === null) return { node: nodesFromSorted(leaves, start, end, depth), added: end - start };
  if (node.kind === 'leaf') {
    // The old leaf goes in path order among the batch's, unless the batch sets its key anew.
    const merged: Leaf<V>[] = [];
    let replaced = false;
    let kept = false;
    for (let i = start; i < end; i++) {
      const leaf = leaves[i] as Leaf<V>;
      if (!replaced && !kept) {
        const order = Buffer.compare(node.path, leaf.path);
        if (order === 0) replaced = true;
        else if (order < 0) {
          merged.push(node);
          kept = true;
        }
      }
      merged.push(leaf);
    }
    if (!replaced && !kept) merged.push(node);
    return {
      node: nodesFromSorted(merged, 0, merged.length, depth),
      added: end - start - (replaced ? 1 : 0),
    };
  }
  let mid = start;
  while (mid < end && bitAt((leaves[mid] as Leaf<V>).path, depth) === 0) mid++;
  const left = insertSorted(node.left, leaves, start, mid, depth + 1);
  const right = insertSorted(node.right, leaves, mid, end, depth + 1);
  return { node: makeInternal(left.node, right.node), added: left.added + right.added };
}

function nodesFromSorted<V>(
  leaves: readonly Leaf<V>[],
  start: number,
  end: number,
  depth: number,
): TreeNode<V> {
  if (end - start === 0) return null;
  if (end - start === 1) return leaves[start] as Leaf<V>;
  let mid = start;
  while (mid < end && bitAt((leaves[mid] as Leaf<V>).path, depth) === 0) mid++;
  return makeInternal(
    nodesFromSorted(leaves, start, mid, depth + 1),
    nodesFromSorted(leaves, mid, end, depth + 1),
  );
}

/**
 * The root of the tree holding exactly these (key, valueHash) items, computed from scratch by
 * sorting the paths and splitting them bit by bit. It shares no code with the incremental tree
 * above except the two hash functions, so tests and the storage layer's chain verification use
 * it as an independent check. Throws on a duplicate key.
 */
export function sparseRootFromScratch(
  items: Iterable<{ readonly key: string; readonly valueHash: Uint8Array }>,
): Hash32Hex {
  const leaves: { path: Buffer; hash: Buffer }[] = [];
  for (const item of items) {
    const path = keyPath(item.key);
    leaves.push({ path, hash: sparseLeafHash(path, item.valueHash) });
  }
  leaves.sort((a, b) => Buffer.compare(a.path, b.path));
  for (let i = 1; i < leaves.length; i++) {
    if ((leaves[i - 1] as { path: Buffer }).path.equals((leaves[i] as { path: Buffer }).path)) {
      throw new Error('sparse Merkle tree: duplicate key in a from-scratch recomputation');
    }
  }
  return toHex(subtreeFromSorted(leaves, 0, leaves.length, 0)) as Hash32Hex;
}

function subtreeFromSorted(
  leaves: readonly { path: Buffer; hash: Buffer }[],
  start: number,
  end: number,
  depth: number,
): Buffer {
  if (end - start === 0) return PLACEHOLDER;
  if (end - start === 1) return (leaves[start] as { hash: Buffer }).hash;
  // Sorted paths put every 0 bit at this depth before every 1 bit: find the boundary.
  let mid = start;
  while (mid < end && bitAt((leaves[mid] as { path: Buffer }).path, depth) === 0) mid++;
  return internalHash(
    subtreeFromSorted(leaves, start, mid, depth + 1),
    subtreeFromSorted(leaves, mid, end, depth + 1),
  );
}

/**
 * Checks a proof that `key` maps to `value` under `root` (value !== null: inclusion), or that `key`
 * is absent (value === null: non-inclusion). The value's hash is canonicalHash(value). Returns
 * false, never throws, on any malformed input: the caller may be a device reading untrusted JSON.
 */
export function verifyStateProof(root: string, key: string, value: unknown, proof: unknown): boolean {
  try {
    if (!isHash32Hex(root) || typeof key !== 'string' || !isSparseProof(proof)) return false;
    const path = keyPath(key);
    let current: Buffer;
    if (value !== null) {
      const valueHash = fromHex(canonicalHash(value));
      if (proof.leaf === null) return false;
      if (!fromHex(proof.leaf.path).equals(path) || !fromHex(proof.leaf.valueHash).equals(valueHash)) {
        return false;
      }
      current = sparseLeafHash(path, valueHash);
    } else if (proof.leaf === null) {
      current = PLACEHOLDER;
    } else {
      // Another key's leaf ends the walk: it must lie on our path (share the prefix walked so far)
      // and must not be our key, or it would prove inclusion rather than absence.
      const otherPath = fromHex(proof.leaf.path);
      if (otherPath.equals(path) || !sharesPrefix(otherPath, path, proof.siblings.length)) return false;
      current = sparseLeafHash(otherPath, fromHex(proof.leaf.valueHash));
    }
    for (let depth = proof.siblings.length - 1; depth >= 0; depth--) {
      const sibling = fromHex(proof.siblings[depth] as string);
      current = bitAt(path, depth) === 0 ? internalHash(current, sibling) : internalHash(sibling, current);
    }
    return current.equals(fromHex(root));
  } catch {
    return false;
  }
}

function sharesPrefix(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  for (let depth = 0; depth < bits; depth++) if (bitAt(a, depth) !== bitAt(b, depth)) return false;
  return true;
}

function isSparseProof(proof: unknown): proof is SparseProof {
  if (typeof proof !== 'object' || proof === null) return false;
  const { siblings, leaf } = proof as { siblings?: unknown; leaf?: unknown };
  if (!Array.isArray(siblings) || siblings.length > PATH_BITS || !siblings.every(isHash32Hex)) return false;
  if (leaf === null) return true;
  if (typeof leaf !== 'object' || leaf === undefined) return false;
  const { path, valueHash } = leaf as { path?: unknown; valueHash?: unknown };
  return isHash32Hex(path) && isHash32Hex(valueHash);
}
