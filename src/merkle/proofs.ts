/**
 * Verification of RFC 9162 inclusion proofs (section 2.1.3.2) and consistency proofs (section
 * 2.1.4.2), following the RFC's bit-walking algorithms step by step.
 *
 * Verifiers face untrusted input (a device checking a validator's answer, a client checking an
 * export), so they never throw: every malformed or wrong input gives { ok: false, reason } and
 * the boolean wrappers give false. Sizes and indices are plain numbers, so shifts are done with
 * arithmetic rather than 32-bit bit operators and stay exact up to Number.MAX_SAFE_INTEGER.
 */
import { hash } from 'node:crypto';
import { merkleProofHashesMax } from '../constants.ts';
import { bytesEqual } from '../encoding/bytes.ts';
import { HASH_BYTES } from './tree.ts';

export type VerifyResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

const OK: VerifyResult = { ok: true };

function fail(reason: string): VerifyResult {
  return { ok: false, reason };
}

function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array;
}

function isHash(value: unknown): value is Uint8Array {
  return isBytes(value) && value.byteLength === HASH_BYTES;
}

function isSize(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Why a proof array is unusable, or undefined when every element is a 32-byte hash. */
function badProof(proof: unknown): string | undefined {
  if (!Array.isArray(proof)) return 'the proof is not an array of hashes';
  if (proof.length > merkleProofHashesMax)
    return `the proof has ${proof.length} hashes, more than the ${merkleProofHashesMax} any valid proof needs`;
  for (let i = 0; i < proof.length; i++) {
    if (!isHash(proof[i])) return `proof element ${i} is not a ${HASH_BYTES}-byte hash`;
  }
  return undefined;
}

// The verifiers hash with a private helper so that lengths are checked once up front, instead of
// going through nodeHash(), whose assertions are meant for trusted callers.
const scratch = Buffer.allocUnsafe(1 + 2 * HASH_BYTES);

function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  scratch[0] = 0x01;
  scratch.set(left, 1);
  scratch.set(right, 1 + HASH_BYTES);
  return hash('sha256', scratch, 'buffer');
}

/** Names a bad size or index for a reason without calling into it (String() runs user code). */
function describe(value: unknown): string {
  return typeof value === 'number' ? String(value) : `(a ${typeof value})`;
}

const isOdd = (n: number): boolean => n % 2 === 1;
const half = (n: number): number => Math.floor(n / 2);

/**
 * RFC 9162 2.1.3.2: does `proof` show that `leafHash` is leaf `leafIndex` of the tree of
 * `treeSize` leaves whose root is `root`?
 */
export function checkInclusion(
  leafIndex: number,
  treeSize: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): VerifyResult {
  if (!isSize(leafIndex)) return fail(`leaf index ${describe(leafIndex)} is not a non-negative integer`);
  if (!isSize(treeSize)) return fail(`tree size ${describe(treeSize)} is not a non-negative integer`);
  // Step 1.
  if (leafIndex >= treeSize) return fail(`leaf index ${leafIndex} is not below tree size ${treeSize}`);
  if (!isHash(leafHash)) return fail(`the leaf hash is not ${HASH_BYTES} bytes`);
  if (!isHash(root)) return fail(`the root is not ${HASH_BYTES} bytes`);
  const bad = badProof(proof);
  if (bad !== undefined) return fail(bad);
  // Steps 2 and 3.
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r: Uint8Array = leafHash;
  // Step 4.
  for (const p of proof) {
    if (sn === 0) return fail('the proof is longer than the path from this leaf to the root');
    if (isOdd(fn) || fn === sn) {
      r = hashChildren(p, r);
      if (!isOdd(fn)) {
        // fn is a lone rightmost node: climb until it becomes a right child (or the root).
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // Step 5.
  if (sn !== 0) return fail('the proof is shorter than the path from this leaf to the root');
  if (!bytesEqual(r, root)) return fail('the computed root does not match the expected root');
  return OK;
}

/** Boolean form of checkInclusion(). */
export function verifyInclusion(
  leafIndex: number,
  treeSize: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  return checkInclusion(leafIndex, treeSize, leafHash, proof, root).ok;
}

/**
 * RFC 9162 2.1.4.2: does `proof` show that the tree of `size1` leaves with root `root1` is a
 * prefix of the tree of `size2` leaves with root `root2`?
 *
 * Edge cases, as the RFC and the public test vectors ("additional" set) require:
 * - size1 > size2 is rejected;
 * - size1 == size2 is valid only with an empty proof and identical roots;
 * - size1 == 0 is rejected: the RFC defines proofs only from a non-empty tree, and "consistent with
 *   the empty tree" proves nothing, so a caller must check root2 some other way.
 */
export function checkConsistency(
  size1: number,
  size2: number,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): VerifyResult {
  if (!isSize(size1)) return fail(`size1 ${describe(size1)} is not a non-negative integer`);
  if (!isSize(size2)) return fail(`size2 ${describe(size2)} is not a non-negative integer`);
  if (size1 > size2) return fail(`size1 ${size1} is greater than size2 ${size2}`);
  if (size1 === 0)
    return fail('size1 is 0: consistency with the empty tree proves nothing; verify root2 directly');
  if (!isBytes(root1) || !isBytes(root2)) return fail('a root is not a byte array');
  const bad = badProof(proof);
  if (bad !== undefined) return fail(bad);
  if (size1 === size2) {
    if (proof.length !== 0) return fail('size1 equals size2, so the proof must be empty');
    if (!bytesEqual(root1, root2)) return fail('size1 equals size2 but the roots differ');
    return OK;
  }
  if (!isHash(root1)) return fail(`root1 is not ${HASH_BYTES} bytes`);
  if (!isHash(root2)) return fail(`root2 is not ${HASH_BYTES} bytes`);
  // Step 1.
  if (proof.length === 0) return fail('the proof is empty but size1 is below size2');
  // Step 2: when the old tree is a complete subtree, its root is the proof's implicit first node.
  const path: readonly Uint8Array[] = isPowerOfTwo(size1) ? [root1, ...proof] : proof;
  // Step 3.
  let fn = size1 - 1;
  let sn = size2 - 1;
  // Step 4.
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  // Step 5.
  let fr: Uint8Array = path[0]!;
  let sr: Uint8Array = path[0]!;
  // Step 6.
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) return fail('the proof is longer than the sizes allow');
    if (isOdd(fn) || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // Step 7.
  if (sn !== 0) return fail('the proof is shorter than the sizes require');
  if (!bytesEqual(fr, root1)) return fail('the proof does not lead to root1');
  if (!bytesEqual(sr, root2)) return fail('the proof does not lead to root2');
  return OK;
}

/** Boolean form of checkConsistency(). */
export function verifyConsistency(
  size1: number,
  size2: number,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  return checkConsistency(size1, size2, root1, root2, proof).ok;
}

function isPowerOfTwo(n: number): boolean {
  let power = 1;
  while (power < n) power *= 2;
  return power === n;
}
