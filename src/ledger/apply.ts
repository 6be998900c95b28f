/**
 * The deterministic state transition: applyBlock() for a block received from a primary or a
 * peer, buildBlock() for the primary assembling one. Both run transactions in order on the
 * evolving state, so a later transaction sees the effects of earlier ones in the same block.
 */
import { blockBytesMax, blockTxsMax } from '../constants.ts';
import type { BlockHash, Hash32Hex, Height, TxId, ValidatorId, View } from '../encoding/brand.ts';
import { assert } from '../errors.ts';
import { blockHash, txRootOfLeafData } from './block.ts';
import { LedgerError, type LedgerRule } from './errors.ts';
import { validatorSetHash } from './genesis.ts';
import { HEX32_PATTERN, HEX32_TEXT, SchemaChecker } from './schema.ts';
import type { LedgerState } from './state.ts';
import {
  evaluateTransaction,
  type ParsedTransaction,
  parseTransactionWithId,
  type TxCheckOptions,
} from './tx.ts';
import type { Block, BlockHeader, Genesis, StateChange, StateEntry, StateKey, Transaction } from './types.ts';

export type ApplyOptions = TxCheckOptions;

export interface ApplyResult {
  /** The state after the block; the input state is unchanged and still usable. */
  readonly state: LedgerState;
  /** Each key the block changed, once, with its final entry, in order of first change. */
  readonly changes: readonly StateChange[];
}

export interface BuildParams {
  readonly view: View;
  readonly proposer: ValidatorId;
  /** The primary's clock; the header gets max(this, parent.timestampMs) so time never goes back. */
  readonly timestampMs: number;
}

export interface BuildResult extends ApplyResult {
  readonly block: Block;
  /** Candidates that can never be valid on this state, with why; the caller drops them. */
  readonly rejected: readonly {
    readonly tx: unknown;
    /** Null when the candidate is not even a well-formed transaction. */
    readonly txId: TxId | null;
    readonly reason: string;
    readonly error: LedgerError;
  }[];
  /** Valid-looking candidates that did not fit this block's limits; the caller keeps them pending. */
  readonly deferred: readonly Transaction[];
}

const headerSchema: SchemaChecker = new SchemaChecker(
  'BLOCK_INVALID',
  'header',
  'the block is malformed; vote against it',
);

/** Checks the shape of an untrusted block header. Throws LedgerError BLOCK_INVALID naming the field. */
export function parseBlockHeader(json: unknown): BlockHeader {
  const h = headerSchema.object(json, 'header', [
    'chainId',
    'height',
    'prevHash',
    'timestampMs',
    'txCount',
    'txRoot',
    'stateRoot',
    'validatorSetHash',
    'view',
    'proposer',
  ]);
  const hash = (field: string) =>
    headerSchema.string(h[field], `header.${field}`, 64, 64, HEX32_PATTERN, HEX32_TEXT) as Hash32Hex;
  return {
    chainId: headerSchema.string(h.chainId, 'header.chainId', 1, 256),
    height: headerSchema.integer(h.height, 'header.height', 0, Number.MAX_SAFE_INTEGER) as Height,
    prevHash: hash('prevHash') as string as BlockHash,
    timestampMs: headerSchema.integer(h.timestampMs, 'header.timestampMs', 0, Number.MAX_SAFE_INTEGER),
    txCount: headerSchema.integer(h.txCount, 'header.txCount', 0, blockTxsMax),
    txRoot: hash('txRoot'),
    stateRoot: hash('stateRoot'),
    validatorSetHash: hash('validatorSetHash'),
    view: headerSchema.integer(h.view, 'header.view', 0, Number.MAX_SAFE_INTEGER) as View,
    proposer: headerSchema.integer(h.proposer, 'header.proposer', 0, Number.MAX_SAFE_INTEGER) as ValidatorId,
  };
}

/**
 * Validates `block` as the child of `parent` on top of `state` and returns the new state and the
 * changes. Throws LedgerError BLOCK_INVALID (header, limits, roots) or TX_INVALID (data.txIndex
 * names the transaction) when the block must not be committed. Deterministic: the same inputs give
 * the same result on every replica.
 */
