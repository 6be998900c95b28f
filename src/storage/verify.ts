/**
 * verifyChain over stored rows, shared by both stores. It trusts nothing it can re-derive: each
 * block hash is recomputed from the stored header, each link checked, each transaction root
 * recomputed from the stored transactions, each block re-applied to the evolving state (so the
 * ledger checks the header's state root and every transaction's signatures and rules), each
 * certificate checked against its block, and finally the stored state table is compared with the
 * replayed state. The first height where any of that fails is named.
 */

import { verifyCommitCertificate } from '../consensus/certificate.ts';
import { publicKeyFromHex } from '../crypto/ed25519.ts';
import { canonicalHash, sha256Hex } from '../crypto/hash.ts';
import type { BlockHash } from '../encoding/brand.ts';
import { asHeight } from '../encoding/brand.ts';
import { canonicalBytes, canonicalString } from '../encoding/canonical.ts';
import {
  applyBlock,
  blockHash,
  genesisBlock,
  LedgerError,
  LedgerState,
  txRootOfLeafData,
} from '../ledger/index.ts';
import type {
  Block,
  BlockHeader,
  CommitCertificate,
  Genesis,
  StateEntry,
  Transaction,
} from '../ledger/types.ts';
import { type BlockRow, parseJson, type StateRow, type TxRow, txColumns } from './rows.ts';
import type { VerifyOptions, VerifyResult } from './store.ts';

/** The raw rows a store exposes to verifyChain. Reads may throw on damaged data; verify catches. */
export interface RawChain {
  readonly genesis: Genesis;
  /** Height of the newest block row, or -1 when there is none. */
  tipHeight(): number;
  blockRow(height: number): BlockRow | null;
  /** The block's transaction rows ordered by index. */
  txRows(height: number): TxRow[];
  certificateRow(height: number): string | null;
  stateRows(): StateRow[];
}

class Bad extends Error {
  constructor(
    readonly height: number,
    reason: string,
  ) {
    super(reason);
  }
}

export function verifyRawChain(chain: RawChain, options: VerifyOptions = {}): VerifyResult {
  const checkSignatures = options.verifyCertificateSignatures ?? true;
  const applyOptions = options.verifyTxSignatures === false ? { signatureChecked: () => true } : {};
  const tipHeight = chain.tipHeight();
  try {
    if (tipHeight < 0) throw new Bad(0, 'the store holds no block 0 (genesis block)');
    const genesis = chain.genesis;
    const expectedGenesis = genesisBlock(genesis);
    let parent: BlockHeader | null = null;
    let parentHash = canonicalHash(genesis) as string as BlockHash;
    let state = LedgerState.empty();
    const validatorKeys = checkSignatures ? genesis.validators.map((v) => publicKeyFromHex(v.publicKey)) : [];
    /** Which height last wrote each state key during the replay. */
    const lastWrite = new Map<string, number>();

    for (let height = 0; height <= tipHeight; height++) {
      const { block, hash } = readBlock(chain, height, parentHash);
      if (height === 0) {
        if (hash !== blockHash(expectedGenesis.header)) {
          throw new Bad(0, 'block 0 is not the genesis block of the stored genesis document');
        }
        state = genesisState(block, state);
      } else {
        const certificate = readCertificate(chain, height, hash);
        if (checkSignatures) {
          const check = verifyCommitCertificate(certificate, {
            chainId: genesis.chainId,
            validators: validatorKeys,
          });
          if (!check.ok) throw new Bad(height, `the commit certificate of block ${height}: ${check.reason}`);
        }
        assertDefined(parent, height);
        try {
          const applied = applyBlock(genesis, parent, state, block, applyOptions);
          state = applied.state;
          for (const change of applied.changes) lastWrite.set(change.key, height);
        } catch (error) {
          // Only the ledger's verdict on the data names a bad height; anything else is a bug.
          if (!(error instanceof LedgerError)) throw error;
          throw new Bad(height, `block ${height} does not re-apply: ${error.message}`);
        }
      }
      parent = block.header;
      parentHash = hash;
    }
    compareState(chain, state, lastWrite, tipHeight);
    return { ok: true, height: asHeight(tipHeight) };
  } catch (error) {
    if (error instanceof Bad) return { ok: false, height: asHeight(error.height), reason: error.message };
    throw error;
  }
}

function assertDefined(parent: BlockHeader | null, height: number): asserts parent is BlockHeader {
  if (parent === null) throw new Bad(height, `block ${height} has no parent header`);
}

/** Reads one block and checks everything that needs no state: hash, link, tx ids, tx root. */
function readBlock(
  chain: RawChain,
  height: number,
  parentHash: BlockHash,
): { block: Block; hash: BlockHash } {
  let row: BlockRow | null;
  let txRows: TxRow[];
  try {
    row = chain.blockRow(height);
    txRows = chain.txRows(height);
  } catch (error) {
    throw new Bad(height, `block ${height} cannot be read: ${(error as Error).message}`);
  }
  if (row === null) throw new Bad(height, `block ${height} is missing below the tip`);
  const header = parseOrBad<BlockHeader>(row.header, height, `header of block ${height}`);
  if (header.height !== height) {
    throw new Bad(height, `the header stored at height ${height} says height ${header.height}`);
  }
  const hash = safe(height, () => blockHash(header), 'header');
  if (hash !== row.hash) {
    throw new Bad(height, `block ${height}'s header hashes to ${hash}, but ${row.hash} is stored`);
  }
  if (header.prevHash !== parentHash) {
    throw new Bad(
      height,
      `block ${height}'s prevHash ${header.prevHash} is not the parent's hash ${parentHash}`,
    );
  }
  if (header.timestampMs !== row.timestampMs) {
    throw new Bad(height, `block ${height}'s timestamp column disagrees with its header`);
  }
  if (header.txCount !== row.txCount) {
    throw new Bad(
      height,
      `block ${height}'s header says ${header.txCount} transactions, its row says ${row.txCount}`,
    );
  }
  if (txRows.length !== row.txCount) {
    throw new Bad(
      height,
      `block ${height} should hold ${row.txCount} transactions, ${txRows.length} are stored`,
    );
  }
  const read = txRows.map((txRow, index) => readTx(txRow, height, index));
  const root = safe(height, () => txRootOfLeafData(read.map((r) => r.bytes)), 'transactions');
  if (root !== header.txRoot) {
    throw new Bad(
      height,
      `block ${height}'s transactions hash to root ${root}, the header says ${header.txRoot}`,
    );
  }
  return { block: { header, txs: read.map((r) => r.tx) }, hash };
}

