/**
 * The behaviour both stores share, written once over a small set of row primitives: the append
 * preconditions and postcondition, turning rows back into ledger objects, page limits, content and
 * consensus-record checks, and verifyChain. SqliteStore and MemoryStore only say how rows are kept.
 * This is what makes the compliance suite meaningful: the two differ only where they must.
 */
import {
  consensusRecordBytesMax,
  consensusRecordKindLengthMax,
  consensusRecordsPerAppendMax,
} from '../constants.ts';
import { sha256Hex } from '../crypto/hash.ts';
import type { BlockHash, DeviceId, Hash32Hex, TargetName } from '../encoding/brand.ts';
import { asHeight } from '../encoding/brand.ts';
import { assert } from '../errors.ts';
import { genesisHash as ledgerGenesisHash } from '../ledger/genesis.ts';
import { genesisBlock } from '../ledger/index.ts';
import type {
  AttestBody,
  CommitCertificate,
  DeviceEntry,
  DeviceReportBody,
  Genesis,
  ReleaseBody,
  StateEntry,
  StateKey,
} from '../ledger/types.ts';
import {
  type BlockRow,
  type PreparedAppend,
  pageLimit,
  parseCertificate,
  parseEntry,
  parseJson,
  parseTx,
  prepareAppend,
  type StateRow,
  type TxRow,
  tipOf,
  toBlock,
} from './rows.ts';
import type {
  AppendInput,
  ConsensusRecord,
  DeviceListOptions,
  DeviceReportItem,
  HistoryOptions,
  PageOptions,
  Store,
  StoredBlock,
  StoredStateEntry,
  StoredTx,
  TargetHistoryItem,
  Tip,
  TxProofData,
  VerifyOptions,
  VerifyResult,
} from './store.ts';
import { StorageError } from './store.ts';
import { type RawChain, verifyRawChain } from './verify.ts';

/** A transaction row with its block's timestamp (history and report queries need both). */
export interface TimedTxRow extends TxRow {
  readonly timestampMs: number;
}

/** A consensus record as stored: data is JSON text (see strictJson). */
export interface ConsensusRow {
  readonly seq: number;
  readonly kind: string;
  readonly data: string;
}

export abstract class RowStore implements Store, RawChain {
  readonly genesis: Genesis;
  readonly genesisHash: Hash32Hex;
  #tip: Tip | null = null;
  #open = true;

  protected constructor(genesis: Genesis) {
    this.genesis = genesis;
    this.genesisHash = ledgerGenesisHash(genesis);
  }

  // Row primitives each store implements.
  protected abstract writeAppend(prepared: PreparedAppend): void;
  protected abstract readTipRow(): BlockRow | null;
  abstract blockRow(height: number): BlockRow | null;
  protected abstract blockRowByHash(hash: string): BlockRow | null;
  protected abstract blockRowsFrom(fromHeight: number, limit: number): BlockRow[];
  abstract txRows(height: number): TxRow[];
  protected abstract txRowById(txId: string): TxRow | null;
  abstract certificateRow(height: number): string | null;
  /** Release and attest rows of a target from a height on, oldest first. */
  protected abstract targetRows(target: string, fromHeight: number, limit: number): TimedTxRow[];
  /** Device-report rows, newest first; of one device, or of all when deviceId is null. */
  protected abstract reportRows(deviceId: string | null, limit: number): TimedTxRow[];
  protected abstract reportRowsForTarget(target: string, limit: number): TimedTxRow[];
  protected abstract stateRowByKey(key: string): StateRow | null;
  abstract stateRows(): StateRow[];
  /** Rows with keys "device/<id>" for ids after `afterDeviceId`, sorted by key. */
  protected abstract deviceRows(afterDeviceId: string, limit: number): StateRow[];
  protected abstract writeContent(sha256: string, bytes: Uint8Array): void;
  protected abstract readContent(sha256: string): Uint8Array | null;
  protected abstract writeConsensusRows(rows: readonly ConsensusRow[]): void;
  protected abstract readConsensusRows(): ConsensusRow[];
  protected abstract deleteConsensusRowsBelow(seq: number): number;
  /** Releases whatever keeps the rows (the database connection); called once by close(). */
  protected abstract closeRows(): void;

  get isOpen(): boolean {
    return this.#open;
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.closeRows();
  }

  /** For a store whose rows outlive close() (the memory store across a simulated crash). */
  protected markOpen(): void {
    this.#open = true;
  }

