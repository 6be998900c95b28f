/**
 * The stored form of a block, shared by both stores: what appendBlock() writes, and how a read
 * turns it back into ledger objects. Headers, transactions, certificates and state entries are
 * stored as canonical JSON text, so the bytes on disk are the bytes that were hashed, and both
 * stores hold exactly the same rows (the memory store keeps them in maps).
 */

import { storeQueryRowsMax } from '../constants.ts';
import { sha256Hex } from '../crypto/hash.ts';
import type { BlockHash } from '../encoding/brand.ts';
import { asHeight } from '../encoding/brand.ts';
import { canonicalString } from '../encoding/canonical.ts';
import { stateKeyOf } from '../ledger/index.ts';
import type {
  Block,
  BlockHeader,
  CommitCertificate,
  Genesis,
  StateChange,
  StateEntry,
  Transaction,
} from '../ledger/types.ts';
import type { AppendInput, Tip } from './store.ts';
import { StorageError } from './store.ts';

export interface BlockRow {
  readonly height: number;
  readonly hash: string;
  /** Canonical JSON of the header. */
  readonly header: string;
  readonly timestampMs: number;
  readonly txCount: number;
}

export interface TxRow {
  readonly txId: string;
  readonly height: number;
  readonly index: number;
  readonly type: string;
  /** The target a release, attest, report or enrollment names; null for a revoke. */
  readonly target: string | null;
  /** The device of an enroll, revoke or report; null otherwise. */
  readonly deviceId: string | null;
  /** Canonical JSON of the whole transaction (body and signatures): the tx-root leaf data. */
  readonly body: string;
}

export interface StateRow {
  readonly key: string;
  /** Canonical JSON of the entry. */
  readonly entry: string;
  /** Height of the block that last wrote the entry. */
  readonly height: number;
}

/** Everything one appendBlock() writes, serialized before the write starts. */
export interface PreparedAppend {
  readonly block: BlockRow;
  readonly txs: readonly TxRow[];
  /** Canonical JSON of the certificate; null only at height 0. */
  readonly certificate: string | null;
  readonly state: readonly StateRow[];
}

/**
 * Checks an append against the current tip (the preconditions) and serializes it. Throws
 * StorageError APPEND_OUT_OF_ORDER or BAD_APPEND; nothing has been written when it throws.
 */
export function prepareAppend(genesis: Genesis, tip: Tip | null, input: AppendInput): PreparedAppend {
  const { block, certificate, changes } = input;
  const header = block.header;
  const expectedHeight = tip === null ? 0 : tip.height + 1;
  if (header.height !== expectedHeight) {
    throw new StorageError(
      'APPEND_OUT_OF_ORDER',
      `block ${header.height} cannot be appended: the store's next height is ${expectedHeight}; ` +
        'append blocks in order (fetch the missing ones first)',
      { height: header.height, expectedHeight },
    );
  }
  if (tip !== null && header.prevHash !== tip.hash) {
    throw new StorageError(
      'APPEND_OUT_OF_ORDER',
      `block ${header.height} does not extend the stored chain: its prevHash ${header.prevHash} ` +
        `is not the hash ${tip.hash} of stored block ${tip.height}`,
      { height: header.height, prevHash: header.prevHash, tipHash: tip.hash },
    );
  }
  if (header.chainId !== genesis.chainId) {
    throw new StorageError(
      'BAD_APPEND',
      `block ${header.height} belongs to chain "${header.chainId}", this store to "${genesis.chainId}"`,
      { height: header.height, chainId: header.chainId },
    );
  }
  // blockHash is SHA-256 of the canonical header: hash the one string the row stores.
  const headerText = canonicalString(header);
  const hash = sha256Hex(headerText) as string as BlockHash;
  if (header.height === 0) {
    if (certificate !== null) {
      throw new StorageError('BAD_APPEND', 'block 0 (genesis) has no commit certificate; pass null');
    }
  } else {
    checkCertificateMatches(certificate, header.height, hash);
  }
  const txs = block.txs.map((tx, index) => txRow(tx, header.height, index));
  const state = changes.map((change) => stateRow(change, header.height));
  const keys = new Set(state.map((row) => row.key));
  if (keys.size !== state.length) {
    throw new StorageError('BAD_APPEND', `block ${header.height}'s state changes name a key twice`, {
      height: header.height,
    });
  }
  return {
    block: {
      height: header.height,
      hash,
      header: headerText,
      timestampMs: header.timestampMs,
      txCount: block.txs.length,
    },
    txs,
    certificate: certificate === null ? null : canonicalString(certificate),
    state,
  };
}

