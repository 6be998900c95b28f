/**
 * MemoryStore: the same rows as SqliteStore, kept in maps. The simulator uses it and "persists"
 * across a simulated crash by keeping the object; tests use it where a file would only add time.
 *
 * It stores the same canonical JSON strings as the SQLite store (never the caller's objects), so
 * a caller that mutates an object after appending it cannot change what the store holds, and both
 * stores read back exactly the same values.
 */
import type { Genesis } from '../ledger/types.ts';
import { type ConsensusRow, RowStore, type TimedTxRow } from './base.ts';
import type { BlockRow, PreparedAppend, StateRow, TxRow } from './rows.ts';

interface TxRef {
  readonly height: number;
  readonly index: number;
}

export class MemoryStore extends RowStore {
  /** Block rows by height: heights are dense from 0, so an array is the index. */
  readonly #blocks: BlockRow[] = [];
  readonly #heightByHash = new Map<string, number>();
  readonly #txs: TxRow[][] = [];
  readonly #certificates = new Map<number, string>();
  /** First occurrence of each transaction id. */
  readonly #txById = new Map<string, TxRef>();
  /** Release and attest transactions per target, in chain order. */
  readonly #targetTxs = new Map<string, TxRef[]>();
  /** Device reports in chain order: all, per device and per target. */
  readonly #reports: TxRef[] = [];
  readonly #reportsByDevice = new Map<string, TxRef[]>();
  readonly #reportsByTarget = new Map<string, TxRef[]>();
  readonly #state = new Map<string, StateRow>();
  readonly #content = new Map<string, Uint8Array>();
  #consensus: ConsensusRow[] = [];

  private constructor(genesis: Genesis) {
    super(genesis);
  }

  /** A new store holding the genesis block of `genesis`. */
  static create(genesis: Genesis): MemoryStore {
    const store = new MemoryStore(genesis);
    store.initChain();
    return store;
  }

  /** Nothing to release: the rows stay in this object, which is how it survives a simulated crash. */
  protected closeRows(): void {}

  /** The object a simulated node gets back after a crash: the same rows, open again. */
  reopen(): MemoryStore {
    this.markOpen();
    return this;
  }