export function applyBlock(
  genesis: Genesis,
  parent: BlockHeader,
  state: LedgerState,
  block: Block,
  opts: ApplyOptions = {},
): ApplyResult {
  assert(parent.chainId === genesis.chainId, 'the parent header belongs to this chain');
  if (typeof block !== 'object' || block === null || !Array.isArray(block.txs)) {
    blockError('header', 'a block is an object {header, txs[]}', parent.height + 1);
  }
  const height = (parent.height + 1) as Height;
  let header: BlockHeader;
  try {
    header = parseBlockHeader(block.header);
  } catch (error) {
    if (!(error instanceof LedgerError)) throw error;
    throw new LedgerError('BLOCK_INVALID', {
      ...error.data,
      reason: `block ${height}: ${error.data.reason}`,
      height,
    });
  }
  checkHeaderLinks(genesis, parent, header, height);
  if (block.txs.length > blockTxsMax) {
    blockError(
      'block-limits',
      `the block has ${block.txs.length} transactions, the limit is ${blockTxsMax}`,
      height,
    );
  }
  if (header.txCount !== block.txs.length) {
    blockError(
      'header',
      `header.txCount is ${header.txCount} but the block carries ${block.txs.length} transactions`,
      height,
    );
  }
  const txs = block.txs.map((tx, txIndex) => {
    try {
      return (opts.parse ?? parseTransactionWithId)(tx);
    } catch (error) {
      throw txError(error, height, txIndex, null);
    }
  });
  const bytes = txs.reduce((sum, parsed) => sum + parsed.bytes.byteLength, 0);
  if (bytes > blockBytesMax) {
    blockError(
      'block-limits',
      `the block's transactions take ${bytes} bytes, the limit is ${blockBytesMax}`,
      height,
    );
  }
  const root = txRootOfLeafData(txs.map((parsed) => parsed.bytes));
  if (root !== header.txRoot) {
    blockError('tx-root', `header.txRoot is ${header.txRoot} but the transactions hash to ${root}`, height);
  }
  const seen = new Set<TxId>();
  const changes = new Map<StateKey, StateEntry>();
  let next = state;
  txs.forEach(({ tx, id }, txIndex) => {
    if (seen.has(id)) {
      throw new LedgerError('TX_INVALID', {
        reason: `transaction ${id} appears twice in the block`,
        rule: 'duplicate-tx',
        height,
        txIndex,
        txId: id,
      });
    }
    seen.add(id);
    let txChanges: readonly StateChange[];
    try {
      txChanges = evaluateTransaction(genesis, next, tx, id, height, opts);
    } catch (error) {
      throw txError(error, height, txIndex, id);
    }
    next = next.with(txChanges);
    for (const change of txChanges) changes.set(change.key, change.entry);
  });
  if (next.root !== header.stateRoot) {
    blockError(
      'state-root',
      `header.stateRoot is ${header.stateRoot} but applying the block gives ${next.root}`,
      height,
    );
  }
  return { state: next, changes: [...changes].map(([key, entry]) => ({ key, entry })) };
}

function checkHeaderLinks(genesis: Genesis, parent: BlockHeader, header: BlockHeader, height: Height): void {
  if (header.chainId !== genesis.chainId) {
    blockError(
      'header',
      `header.chainId is ${JSON.stringify(header.chainId)}, this chain is ${JSON.stringify(genesis.chainId)}`,
      height,
    );
  }
  if (header.height !== height) {
    blockError(
      'header',
      `header.height is ${header.height}, the child of height ${parent.height} must be ${height}`,
      height,
    );
  }
  const parentHash = blockHash(parent);
  if (header.prevHash !== parentHash) {
    blockError('header', `header.prevHash is ${header.prevHash}, the parent's hash is ${parentHash}`, height);
  }
  if (header.timestampMs < parent.timestampMs) {
    blockError(
      'header',
      `header.timestampMs ${header.timestampMs} is before the parent's ${parent.timestampMs}`,
      height,
    );
  }
  const setHash = validatorSetHash(genesis.validators);
  if (header.validatorSetHash !== setHash) {
    blockError(
      'validator-set',
      `header.validatorSetHash is ${header.validatorSetHash}, the validator set hashes to ${setHash}`,
      height,
    );
  }
  if (header.proposer >= genesis.validators.length) {
    blockError(
      'header',
      `header.proposer ${header.proposer} is not a validator (n = ${genesis.validators.length})`,
      height,
    );
  }
}

