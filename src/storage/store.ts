/**
 * The Store: everything a validator keeps on disk, behind one synchronous interface.
 *
 * Two implementations pass the same compliance suite (src/storage/compliance.ts): SqliteStore, one
 * better-sqlite3 database per node in WAL mode, and MemoryStore, which the simulator uses and keeps
 * across a simulated crash by holding on to the object. Both are synchronous because better-sqlite3
 * is: a caller never interleaves with a half-written block.
 *
 * A block is appended with its transactions, its commit certificate and the state changes it made,
 * all or nothing. verifyChain() re-derives everything that can be re-derived (block hashes, links,
 * transaction roots, state roots by replay, the state table) and names the first bad height.
 */
import type { BlockHash, DeviceId, Hash32Hex, Height, TargetName, TxId } from '../encoding/brand.ts';
import { ConfigChainError } from '../errors.ts';
import type {
  Block,
  BlockHeader,
  CommitCertificate,
  DeviceEntry,
  DeviceReportBody,
  Genesis,
  StateChange,
  StateEntry,
  StateKey,
  Transaction,
} from '../ledger/types.ts';

/** The newest stored block. */
export interface Tip {
  readonly height: Height;
  readonly hash: BlockHash;
}

/** What appendBlock() writes in one durable transaction. */
export interface AppendInput {
  readonly block: Block;
  /** The block's 2f+1 commit signatures; null only for height 0. */
  readonly certificate: CommitCertificate | null;
  /** Exactly the state entries this block wrote (applyBlock's `changes`). */
  readonly changes: readonly StateChange[];
}

export interface StoredBlock {
  readonly height: Height;
  readonly hash: BlockHash;
  readonly block: Block;
  readonly certificate: CommitCertificate | null;
}

export interface StoredTx {
  readonly txId: TxId;
  readonly tx: Transaction;
  readonly height: Height;
  /** Position of the transaction in its block (its RFC 9162 leaf index). */
  readonly index: number;
}

/** What an inclusion proof of one transaction needs: its block's header, every tx and the certificate. */
export interface TxProofData {
  readonly txId: TxId;
  readonly height: Height;
  readonly index: number;
  readonly header: BlockHeader;
  readonly txs: readonly Transaction[];
  readonly certificate: CommitCertificate | null;
}

/** One release or attest of a target, in chain order. */
export interface TargetHistoryItem {
  readonly type: 'release' | 'attest';
  readonly target: TargetName;
  readonly version: number;
  readonly sha256: Hash32Hex;
  readonly size: number;
  readonly height: Height;
  readonly index: number;
  readonly timestampMs: number;
  readonly txId: TxId;
  /** Admin ids for a release; empty for an attest, which carries no signature. */
  readonly signers: readonly string[];
}

/** One committed device-report transaction. */
export interface DeviceReportItem {
  readonly deviceId: DeviceId;
  readonly seq: number;
  readonly target: TargetName;
  readonly version: number;
  readonly sha256: Hash32Hex;
  readonly status: DeviceReportBody['status'];
  readonly detail: string;
  readonly height: Height;
  readonly index: number;
  readonly timestampMs: number;
  readonly txId: TxId;
}

export interface StoredStateEntry {
  readonly key: StateKey;
  readonly entry: StateEntry;
  /** Height of the block that last wrote this entry. */
  readonly height: Height;
}

/**
 * One record of the PBFT replica's crash-recovery log. The store treats `data` as opaque JSON;
 * `seq` is the consensus sequence number the record belongs to (several records may share one),
 * and pruning removes records below a sequence number (the stable checkpoint).
 */
export interface ConsensusRecord {
  readonly seq: number;
  readonly kind: string;
  readonly data: unknown;
}

/** A bounded page of rows: `limit` defaults to and is capped by constants.storeQueryRowsMax. */
export interface PageOptions {
  readonly limit?: number;
}

export interface HistoryOptions extends PageOptions {
  /** Only rows at this height or above (a cursor for the next page). */
  readonly fromHeight?: number;
}

export interface DeviceListOptions extends PageOptions {
  /** Only devices whose id sorts after this one (a cursor for the next page). */
  readonly afterDeviceId?: string;
}

