/**
 * RFC 9162 Merkle trees: the one import point for the rest of ConfigChain
 * (`import { MerkleTree, verifyInclusion } from '../merkle/index.ts'`).
 * The sparse state tree (sparse*.ts) is a separate module with its own entry.
 */
export {
  checkConsistencyHex,
  checkInclusionHex,
  hashFromHex,
  hashToHex,
  proofFromHex,
  proofToHex,
} from './hex.ts';
export {
  checkConsistency,
  checkInclusion,
  type VerifyResult,
  verifyConsistency,
  verifyInclusion,
} from './proofs.ts';
export {
  consistencyProof,
  EMPTY_ROOT,
  HASH_BYTES,
  inclusionProof,
  leafHash,
  MerkleTree,
  merkleRoot,
  merkleRootOfData,
  nodeHash,
  splitPoint,
} from './tree.ts';
