/**
 * Block hashes, transaction roots and proofs, and the genesis block. The transaction tree is an
 * RFC 9162 tree whose leaf data is each transaction's canonical bytes.
 */
import { canonicalHash } from '../crypto/hash.ts';
import type { BlockHash, Hash32Hex, Height, ValidatorId, View } from '../encoding/brand.ts';
import {
  checkInclusionHex,
  hashToHex,
  inclusionProof,
  leafHash,
  merkleRoot,
  proofToHex,
} from '../merkle/index.ts';
import { genesisHash, validatorSetHash } from './genesis.ts';
import { EMPTY_STATE_ROOT } from './state.ts';
import { txLeafData } from './tx.ts';
import type { Block, BlockHeader, Genesis, Transaction } from './types.ts';

/** SHA-256 of the canonical header; what PBFT votes on and commit certificates sign. */
export function blockHash(header: BlockHeader): BlockHash {
  return canonicalHash(header) as string as BlockHash;
}

export function txLeafHashes(txs: readonly Transaction[]): Buffer[] {
  return txs.map((tx) => leafHash(txLeafData(tx)));
}

/** RFC 9162 root over the transactions; the empty block's root is SHA-256 of the empty string. */
export function txRoot(txs: readonly Transaction[]): Hash32Hex {
  return hashToHex(merkleRoot(txLeafHashes(txs)));
}

/** txRoot() from transactions' canonical bytes already at hand (see parseTransactionWithId). */
export function txRootOfLeafData(leaves: readonly Uint8Array[]): Hash32Hex {
  return hashToHex(merkleRoot(leaves.map((data) => leafHash(data))));
}

/** The audit path (hex, leaf side first, as RFC 9162 orders it) of txs[index] in the block's tx tree. */
export function txInclusionProof(txs: readonly Transaction[], index: number): Hash32Hex[] {
  if (!Number.isSafeInteger(index) || index < 0 || index >= txs.length) {
    throw new RangeError(`transaction index ${index} is outside the block's ${txs.length} transactions`);
  }
  return proofToHex(inclusionProof(txLeafHashes(txs), index));
}

/**
 * Does `proof` show that `tx` is transaction number `index` of a block of `txCount` transactions
 * whose header has `root` as txRoot? Never throws on malformed input.
 */
export function verifyTxInclusion(
  tx: Transaction,
  index: number,
  txCount: number,
  proof: readonly string[],
  root: string,
): boolean {
  try {
    return checkInclusionHex(index, txCount, hashToHex(leafHash(txLeafData(tx))), proof, root).ok;
  } catch {
    return false;
  }
}

/** Where a transaction sits in its block: what GET /v1/tx/:id/proof carries besides the header. */
export interface TxPosition {
  readonly index: number;
  /** The block's transaction count; equal to header.txCount of a valid block. */
  readonly txCount: number;
  /** The RFC 9162 audit path, leaf side first. */
  readonly inclusion: readonly Hash32Hex[];
}

/** The inclusion proof of block.txs[index]. Throws RangeError when there is no such transaction. */
export function txProofFor(block: Block, index: number): TxPosition {
  const inclusion = txInclusionProof(block.txs, index);
  return { index, txCount: block.txs.length, inclusion };
}

/**
 * Does `inclusion` show that `tx` is transaction number `index` of the block with this header?
 * The tree size comes from header.txCount, so a proof made for a different position or a
 * different block size fails. It trusts the header as given: the caller checks the header's
 * certificate. Never throws on malformed input.
 */
export function verifyTxProofAgainstHeader(
  header: BlockHeader,
  tx: Transaction,
  index: number,
  inclusion: readonly string[],
): boolean {
  if (!Number.isSafeInteger(header.txCount) || !Number.isSafeInteger(index)) return false;
  if (index < 0 || index >= header.txCount) return false;
  return verifyTxInclusion(tx, index, header.txCount, inclusion, header.txRoot);
}

/**
 * Block 0: no transactions, the empty state, and prevHash = the genesis document's hash, so the
 * chain is anchored to the exact genesis file every participant pins.
 */
export function genesisBlock(genesis: Genesis): Block {
  const header: BlockHeader = {
    chainId: genesis.chainId,
    height: 0 as Height,
    prevHash: genesisHash(genesis) as string as BlockHash,
    timestampMs: genesis.genesisTimeMs,
    txCount: 0,
    txRoot: txRoot([]),
    stateRoot: EMPTY_STATE_ROOT,
    validatorSetHash: validatorSetHash(genesis.validators),
    view: 0 as View,
    proposer: 0 as ValidatorId,
  };
  return { header, txs: [] };
}
