/**
 * Shape checks of what peers send, before anything reaches the replica. The transport hands over
 * untrusted JSON objects; the replica and the application assume well-typed messages (a block with
 * a proper header, hex digests, integer views), so every field is checked here and anything
 * malformed is dropped. Signatures are not checked here: the replica checks every signature it
 * relies on through the node's Verifier.
 */

import type {
  CertifiedBlock,
  Checkpoint,
  Commit,
  ConsensusMessage,
  NewView,
  PrePrepare,
  Prepare,
  PreparedCertificate,
  StableCheckpoint,
  ViewChange,
} from '../consensus/types.ts';
import {
  blockTxsMax,
  pendingRequestsMax,
  stateTransferBlocksPerRequestMax,
  validatorsMax,
  watermarkWindow,
} from '../constants.ts';
import { isHash32Hex, isSignatureHex, type TxId } from '../encoding/brand.ts';
import { type ParsedTransaction, parseBlockHeader, parseTransactionWithId } from '../ledger/index.ts';
import type { CommitCertificate } from '../ledger/types.ts';
import type { NodeBlock } from './application.ts';

type Json = Record<string, unknown>;

/**
 * How a block's transactions are parsed: the ledger's parseTransactionWithId, or the node's cache
 * of it (LedgerApp.parse), which recognises the copies a proposal carries of transactions the
 * node already holds from gossip without canonicalizing them again.
 */
export type TxParser = (json: unknown) => ParsedTransaction;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isReplica(value: unknown, n: number): value is number {
  return isCount(value) && value < n;
}

/** A block from a peer with a well-formed header and transactions; null if malformed. */
export function sanitizeBlock(value: unknown, parse: TxParser = parseTransactionWithId): NodeBlock | null {
  if (!isObject(value) || !Array.isArray(value.txs) || value.txs.length > blockTxsMax) return null;
  const dropped = value.dropped ?? [];
  if (!Array.isArray(dropped) || dropped.length > pendingRequestsMax || !dropped.every(isHash32Hex))
    return null;
  try {
    const header = parseBlockHeader(value.header);
    const txs = value.txs.map((tx) => parse(tx).tx);
    return dropped.length === 0 ? { header, txs } : { header, txs, dropped: dropped as unknown as TxId[] };
  } catch {
    return null;
  }
}

function prePrepare(value: unknown, n: number, parse?: TxParser): PrePrepare<NodeBlock> | null {
  if (!isObject(value) || value.kind !== 'pre-prepare') return null;
  if (!isCount(value.view) || !isCount(value.seq) || !isHash32Hex(value.digest)) return null;
  if (!isReplica(value.replica, n) || !isSignatureHex(value.signature)) return null;
  const block = sanitizeBlock(value.block, parse);
  if (block === null) return null;
  return { ...(value as unknown as PrePrepare<NodeBlock>), block };
}

function vote<K extends 'prepare' | 'commit'>(
  value: unknown,
  kind: K,
  n: number,
): (K extends 'prepare' ? Prepare : Commit) | null {
  if (!isObject(value) || value.kind !== kind) return null;
  if (!isCount(value.view) || !isCount(value.seq) || !isHash32Hex(value.digest)) return null;
  if (!isReplica(value.replica, n) || !isSignatureHex(value.signature)) return null;
  return value as never;
}

function checkpoint(value: unknown, n: number): Checkpoint | null {
  if (!isObject(value) || value.kind !== 'checkpoint') return null;
  if (!isCount(value.seq) || !isHash32Hex(value.digest)) return null;
  if (!isReplica(value.replica, n) || !isSignatureHex(value.signature)) return null;
  return value as unknown as Checkpoint;
}

function stableCheckpoint(value: unknown, n: number): StableCheckpoint | null {
  if (!isObject(value) || !isCount(value.seq) || !isHash32Hex(value.digest)) return null;
  if (!Array.isArray(value.proof) || value.proof.length > n) return null;
  const proof: Checkpoint[] = [];
  for (const item of value.proof) {
    const c = checkpoint(item, n);
    if (c === null) return null;
    proof.push(c);
  }
  return {
    seq: value.seq as StableCheckpoint['seq'],
    digest: value.digest as string as StableCheckpoint['digest'],
    proof,
  };
}

