/**
 * The ledger's typed operating errors. The code says which check failed at the level the caller
 * acts on (a bad genesis file, a transaction to drop, a block to vote against); data.reason says
 * in words what was wrong, and data.rule names the rule for programs and metrics.
 */
import { ConfigChainError } from '../errors.ts';

export type LedgerErrorCode = 'GENESIS_INVALID' | 'TX_INVALID' | 'BLOCK_INVALID' | 'STATE_INVALID';

/** Stable names of the transaction and block rules, for metrics and tests. */
export type LedgerRule =
  | 'schema'
  | 'chain-id'
  | 'too-large'
  | 'bad-signature'
  | 'unknown-signer'
  | 'threshold-not-met'
  | 'version-not-newer'
  | 'content-mismatch'
  | 'device-already-enrolled'
  | 'device-not-enrolled'
  | 'device-revoked'
  | 'replayed-seq'
  | 'heartbeat-not-newer'
  | 'rollout-exists'
  | 'rollout-unknown'
  | 'rollout-state'
  | 'rollout-version'
  | 'duplicate-tx'
  | 'header'
  | 'tx-root'
  | 'state-root'
  | 'validator-set'
  | 'block-limits'
  | 'field';

export interface LedgerErrorData {
  readonly reason: string;
  readonly rule: LedgerRule;
  /** For GENESIS_INVALID and schema errors: the path of the offending field, e.g. "validators[2].publicKey". */
  readonly field?: string;
  readonly height?: number;
  readonly txIndex?: number;
  readonly txId?: string;
}

export class LedgerError extends ConfigChainError<LedgerErrorCode, LedgerErrorData> {
  constructor(code: LedgerErrorCode, data: LedgerErrorData) {
    super(code, data.reason, data);
    this.name = 'LedgerError';
  }
}