  /** Prepared rows are complete before this runs, and nothing here throws: the append is atomic. */
  protected writeAppend(prepared: PreparedAppend): void {
    const b = prepared.block;
    this.#blocks.push(b);
    this.#heightByHash.set(b.hash, b.height);
    this.#txs.push([...prepared.txs]);
    if (prepared.certificate !== null) this.#certificates.set(b.height, prepared.certificate);
    for (const tx of prepared.txs) {
      const ref = { height: tx.height, index: tx.index };
      if (!this.#txById.has(tx.txId)) this.#txById.set(tx.txId, ref);
      if ((tx.type === 'release' || tx.type === 'attest') && tx.target !== null) {
        push(this.#targetTxs, tx.target, ref);
      }
      if (tx.type === 'device-report') {
        this.#reports.push(ref);
        if (tx.deviceId !== null) push(this.#reportsByDevice, tx.deviceId, ref);
        if (tx.target !== null) push(this.#reportsByTarget, tx.target, ref);
      }
    }
    for (const row of prepared.state) this.#state.set(row.key, row);
  }

  protected readTipRow(): BlockRow | null {
    return this.#blocks.at(-1) ?? null;
  }

  blockRow(height: number): BlockRow | null {
    return this.#blocks[height] ?? null;
  }

  protected blockRowByHash(hash: string): BlockRow | null {
    const height = this.#heightByHash.get(hash);
    return height === undefined ? null : this.blockRow(height);
  }

  protected blockRowsFrom(fromHeight: number, limit: number): BlockRow[] {
    return this.#blocks.slice(fromHeight, fromHeight + limit);
  }

  txRows(height: number): TxRow[] {
    return [...(this.#txs[height] ?? [])];
  }

  protected txRowById(txId: string): TxRow | null {
    const ref = this.#txById.get(txId);
    return ref === undefined ? null : this.#txRow(ref);
  }

  certificateRow(height: number): string | null {
    return this.#certificates.get(height) ?? null;
  }

  protected targetRows(target: string, fromHeight: number, limit: number): TimedTxRow[] {
    const refs = this.#targetTxs.get(target) ?? [];
    const start = firstAtOrAbove(refs, fromHeight);
    return refs.slice(start, start + limit).map((ref) => this.#timed(ref));
  }

  protected reportRows(deviceId: string | null, limit: number): TimedTxRow[] {
    const refs = deviceId === null ? this.#reports : (this.#reportsByDevice.get(deviceId) ?? []);
    return newestFirst(refs, limit).map((ref) => this.#timed(ref));
  }

  protected reportRowsForTarget(target: string, limit: number): TimedTxRow[] {
    return newestFirst(this.#reportsByTarget.get(target) ?? [], limit).map((ref) => this.#timed(ref));
  }

  protected stateRowByKey(key: string): StateRow | null {
    return this.#state.get(key) ?? null;
  }

  stateRows(): StateRow[] {
    return sortByKey([...this.#state.values()]);
  }

  protected deviceRows(afterDeviceId: string, limit: number): StateRow[] {
    const after = Buffer.from(`device/${afterDeviceId}`, 'utf8');
    const devices = [...this.#state.values()].filter(
      (row) => row.key.startsWith('device/') && Buffer.compare(Buffer.from(row.key, 'utf8'), after) > 0,
    );
    return sortByKey(devices).slice(0, limit);
  }

  protected writeContent(sha256: string, bytes: Uint8Array): void {
    if (!this.#content.has(sha256)) this.#content.set(sha256, Uint8Array.from(bytes));
  }

  protected readContent(sha256: string): Uint8Array | null {
    const bytes = this.#content.get(sha256);
    return bytes === undefined ? null : Uint8Array.from(bytes);
  }

  protected writeConsensusRows(rows: readonly ConsensusRow[]): void {
    this.#consensus.push(...rows);
  }

  protected readConsensusRows(): ConsensusRow[] {
    return [...this.#consensus];
  }

  protected deleteConsensusRowsBelow(seq: number): number {
    const before = this.#consensus.length;
    this.#consensus = this.#consensus.filter((row) => row.seq >= seq);
    return before - this.#consensus.length;
  }

  /**
   * Test hook for tamper tests of verifyChain on the memory store: replaces one stored state row
   * as a damaged disk would. Not part of the Store interface.
   */
  tamperStateRow(row: StateRow): void {
    this.#state.set(row.key, row);
  }

  #txRow(ref: TxRef): TxRow {
    const row = this.#txs[ref.height]?.[ref.index];
    if (row === undefined) throw new Error(`memory store: no transaction ${ref.index} at ${ref.height}`);
    return row;
  }

  #timed(ref: TxRef): TimedTxRow {
    const block = this.#blocks[ref.height];
    if (block === undefined) throw new Error(`memory store: no block ${ref.height}`);
    return { ...this.#txRow(ref), timestampMs: block.timestampMs };
  }
}

function push(map: Map<string, TxRef[]>, key: string, ref: TxRef): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [ref]);
  else list.push(ref);
}

/** Index of the first ref at or above a height (refs are in chain order). */
function firstAtOrAbove(refs: readonly TxRef[], height: number): number {
  let low = 0;
  let high = refs.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((refs[mid]?.height ?? 0) < height) low = mid + 1;
    else high = mid;
  }
  return low;
}

function newestFirst(refs: readonly TxRef[], limit: number): TxRef[] {
  return refs.slice(Math.max(0, refs.length - limit)).reverse();
}

/**
 * Sorts rows as SQLite's BINARY collation does (by UTF-8 bytes, which is code-point order), so
 * both stores list state in the same order. Each key is encoded once, not once per comparison.
 */
function sortByKey(rows: StateRow[]): StateRow[] {
  return rows
    .map((row) => ({ row, bytes: Buffer.from(row.key, 'utf8') }))
    .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
    .map(({ row }) => row);
}
