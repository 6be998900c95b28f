/**
 * Hex forms of roots and proofs. Hashes travel as lower-case hex in JSON everywhere in ConfigChain
 * (API answers, exports, device proofs), while the tree works on Buffers; these helpers convert at
 * the edge. Parsing is strict (64 lower-case hex characters) and never throws on bad input, so a
 * verifier fed a malformed JSON proof still just answers "not valid" with a reason.
 */

import { merkleProofHashesMax } from '../constants.ts';
import { type Hash32Hex, isHash32Hex } from '../encoding/brand.ts';
import { assert } from '../errors.ts';
import { checkConsistency, checkInclusion, type VerifyResult } from './proofs.ts';
import { HASH_BYTES } from './tree.ts';

export function hashToHex(bytes: Uint8Array): Hash32Hex {
  assert(bytes.byteLength === HASH_BYTES, `a tree hash is ${HASH_BYTES} bytes, got ${bytes.byteLength}`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex') as Hash32Hex;
}

export function proofToHex(proof: readonly Uint8Array[]): Hash32Hex[] {
  return proof.map(hashToHex);
}

/** Parses one 32-byte hash from lower-case hex; undefined when the text is not exactly that. */
export function hashFromHex(text: unknown): Buffer | undefined {
  return isHash32Hex(text) ? Buffer.from(text, 'hex') : undefined;
}

/** Parses a proof (array of lower-case hex hashes); undefined when any element is malformed. */
export function proofFromHex(list: unknown): Buffer[] | undefined {
  if (!Array.isArray(list) || list.length > merkleProofHashesMax) return undefined;
  const proof: Buffer[] = [];
  for (const item of list) {
    const h = hashFromHex(item);
    if (h === undefined) return undefined;
    proof.push(h);
  }
  return proof;
}

/** checkInclusion() over hex inputs, as they arrive in JSON. */
export function checkInclusionHex(
  leafIndex: number,
  treeSize: number,
  leafHashHex: string,
  proofHex: readonly string[],
  rootHex: string,
): VerifyResult {
  const leaf = hashFromHex(leafHashHex);
  if (leaf === undefined) return { ok: false, reason: 'the leaf hash is not 64 lower-case hex characters' };
  const root = hashFromHex(rootHex);
  if (root === undefined) return { ok: false, reason: 'the root is not 64 lower-case hex characters' };
  const proof = proofFromHex(proofHex);
  if (proof === undefined)
    return { ok: false, reason: 'the proof is not a list of 64-character lower-case hex hashes' };
  return checkInclusion(leafIndex, treeSize, leaf, proof, root);
}

/** checkConsistency() over hex inputs, as they arrive in JSON. */
export function checkConsistencyHex(
  size1: number,
  size2: number,
  root1Hex: string,
  root2Hex: string,
  proofHex: readonly string[],
): VerifyResult {
  const root1 = hashFromHex(root1Hex);
  if (root1 === undefined) return { ok: false, reason: 'root1 is not 64 lower-case hex characters' };
  const root2 = hashFromHex(root2Hex);
  if (root2 === undefined) return { ok: false, reason: 'root2 is not 64 lower-case hex characters' };
  const proof = proofFromHex(proofHex);
  if (proof === undefined)
    return { ok: false, reason: 'the proof is not a list of 64-character lower-case hex hashes' };
  return checkConsistency(size1, size2, root1, root2, proof);
}
