/**
 * The pure ledger model: the one import point for storage, consensus glue, the node, the API,
 * the CLI and the device (`import { applyBlock, LedgerState } from '../ledger/index.ts'`).
 */

export { verifyStateProof } from '../merkle/sparse.ts';
export {
  type ApplyOptions,
  type ApplyResult,
  applyBlock,
  type BuildParams,
  type BuildResult,
  buildBlock,
  parseBlockHeader,
} from './apply.ts';
export {
  blockHash,
  genesisBlock,
  type TxPosition,
  txInclusionProof,
  txLeafHashes,
  txProofFor,
  txRoot,
  txRootOfLeafData,
  verifyTxInclusion,
  verifyTxProofAgainstHeader,
} from './block.ts';
export { LedgerError, type LedgerErrorCode, type LedgerErrorData, type LedgerRule } from './errors.ts';
export { faultTolerance, genesisHash, parseGenesis, quorum, validatorSetHash } from './genesis.ts';
export {
  changeMembership,
  controlRollout,
  countReport,
  rolloutActive,
  rolloutCounting,
  startRollout,
  waveBucket,
  waveFailed,
  waveOf,
  waveOpen,
  wavesValid,
  waveThreshold,
} from './rollout.ts';
export {
  EMPTY_STATE_ROOT,
  entryHash,
  LedgerState,
  type StateProof,
  stateKeyOf,
  stateRootFromScratch,
} from './state.ts';
export {
  type AdminKey,
  addApproval,
  attestTx,
  checkTransaction,
  type ParsedTransaction,
  parseTransaction,
  parseTransactionWithId,
  signAsAdmin,
  signAsDevice,
  signAsValidator,
  signHeartbeat,
  signRelease,
  type TxCheckOptions,
  type TxCheckResult,
  txDomain,
  txId,
  txLeafData,
  txReadKeys,
} from './tx.ts';
export * from './types.ts';