function readTx(row: TxRow, height: number, index: number): { tx: Transaction; bytes: Uint8Array } {
  if (row.index !== index) throw new Bad(height, `block ${height} is missing transaction ${index}`);
  const tx = parseOrBad<Transaction>(row.body, height, `transaction ${index} of block ${height}`);
  const bytes = safe(height, () => canonicalBytes(tx), `transaction ${index}`);
  const id = sha256Hex(bytes);
  if (id !== row.txId) {
    throw new Bad(
      height,
      `transaction ${index} of block ${height} hashes to ${id}, but ${row.txId} is stored`,
    );
  }
  const columns = safe(height, () => txColumns(tx), `transaction ${index}`);
  if (row.type !== tx.body.type || row.target !== columns.target || row.deviceId !== columns.deviceId) {
    throw new Bad(
      height,
      `transaction ${index} of block ${height}: its query columns disagree with its body`,
    );
  }
  return { tx, bytes };
}

function readCertificate(chain: RawChain, height: number, hash: BlockHash): CommitCertificate {
  let text: string | null;
  try {
    text = chain.certificateRow(height);
  } catch (error) {
    throw new Bad(height, `the certificate of block ${height} cannot be read: ${(error as Error).message}`);
  }
  if (text === null) throw new Bad(height, `block ${height} has no stored commit certificate`);
  const certificate = parseOrBad<CommitCertificate>(text, height, `certificate of block ${height}`);
  if (
    typeof certificate !== 'object' ||
    certificate === null ||
    certificate.height !== height ||
    certificate.blockHash !== hash ||
    !Number.isSafeInteger(certificate.view) ||
    !Array.isArray(certificate.signatures)
  ) {
    throw new Bad(height, `the certificate stored for block ${height} does not certify that block`);
  }
  // The view is not compared with the header's: a block proposed in one view may be committed in
  // a later one after a view change, so only the height and block hash bind a certificate.
  return certificate;
}

/** Genesis carries no transactions; its header must commit to the empty state. */
function genesisState(block: Block, state: LedgerState): LedgerState {
  if (block.txs.length !== 0) throw new Bad(0, 'the genesis block holds transactions');
  if (block.header.stateRoot !== state.root) {
    throw new Bad(0, `the genesis block's state root ${block.header.stateRoot} is not the empty state's`);
  }
  return state;
}

/**
 * The stored state table must equal the replayed state. A damaged entry is reported at the
 * height that last wrote it in the replay (not at its stored height column, which may be damaged too).
 */
function compareState(
  chain: RawChain,
  state: LedgerState,
  lastWrite: ReadonlyMap<string, number>,
  tipHeight: number,
): void {
  let rows: StateRow[];
  try {
    rows = chain.stateRows();
  } catch (error) {
    throw new Bad(tipHeight, `the state table cannot be read: ${(error as Error).message}`);
  }
  const stored = new Map<string, StateRow>();
  for (const row of rows) stored.set(row.key, row);
  const problems: Bad[] = [];
  for (const [key, entry] of state.entries()) {
    const height = lastWrite.get(key) ?? 0;
    const row = stored.get(key);
    stored.delete(key);
    if (row === undefined) {
      problems.push(new Bad(height, `state entry ${key}, written at height ${height}, is missing`));
      continue;
    }
    if (row.height !== height) {
      problems.push(
        new Bad(height, `state entry ${key} says height ${row.height}, but height ${height} wrote it`),
      );
      continue;
    }
    if (!sameEntry(row.entry, entry)) {
      problems.push(new Bad(height, `state entry ${key} differs from what block ${height} wrote`));
    }
  }
  for (const row of stored.values()) {
    const height = Math.min(Math.max(0, row.height), tipHeight);
    problems.push(new Bad(height, `state entry ${row.key} is stored but no block wrote it`));
  }
  if (problems.length === 0) return;
  problems.sort((a, b) => a.height - b.height);
  throw problems[0];
}

function sameEntry(text: string, entry: StateEntry): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
    return canonicalString(parsed) === canonicalString(entry);
  } catch {
    return false;
  }
}

function parseOrBad<T>(text: string, height: number, what: string): T {
  try {
    return parseJson<T>(text, what);
  } catch (error) {
    throw new Bad(height, (error as Error).message);
  }
}

function safe<T>(height: number, compute: () => T, what: string): T {
  try {
    return compute();
  } catch (error) {
    throw new Bad(height, `block ${height}: the stored ${what} is malformed (${(error as Error).message})`);
  }
}