function blockError(rule: LedgerRule, reason: string, height: number): never {
  throw new LedgerError('BLOCK_INVALID', { reason: `block ${height}: ${reason}`, rule, height });
}

function txError(error: unknown, height: Height, txIndex: number, id: TxId | null): unknown {
  if (!(error instanceof LedgerError)) return error;
  return new LedgerError('TX_INVALID', {
    ...error.data,
    reason: `block ${height}, transaction ${txIndex}: ${error.data.reason}`,
    height,
    txIndex,
    ...(id === null ? {} : { txId: id }),
  });
}

/**
 * The primary's path: keeps the valid candidates in order (an invalid one is skipped and reported
 * in `rejected`), up to blockTxsMax transactions and blockBytesMax bytes, then computes the roots.
 * applyBlock() accepts the result on every replica with the same genesis, parent and state.
 */
export function buildBlock(
  genesis: Genesis,
  parent: BlockHeader,
  state: LedgerState,
  candidates: readonly unknown[],
  params: BuildParams,
  opts: ApplyOptions = {},
): BuildResult {
  assert(parent.chainId === genesis.chainId, 'the parent header belongs to this chain');
  assert(params.proposer < genesis.validators.length, 'the proposer is a validator');
  assert(
    Number.isSafeInteger(params.timestampMs) && params.timestampMs >= 0,
    'the timestamp is a non-negative integer',
  );
  const height = (parent.height + 1) as Height;
  const included: Transaction[] = [];
  const leaves: Uint8Array[] = [];
  const rejected: { tx: unknown; txId: TxId | null; reason: string; error: LedgerError }[] = [];
  const deferred: Transaction[] = [];
  const seen = new Set<TxId>();
  const changes = new Map<StateKey, StateEntry>();
  let next = state;
  let bytes = 0;
  for (const candidate of candidates) {
    let parsed: ParsedTransaction | undefined;
    let txChanges: readonly StateChange[];
    try {
      parsed = (opts.parse ?? parseTransactionWithId)(candidate);
      const { tx, id } = parsed;
      if (seen.has(id)) {
        throw new LedgerError('TX_INVALID', {
          reason: `transaction ${id} is already in this block`,
          rule: 'duplicate-tx',
          txId: id,
        });
      }
      const size = parsed.bytes.byteLength;
      if (included.length >= blockTxsMax || bytes + size > blockBytesMax) {
        deferred.push(tx);
        continue;
      }
      txChanges = evaluateTransaction(genesis, next, tx, id, height, opts);
      bytes += size;
    } catch (error) {
      if (!(error instanceof LedgerError)) throw error;
      rejected.push({ tx: candidate, txId: parsed?.id ?? null, reason: error.data.reason, error });
      continue;
    }
    seen.add(parsed.id);
    included.push(parsed.tx);
    leaves.push(parsed.bytes);
    next = next.with(txChanges);
    for (const change of txChanges) changes.set(change.key, change.entry);
  }
  const header: BlockHeader = {
    chainId: genesis.chainId,
    height,
    prevHash: blockHash(parent),
    timestampMs: Math.max(params.timestampMs, parent.timestampMs),
    txCount: included.length,
    txRoot: txRootOfLeafData(leaves),
    stateRoot: next.root,
    validatorSetHash: validatorSetHash(genesis.validators),
    view: params.view,
    proposer: params.proposer,
  };
  return {
    block: { header, txs: included },
    state: next,
    changes: [...changes].map(([key, entry]) => ({ key, entry })),
    rejected,
    deferred,
  };
}