export type VerifyResult =
  | { readonly ok: true; readonly height: Height }
  | { readonly ok: false; readonly height: Height; readonly reason: string };

export interface VerifyOptions {
  /**
   * Check every commit certificate's signatures against the genesis validators (default true).
   * Turning it off leaves the shape, height and block-hash checks of certificates on.
   */
  readonly verifyCertificateSignatures?: boolean;
  /**
   * Re-verify every transaction signature while re-applying blocks (default true). A node that
   * trusts its certificates may turn it off for a faster start: roots, links, signer rules and
   * certificates are still checked, only the per-transaction Ed25519 checks are skipped.
   */
  readonly verifyTxSignatures?: boolean;
}

export interface Store {
  /** The genesis this store belongs to; a store never holds blocks of another chain. */
  readonly genesis: Genesis;
  /** Canonical hash of the genesis document (block 0's prevHash). */
  readonly genesisHash: Hash32Hex;

  tip(): Tip;
  /**
   * Stores the block, its transactions, certificate and state changes in one durable transaction.
   * Refuses (StorageError APPEND_OUT_OF_ORDER) a block that is not tip+1 or does not link to the tip.
   */
  appendBlock(input: AppendInput): Tip;

  blockByHeight(height: number): StoredBlock | null;
  blockByHash(hash: string): StoredBlock | null;
  /** Blocks fromHeight, fromHeight+1, ... at most `limit` (capped by storeQueryRowsMax). */
  blocks(fromHeight: number, limit: number): StoredBlock[];
  certificate(height: number): CommitCertificate | null;

  /** The first (lowest) block that holds the transaction. */
  txById(txId: string): StoredTx | null;
  txProofData(txId: string): TxProofData | null;

  /** Every release and attest of the target, oldest first. */
  targetHistory(target: string, options?: HistoryOptions): TargetHistoryItem[];

  stateEntry(key: StateKey): StateEntry | null;
  /** The whole state table, sorted by key (to rebuild the in-memory LedgerState at start). */
  allStateEntries(): StoredStateEntry[];
  /** The device registry, sorted by device id. */
  devices(options?: DeviceListOptions): DeviceEntry[];
  /** Device reports, newest first; all devices when deviceId is null. */
  deviceReports(deviceId: string | null, options?: PageOptions): DeviceReportItem[];
  /** Reports about one target, newest first. */
  reportsForTarget(target: string, options?: PageOptions): DeviceReportItem[];

  /** Keeps a copy of released content. Refuses bytes whose SHA-256 is not `sha256`. Idempotent. */
  putContent(sha256: string, bytes: Uint8Array): void;
  getContent(sha256: string): Uint8Array | null;

  /** Appends records durably (synchronous=FULL) in one transaction: persist before send. */
  appendConsensusRecords(records: readonly ConsensusRecord[]): void;
  /** Every record, in the order appended. */
  loadConsensusRecords(): ConsensusRecord[];
  /** Deletes records whose seq is below `belowSeq`; returns how many went. */
  pruneConsensusRecords(belowSeq: number): number;

  /** Walks the chain from block 0 and names the first bad height. Never throws on bad data. */
  verifyChain(options?: VerifyOptions): VerifyResult;

  close(): void;
}

export type StorageErrorCode =
  | 'OPEN_FAILED'
  | 'WRONG_CHAIN'
  | 'NO_GENESIS'
  | 'SCHEMA_VERSION'
  | 'APPEND_OUT_OF_ORDER'
  | 'BAD_APPEND'
  | 'CONTENT_HASH_MISMATCH'
  | 'CONTENT_TOO_LARGE'
  | 'BAD_CONSENSUS_RECORD'
  | 'CORRUPT'
  | 'CLOSED';

/** An operating error of the storage layer; its message says what was wrong and what to do. */
export class StorageError extends ConfigChainError<StorageErrorCode, Record<string, unknown>> {
  constructor(code: StorageErrorCode, message: string, data: Record<string, unknown> = {}) {
    super(code, message, data);
    this.name = 'StorageError';
  }
}