function preparedCertificate(value: unknown, n: number): PreparedCertificate<NodeBlock> | null {
  if (!isObject(value) || !Array.isArray(value.prepares) || value.prepares.length > n) return null;
  const pp = prePrepare(value.prePrepare, n);
  if (pp === null) return null;
  const prepares: Prepare[] = [];
  for (const item of value.prepares) {
    const p = vote(item, 'prepare', n);
    if (p === null) return null;
    prepares.push(p);
  }
  return { prePrepare: pp, prepares };
}

function viewChange(value: unknown, n: number): ViewChange<NodeBlock> | null {
  if (!isObject(value) || value.kind !== 'view-change') return null;
  if (!isCount(value.newView) || !isReplica(value.replica, n) || !isSignatureHex(value.signature))
    return null;
  const cp = stableCheckpoint(value.checkpoint, n);
  if (cp === null || !Array.isArray(value.prepared)) return null;
  // One prepared certificate per sequence number in the watermark window at most.
  if (value.prepared.length > watermarkWindow) return null;
  const prepared: PreparedCertificate<NodeBlock>[] = [];
  for (const item of value.prepared) {
    const c = preparedCertificate(item, n);
    if (c === null) return null;
    prepared.push(c);
  }
  return { ...(value as unknown as ViewChange<NodeBlock>), checkpoint: cp, prepared };
}

function newView(value: unknown, n: number): NewView<NodeBlock> | null {
  if (!isObject(value) || value.kind !== 'new-view') return null;
  if (!isCount(value.view) || !isReplica(value.replica, n) || !isSignatureHex(value.signature)) return null;
  if (!Array.isArray(value.viewChanges) || value.viewChanges.length > n) return null;
  if (!Array.isArray(value.prePrepares) || value.prePrepares.length > watermarkWindow) return null;
  const viewChanges: ViewChange<NodeBlock>[] = [];
  for (const item of value.viewChanges) {
    const vc = viewChange(item, n);
    if (vc === null) return null;
    viewChanges.push(vc);
  }
  const prePrepares: PrePrepare<NodeBlock>[] = [];
  for (const item of value.prePrepares) {
    const pp = prePrepare(item, n);
    if (pp === null) return null;
    prePrepares.push(pp);
  }
  return { ...(value as unknown as NewView<NodeBlock>), viewChanges, prePrepares };
}

/**
 * A PBFT message of a well-formed shape, or null. `from` is the authenticated link's peer; `parse`
 * parses a PRE-PREPARE's transactions (the node passes its cache, LedgerApp.parse).
 */
export function sanitizeConsensusMessage(
  message: Json,
  _from: number,
  n: number,
  parse?: TxParser,
): ConsensusMessage<NodeBlock> | null {
  if (n > validatorsMax) return null;
  switch (message.kind) {
    case 'pre-prepare':
      return prePrepare(message, n, parse);
    case 'prepare':
      return vote(message, 'prepare', n);
    case 'commit':
      return vote(message, 'commit', n);
    case 'checkpoint':
      return checkpoint(message, n);
    case 'view-change':
      return viewChange(message, n);
    case 'new-view':
      return newView(message, n);
    default:
      return null;
  }
}

function certificate(value: unknown, n: number): CommitCertificate | null {
  if (!isObject(value) || !isCount(value.height) || !isCount(value.view) || !isHash32Hex(value.blockHash))
    return null;
  if (!Array.isArray(value.signatures) || value.signatures.length > n) return null;
  for (const s of value.signatures) {
    if (!isObject(s) || !isReplica(s.validator, n) || !isSignatureHex(s.signature)) return null;
  }
  return value as unknown as CommitCertificate;
}

/** A state-transfer answer: certified blocks, well-formed; null if anything is malformed. */
export function sanitizeCertifiedBlocks(
  value: unknown,
  n: number = validatorsMax,
): CertifiedBlock<NodeBlock>[] | null {
  if (!Array.isArray(value) || value.length > stateTransferBlocksPerRequestMax) return null;
  const out: CertifiedBlock<NodeBlock>[] = [];
  for (const item of value) {
    if (!isObject(item)) return null;
    const block = sanitizeBlock(item.block);
    const cert = certificate(item.certificate, n);
    if (block === null || cert === null) return null;
    out.push({ block, certificate: cert });
  }
  return out;
}