function checkCertificateMatches(
  certificate: CommitCertificate | null,
  height: number,
  hash: BlockHash,
): asserts certificate is CommitCertificate {
  if (certificate === null) {
    throw new StorageError(
      'BAD_APPEND',
      `block ${height} needs its commit certificate; only block 0 is stored without one`,
      { height },
    );
  }
  if (certificate.height !== height || certificate.blockHash !== hash) {
    throw new StorageError(
      'BAD_APPEND',
      `the certificate passed with block ${height} certifies block ${certificate.height} ` +
        `${certificate.blockHash}, not ${hash}`,
      { height, certificateHeight: certificate.height, certificateBlockHash: certificate.blockHash },
    );
  }
}

/**
 * The stored row of a transaction. Its id is the ledger's txId (SHA-256 of the canonical
 * transaction), computed here from the one canonical string the row stores, so a 100-transaction
 * block is canonicalized once, not twice; verifyChain recomputes every id with ledger txId().
 */
export function txRow(tx: Transaction, height: number, index: number): TxRow {
  const columns = txColumns(tx);
  const body = canonicalString(tx);
  return {
    txId: sha256Hex(body),
    height,
    index,
    type: tx.body.type,
    target: columns.target,
    deviceId: columns.deviceId,
    body,
  };
}

/** The query columns a transaction is indexed by. */
export function txColumns(tx: Transaction): { target: string | null; deviceId: string | null } {
  const body = tx.body;
  switch (body.type) {
    case 'release':
    case 'attest':
      return { target: body.target, deviceId: null };
    case 'device-enroll':
    case 'device-report':
      return { target: body.target, deviceId: body.deviceId };
    case 'device-revoke':
      return { target: null, deviceId: body.deviceId };
    case 'heartbeat':
      return { target: null, deviceId: null };
    case 'rollout':
      return { target: body.target, deviceId: null };
    case 'rollout-control':
      return { target: null, deviceId: null };
  }
}

export function stateRow(change: StateChange, height: number): StateRow {
  const expected = stateKeyOf(change.entry);
  if (change.key !== expected) {
    throw new StorageError(
      'BAD_APPEND',
      `state change key "${change.key}" does not name its entry (expected "${expected}")`,
      { height, key: change.key },
    );
  }
  return { key: change.key, entry: canonicalString(change.entry), height };
}

// Reads. A row that no longer parses is corrupt on disk: that is an operating error the operator
// must act on (run verify, restore from a peer), so it becomes a StorageError CORRUPT.

export function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new StorageError(
      'CORRUPT',
      `stored ${what} is not valid JSON (${(error as Error).message}); the database is damaged: ` +
        'move the database away and restart the node to fetch the chain from its peers',
      { what },
    );
  }
}

export function parseHeader(row: BlockRow): BlockHeader {
  return parseJson<BlockHeader>(row.header, `header of block ${row.height}`);
}

export function parseTx(row: TxRow): Transaction {
  return parseJson<Transaction>(row.body, `transaction ${row.index} of block ${row.height}`);
}

export function parseCertificate(text: string | null, height: number): CommitCertificate | null {
  return text === null ? null : parseJson<CommitCertificate>(text, `certificate of block ${height}`);
}

export function parseEntry(row: StateRow): StateEntry {
  return parseJson<StateEntry>(row.entry, `state entry ${row.key}`);
}

export function toBlock(row: BlockRow, txs: readonly TxRow[]): Block {
  if (txs.length !== row.txCount) {
    throw new StorageError(
      'CORRUPT',
      `block ${row.height} should hold ${row.txCount} transactions but ${txs.length} are stored; ` +
        'the database is damaged: move it away and restart the node to fetch the chain from its peers',
      { height: row.height },
    );
  }
  return { header: parseHeader(row), txs: txs.map(parseTx) };
}

export function tipOf(row: BlockRow): Tip {
  return { height: asHeight(row.height), hash: row.hash as BlockHash };
}

/** A page size: the caller's limit, capped by storeQueryRowsMax. */
export function pageLimit(limit: number | undefined): number {
  if (limit === undefined) return storeQueryRowsMax;
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new TypeError(`a page limit must be a non-negative integer, got ${limit}`);
  }
  return Math.min(limit, storeQueryRowsMax);
}