  /** A closed store refuses every use: a node that kept a handle past shutdown has a bug. */
  #guard(): void {
    if (!this.#open) {
      throw new StorageError(
        'CLOSED',
        'the store is closed; open it again before using it (a node restart does)',
      );
    }
  }

  /**
   * Called by a subclass once its rows are reachable: writes block 0 into an empty store, and
   * loads the tip of an existing one.
   */
  protected initChain(): void {
    const row = this.readTipRow();
    if (row === null) {
      this.appendBlock({ block: genesisBlock(this.genesis), certificate: null, changes: [] });
    } else {
      this.#tip = tipOf(row);
    }
    const genesis = this.blockRow(0);
    assert(genesis !== null, 'a store always holds block 0 after it opens');
  }

  tipHeight(): number {
    return this.#tip === null ? -1 : this.#tip.height;
  }

  tip(): Tip {
    this.#guard();
    assert(this.#tip !== null, 'a store always has a tip after it opens');
    return this.#tip;
  }

  appendBlock(input: AppendInput): Tip {
    this.#guard();
    const prepared = prepareAppend(this.genesis, this.#tip, input);
    this.writeAppend(prepared);
    // Postcondition, paired with the precondition: what reads back as the tip is what we wrote.
    const row = this.readTipRow();
    assert(
      row !== null && row.height === prepared.block.height && row.hash === prepared.block.hash,
      `after appending block ${prepared.block.height} the stored tip is ${row?.height} ${row?.hash}`,
    );
    this.#tip = tipOf(row);
    return this.#tip;
  }

  blockByHeight(height: number): StoredBlock | null {
    this.#guard();
    const row = this.blockRow(height);
    return row === null ? null : this.#stored(row);
  }

  blockByHash(hash: string): StoredBlock | null {
    this.#guard();
    const row = this.blockRowByHash(hash);
    return row === null ? null : this.#stored(row);
  }

  blocks(fromHeight: number, limit: number): StoredBlock[] {
    this.#guard();
    return this.blockRowsFrom(Math.max(0, fromHeight), pageLimit(limit)).map((row) => this.#stored(row));
  }

  certificate(height: number): CommitCertificate | null {
    this.#guard();
    return parseCertificate(this.certificateRow(height), height);
  }

  txById(txId: string): StoredTx | null {
    this.#guard();
    const row = this.txRowById(txId);
    if (row === null) return null;
    return {
      txId: row.txId as StoredTx['txId'],
      tx: parseTx(row),
      height: asHeight(row.height),
      index: row.index,
    };
  }

  txProofData(txId: string): TxProofData | null {
    this.#guard();
    const row = this.txRowById(txId);
    if (row === null) return null;
    const block = this.blockByHeight(row.height);
    assert(block !== null, `transaction ${txId} points at block ${row.height}, which is not stored`);
    return {
      txId: row.txId as TxProofData['txId'],
      height: block.height,
      index: row.index,
      header: block.block.header,
      txs: block.block.txs,
      certificate: block.certificate,
    };
  }

  targetHistory(target: string, options: HistoryOptions = {}): TargetHistoryItem[] {
    this.#guard();
    const rows = this.targetRows(target, Math.max(0, options.fromHeight ?? 0), pageLimit(options.limit));
    return rows.map((row) => {
      const tx = parseTx(row);
      const body = tx.body as ReleaseBody | AttestBody;
      assert(body.type === 'release' || body.type === 'attest', `history row of type ${body.type}`);
      return {
        type: body.type,
        target: body.target as TargetName,
        version: body.version,
        sha256: body.sha256,
        size: body.size,
        height: asHeight(row.height),
        index: row.index,
        timestampMs: row.timestampMs,
        txId: row.txId as TargetHistoryItem['txId'],
        signers: tx.signatures.map((s) => s.signer),
      };
    });
  }

  stateEntry(key: StateKey): StateEntry | null {
    this.#guard();
    const row = this.stateRowByKey(key);
    return row === null ? null : parseEntry(row);
  }

  allStateEntries(): StoredStateEntry[] {
    this.#guard();
    return this.stateRows().map((row) => ({
      key: row.key as StateKey,
      entry: parseEntry(row),
      height: asHeight(row.height),
    }));
  }

  devices(options: DeviceListOptions = {}): DeviceEntry[] {
    this.#guard();
    const rows = this.deviceRows(options.afterDeviceId ?? '', pageLimit(options.limit));
    return rows.map((row) => {
      const entry = parseEntry(row);
      assert(entry.kind === 'device', `state row ${row.key} holds a ${entry.kind} entry`);
      return entry;
    });
  }

  deviceReports(deviceId: string | null, options: PageOptions = {}): DeviceReportItem[] {
    this.#guard();
    return this.reportRows(deviceId, pageLimit(options.limit)).map(reportItem);
  }

  reportsForTarget(target: string, options: PageOptions = {}): DeviceReportItem[] {
    this.#guard();
    return this.reportRowsForTarget(target, pageLimit(options.limit)).map(reportItem);
  }

  putContent(sha256: string, bytes: Uint8Array): void {
    this.#guard();
    const limit = this.genesis.policy.contentCopyBytesMax;
    if (bytes.byteLength > limit) {
      throw new StorageError(
        'CONTENT_TOO_LARGE',
        `content ${sha256} is ${bytes.byteLength} bytes; validators keep copies up to ` +
          `policy.contentCopyBytesMax = ${limit} bytes`,
        { sha256, bytes: bytes.byteLength, limit },
      );
    }
    const actual = sha256Hex(bytes);
    if (actual !== sha256) {
      throw new StorageError(
        'CONTENT_HASH_MISMATCH',
        `content offered as ${sha256} hashes to ${actual}; refusing to store it under the wrong hash`,
        { sha256, actual },
      );
    }
    this.writeContent(sha256, bytes);
  }

  getContent(sha256: string): Uint8Array | null {
    this.#guard();
    const bytes = this.readContent(sha256);
    if (bytes === null) return null;
    // Paired with the check in putContent: bytes that no longer hash right are damaged, never served.
    if (sha256Hex(bytes) !== sha256) {
      throw new StorageError(
        'CORRUPT',
        `stored content ${sha256} no longer matches its hash; the database is damaged: ` +
          'fetch the content again from a config server',
        { sha256 },
      );
    }
    return bytes;
  }

  appendConsensusRecords(records: readonly ConsensusRecord[]): void {
    this.#guard();
    if (records.length > consensusRecordsPerAppendMax) {
      throw new StorageError(
        'BAD_CONSENSUS_RECORD',
        `${records.length} consensus records in one append; the limit is ${consensusRecordsPerAppendMax}`,
      );
    }
    const rows = records.map(consensusRow);
    if (rows.length > 0) this.writeConsensusRows(rows);
  }

  loadConsensusRecords(): ConsensusRecord[] {
    this.#guard();
    return this.readConsensusRows().map((row) => ({
      seq: row.seq,
      kind: row.kind,
      data: parseJson<unknown>(row.data, `consensus record (seq ${row.seq}, ${row.kind})`),
    }));
  }

  pruneConsensusRecords(belowSeq: number): number {
    this.#guard();
    assert(Number.isSafeInteger(belowSeq), `prune below a whole sequence number, got ${belowSeq}`);
    return this.deleteConsensusRowsBelow(belowSeq);
  }

  verifyChain(options: VerifyOptions = {}): VerifyResult {
    this.#guard();
    return verifyRawChain(this, options);
  }

  #stored(row: BlockRow): StoredBlock {
    return {
      height: asHeight(row.height),
      hash: row.hash as BlockHash,
      block: toBlock(row, this.txRows(row.height)),
      certificate: parseCertificate(this.certificateRow(row.height), row.height),
    };
  }
}

function reportItem(row: TimedTxRow): DeviceReportItem {
  const body = parseTx(row).body as DeviceReportBody;
  assert(body.type === 'device-report', `report row of type ${body.type}`);
  return {
    deviceId: body.deviceId as DeviceId,
    seq: body.seq,
    target: body.target,
    version: body.version,
    sha256: body.sha256,
    status: body.status,
    detail: body.detail,
    height: asHeight(row.height),
    index: row.index,
    timestampMs: row.timestampMs,
    txId: row.txId as DeviceReportItem['txId'],
  };
}

function consensusRow(record: ConsensusRecord): ConsensusRow {
  if (!Number.isSafeInteger(record.seq) || record.seq < 0) {
    throw new StorageError(
      'BAD_CONSENSUS_RECORD',
      `consensus record seq ${record.seq} is not a whole number`,
    );
  }
  if (
    typeof record.kind !== 'string' ||
    record.kind.length === 0 ||
    record.kind.length > consensusRecordKindLengthMax
  ) {
    throw new StorageError(
      'BAD_CONSENSUS_RECORD',
      `consensus record kind must be 1..${consensusRecordKindLengthMax} characters`,
    );
  }
  let data: string;
  try {
    data = strictJson(record.data);
  } catch (error) {
    throw new StorageError(
      'BAD_CONSENSUS_RECORD',
      `consensus record (seq ${record.seq}, ${record.kind}) is not plain JSON: ${(error as Error).message}`,
    );
  }
  if (Buffer.byteLength(data) > consensusRecordBytesMax) {
    throw new StorageError(
      'BAD_CONSENSUS_RECORD',
      `consensus record (seq ${record.seq}, ${record.kind}) is ${Buffer.byteLength(data)} bytes; ` +
        `the limit is ${consensusRecordBytesMax}`,
    );
  }
  return { seq: record.seq, kind: record.kind, data };
}

/**
 * JSON text of a consensus record that reads back exactly as written. Records are not hashed, so
 * they need not be canonical: plain JSON.stringify is about five times faster than RFC 8785 on a
 * 1,000-transaction pre-prepare, and this sits on the persist-before-send path. The replacer
 * refuses the values JSON.stringify would silently drop or change (undefined, NaN, Infinity,
 * functions, binary arrays).
 */
function strictJson(value: unknown): string {
  const text = JSON.stringify(value, (key, item: unknown) => {
    if (item === undefined || typeof item === 'function' || typeof item === 'symbol') {
      throw new TypeError(`${key || 'the record'}: a ${typeof item} has no JSON form`);
    }
    if (typeof item === 'number' && !Number.isFinite(item)) {
      throw new TypeError(`${key}: ${item} has no JSON form`);
    }
    if (ArrayBuffer.isView(item))
      throw new TypeError(`${key}: binary data must be hex or base64 encoded first`);
    return item;
  });
  return text;
}
