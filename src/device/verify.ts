/**
 * The device verifier: what a device embeds to decide, on its own, whether a configuration is
 * backed by a quorum of the validators pinned in its genesis file. The validator that answers is
 * not trusted at all: everything it sends is checked here against the genesis keys.
 *
 * A target proof (GET /v1/targets/:target/proof, see contract.ts) is accepted only when
 *   1. it has the expected shape (hostile JSON gives MALFORMED, never an exception);
 *   2. its header's chainId and validatorSetHash are those of the pinned genesis;
 *   3. it is for the device's own target;
 *   4. the certificate is for blockHash(header) at header.height and carries a quorum (2f+1) of
 *      valid commit signatures by distinct validators of genesis;
 *   5. the entry (or its absence) is proven by the sparse Merkle proof under header.stateRoot;
 *   6. the version is not older than the one the device applied last (no rollback);
 *   7. the header is at most headerAgeMsMax old (no freeze);
 *   8. when the proof carries the target's rollout (contract.ts), the target-rollout pointer (or
 *      its absence) and the rollout entry it names are proven under the same header.stateRoot,
 *      and both are for the device's target. The verdict hands the proven rollout to the agent,
 *      which decides whether the device's wave is open (src/device/agent.ts).
 * A version equal to the applied one is not an error: the answer says there is nothing new.
 *
 * Everything here is pure and synchronous, and imports only node:crypto (through src/crypto), the
 * project's encoding, the Merkle code, the certificate check and the ledger's pure block code, so
 * a device can embed it (verify.test.ts walks the import graph to keep it that way).
 */
import type { KeyObject } from 'node:crypto';
import { faultsTolerated, quorumSize, verifyCommitCertificate } from '../consensus/certificate.ts';
import { publicKeyFromHex } from '../crypto/ed25519.ts';
import { canonicalHash } from '../crypto/hash.ts';
import { type Hash32Hex, isHash32Hex, isSignatureHex } from '../encoding/brand.ts';
import { blockHash, verifyTxInclusion } from '../ledger/block.ts';
import { validatorSetHash } from '../ledger/genesis.ts';
import type {
  BlockHeader,
  CommitCertificate,
  Genesis,
  RolloutEntry,
  TargetEntry,
  Transaction,
} from '../ledger/types.ts';
import { rolloutKey, targetKey, targetRolloutKey } from '../ledger/types.ts';
import { verifyStateProof } from '../merkle/sparse.ts';
import type { TargetProof } from './contract.ts';

/** Why a proof was refused. Stable codes: the agent reports them and tests match on them. */
export type RefusalCode =
  | 'MALFORMED'
  | 'CHAIN_MISMATCH'
  | 'WRONG_TARGET'
  | 'HEADER_HASH'
  | 'CERT_QUORUM'
  | 'CERT_UNKNOWN_SIGNER'
  | 'CERT_SIGNATURE'
  | 'STATE_PROOF'
  | 'ROLLBACK'
  | 'STALE_HEADER'
  | 'ROLLOUT_PROOF'
  | 'TX_ID'
  | 'TX_INCLUSION';

export interface Refusal {
  readonly ok: false;
  readonly code: RefusalCode;
  readonly reason: string;
}

/**
 * An accepted target proof. `newer`: the entry's version is above the applied one, apply it.
 * `current`: the same version as the applied one, nothing to do. `absent`: the ledger has no
 * entry for the target (proven absent), nothing to do. `rollout`: the target's staged rollout as
 * proven in the same state (null when the target never had one, or the proof carried none).
 */
export type TargetVerdict =
  | {
      readonly ok: true;
      readonly outcome: 'newer' | 'current';
      readonly entry: TargetEntry;
      readonly header: BlockHeader;
      readonly rollout: RolloutEntry | null;
    }
  | {
      readonly ok: true;
      readonly outcome: 'absent';
      readonly entry: null;
      readonly header: BlockHeader;
      readonly rollout: RolloutEntry | null;
    };

export interface TargetProofContext {
  /** The genesis document pinned on the device. */
  readonly genesis: Genesis;
  /** The device's own target. */
  readonly target: string;
  /** The version the device applied last; 0 when it has applied none. */
  readonly lastAppliedVersion: number;
  /** The device's clock. */
  readonly nowMs: number;
  /** The oldest header the device accepts (genesis.policy.headerAgeMsMax unless configured). */
  readonly headerAgeMsMax: number;
}

export interface TxProofContext {
  readonly genesis: Genesis;
  /** When given, the proof must be for this transaction id. */
  readonly txId?: string;
}

export type TxVerdict =
  | { readonly ok: true; readonly tx: Transaction; readonly header: BlockHeader }
  | Refusal;

export type ArtifactVerdict = { readonly ok: true } | Refusal | ArtifactRefusal;

export interface ArtifactRefusal {
  readonly ok: false;
  readonly code: 'ARTIFACT_SIZE' | 'ARTIFACT_HASH';
  readonly reason: string;
}

/** What a device derives once from its genesis: the validator keys parsed, the set hash computed. */
interface Pinned {
  readonly chainId: string;
  readonly validatorSetHash: Hash32Hex;
  readonly keys: readonly KeyObject[];
  readonly quorum: number;
}

/**
 * Parsing a public key costs more than checking a signature, so the parsed keys are kept per
 * genesis object. A WeakMap holds one entry per pinned genesis the process keeps alive (a device
 * has one), so it stays bounded by what the caller holds.
 */
const pinnedByGenesis = new WeakMap<Genesis, Pinned>();

function pin(genesis: Genesis): Pinned {
  let pinned = pinnedByGenesis.get(genesis);
  if (pinned === undefined) {
    const n = genesis.validators.length;
    pinned = {
      chainId: genesis.chainId,
      validatorSetHash: validatorSetHash(genesis.validators),
      keys: genesis.validators.map((v) => publicKeyFromHex(v.publicKey)),
      quorum: quorumSize(n),
    };
    if (faultsTolerated(n) < 1) {
      throw new TypeError(`a pinned genesis needs at least 4 validators (3f+1 with f >= 1), it has ${n}`);
    }
    pinnedByGenesis.set(genesis, pinned);
  }
  return pinned;
}

function refuse(code: RefusalCode, reason: string): Refusal {
  return { ok: false, code, reason };
}

/**
 * Verifies a target proof against the pinned genesis (see the file comment for every check).
 * Never throws on the proof, whatever JSON it is; throws only on a bad context (a programmer error).
 */
export function verifyTargetProof(proof: unknown, ctx: TargetProofContext): TargetVerdict | Refusal {
  if (!Number.isSafeInteger(ctx.lastAppliedVersion) || ctx.lastAppliedVersion < 0) {
    throw new TypeError(`lastAppliedVersion must be a non-negative integer, got ${ctx.lastAppliedVersion}`);
  }
  if (!Number.isFinite(ctx.nowMs) || !Number.isFinite(ctx.headerAgeMsMax) || ctx.headerAgeMsMax < 0) {
    throw new TypeError('nowMs and headerAgeMsMax must be finite numbers, headerAgeMsMax non-negative');
  }
  const pinned = pin(ctx.genesis);
  try {
    return checkTargetProof(proof, ctx, pinned);
  } catch (error) {
    // Hostile input may still reach something that throws (a getter, a value canonical JSON
    // cannot encode): whatever it is, the proof is refused, never trusted.
    return refuse('MALFORMED', `the proof could not be checked: ${(error as Error).message}`);
  }
}

function checkTargetProof(proof: unknown, ctx: TargetProofContext, pinned: Pinned): TargetVerdict | Refusal {
  if (!isRecord(proof)) return refuse('MALFORMED', 'the proof is not a JSON object');
  const headerProblem = headerShapeProblem(proof.header);
  if (headerProblem !== null) return refuse('MALFORMED', headerProblem);
  const certProblem = certificateShapeProblem(proof.certificate);
  if (certProblem !== null) return refuse('MALFORMED', certProblem);
  if (proof.entry !== null) {
    const entryProblem = targetEntryShapeProblem(proof.entry);
    if (entryProblem !== null) return refuse('MALFORMED', entryProblem);
  }
  if (!isRecord(proof.stateProof)) return refuse('MALFORMED', 'stateProof is not an object');
  // The shapes were checked just above: read the proof as the contract's type from here on.
  const { header, certificate, entry } = proof as unknown as TargetProof;

  const chainProblem = chainMismatch(header, pinned);
  if (chainProblem !== null) return chainProblem;
  if (proof.target !== ctx.target) {
    return refuse(
      'WRONG_TARGET',
      `the proof is for target ${JSON.stringify(proof.target)}, this device follows ${JSON.stringify(ctx.target)}`,
    );
  }
  if (entry !== null && entry.target !== ctx.target) {
    return refuse(
      'WRONG_TARGET',
      `the proven entry is for target ${JSON.stringify(entry.target)}, this device follows ${JSON.stringify(ctx.target)}`,
    );
  }
  const certificateRefusal = checkCertificate(header, certificate, pinned);
  if (certificateRefusal !== null) return certificateRefusal;
  if (!verifyStateProof(header.stateRoot, targetKey(ctx.target), entry, proof.stateProof)) {
    return refuse(
      'STATE_PROOF',
      entry === null
        ? `the proof does not show target ${ctx.target} absent under the certified state root`
        : `the entry for ${ctx.target} version ${entry.version} is not proven under the certified state root`,
    );
  }
  if (entry !== null && entry.version < ctx.lastAppliedVersion) {
    return refuse(
      'ROLLBACK',
      `the proof offers version ${entry.version} of ${ctx.target}, older than the applied version ${ctx.lastAppliedVersion}`,
    );
  }
  const ageMs = ctx.nowMs - header.timestampMs;
  if (ageMs > ctx.headerAgeMsMax) {
    return refuse(
      'STALE_HEADER',
      `the certified header (height ${header.height}) is ${ageMs} ms old, more than the ${ctx.headerAgeMsMax} ms allowed; ask another validator`,
    );
  }
  const rollout = checkRolloutProof(proof.rollout, header, ctx.target);
  if (rollout !== null && 'ok' in rollout) return rollout;
  const proven = rollout === null ? null : rollout.entry;
  if (entry === null) return { ok: true, outcome: 'absent', entry: null, header, rollout: proven };
  const outcome = entry.version > ctx.lastAppliedVersion ? 'newer' : 'current';
  return { ok: true, outcome, entry, header, rollout: proven };
}

/**
 * The rollout part of a target proof: the pointer "target-rollout/<target>" (or its absence) and
 * the rollout it names, both proven under the header's stateRoot. An absent field means a node
 * without rollouts: no rollout (null). Returns the proven entry, or a refusal.
 */
function checkRolloutProof(
  part: unknown,
  header: BlockHeader,
  target: string,
): { readonly entry: RolloutEntry | null } | Refusal | null {
  if (part === undefined) return null;
  if (!isRecord(part)) return refuse('MALFORMED', 'rollout is not an object');
  const { pointer, pointerProof, entry, entryProof } = part;
  if (pointer !== null) {
    if (
      !isRecord(pointer) ||
      pointer.kind !== 'target-rollout' ||
      typeof pointer.target !== 'string' ||
      typeof pointer.rolloutId !== 'string'
    ) {
      return refuse('MALFORMED', 'rollout.pointer is neither null nor a target-rollout entry');
    }
    if (pointer.target !== target) {
      return refuse(
        'WRONG_TARGET',
        `the rollout pointer is for target ${JSON.stringify(pointer.target)}, this device follows ${JSON.stringify(target)}`,
      );
    }
  }
  if (!verifyStateProof(header.stateRoot, targetRolloutKey(target), pointer, pointerProof)) {
    return refuse(
      'ROLLOUT_PROOF',
      `the rollout pointer of ${target} (or its absence) is not proven under the certified state root`,
    );
  }
  if (pointer === null) {
    if (entry !== null) return refuse('MALFORMED', 'rollout.entry is given without a pointer naming it');
    return { entry: null };
  }
  const problem = rolloutEntryShapeProblem(entry);
  if (problem !== null) return refuse('MALFORMED', problem);
  const rollout = entry as RolloutEntry;
  if (rollout.rolloutId !== pointer.rolloutId || rollout.target !== target) {
    return refuse(
      'ROLLOUT_PROOF',
      `the rollout entry is ${JSON.stringify(rollout.rolloutId)} of ${JSON.stringify(rollout.target)}, the pointer names ${JSON.stringify(pointer.rolloutId)} of ${JSON.stringify(target)}`,
    );
  }
  if (!verifyStateProof(header.stateRoot, rolloutKey(rollout.rolloutId), rollout, entryProof)) {
    return refuse(
      'ROLLOUT_PROOF',
      `rollout ${rollout.rolloutId} of ${target} is not proven under the certified state root`,
    );
  }
  return { entry: rollout };
}

/**
 * Verifies a transaction's inclusion proof (GET /v1/tx/:id/proof): the header belongs to the pinned
 * chain and is certified by a quorum, and the transaction sits at `index` of the header's
 * transaction tree. Never throws on the proof.
 */
export function verifyTxProof(proof: unknown, ctx: TxProofContext): TxVerdict {
  const pinned = pin(ctx.genesis);
  try {
    return checkTxProof(proof, ctx, pinned);
  } catch (error) {
    return refuse('MALFORMED', `the proof could not be checked: ${(error as Error).message}`);
  }
}

function checkTxProof(proof: unknown, ctx: TxProofContext, pinned: Pinned): TxVerdict {
  if (!isRecord(proof)) return refuse('MALFORMED', 'the proof is not a JSON object');
  const headerProblem = headerShapeProblem(proof.header);
  if (headerProblem !== null) return refuse('MALFORMED', headerProblem);
  const header = proof.header as BlockHeader;
  const certProblem = certificateShapeProblem(proof.certificate);
  if (certProblem !== null) return refuse('MALFORMED', certProblem);
  const certificate = proof.certificate as CommitCertificate;
  const tx = proof.tx;
  if (!isRecord(tx) || !isRecord(tx.body) || !Array.isArray(tx.signatures)) {
    return refuse('MALFORMED', 'tx is not a transaction {body, signatures}');
  }
  if (!isHash32Hex(proof.txId)) return refuse('MALFORMED', 'txId is not 64 hex characters');
  const { index, txCount, inclusion } = proof;
  if (!isCount(txCount) || txCount < 1 || !isCount(index) || index >= txCount) {
    return refuse('MALFORMED', 'index and txCount must be integers with 0 <= index < txCount');
  }
  if (!Array.isArray(inclusion) || inclusion.length > 64 || !inclusion.every(isHash32Hex)) {
    return refuse('MALFORMED', 'inclusion must be a list of at most 64 hashes');
  }
  if (proof.height !== header.height) {
    return refuse('MALFORMED', `the proof says height ${String(proof.height)}, its header ${header.height}`);
  }

  const chainProblem = chainMismatch(header, pinned);
  if (chainProblem !== null) return chainProblem;
  const id = canonicalHash(tx);
  if (proof.txId !== id) return refuse('TX_ID', `the transaction hashes to ${id}, not to ${proof.txId}`);
  if (ctx.txId !== undefined && id !== ctx.txId) {
    return refuse('TX_ID', `the proof is for transaction ${id}, not for ${ctx.txId}`);
  }
  const certificateRefusal = checkCertificate(header, certificate, pinned);
  if (certificateRefusal !== null) return certificateRefusal;
  const headerTxCount = (header as { txCount?: unknown }).txCount;
  if (headerTxCount !== undefined && headerTxCount !== txCount) {
    return refuse(
      'TX_INCLUSION',
      `the proof says ${txCount} transactions, the header ${String(headerTxCount)}`,
    );
  }
  if (!verifyTxInclusion(tx as unknown as Transaction, index, txCount, inclusion, header.txRoot)) {
    return refuse(
      'TX_INCLUSION',
      `transaction ${id} is not proven at index ${index} of block ${header.height}'s transaction root`,
    );
  }
  return { ok: true, tx: tx as unknown as Transaction, header };
}

/**
 * Checks downloaded bytes against the entry a proof vouched for. The caller hashes while
 * downloading (and aborts past entry.size), then passes the digest and the byte count here.
 */
export function verifyArtifact(entry: TargetEntry, bytesSha256: string, size: number): ArtifactVerdict {
  if (size !== entry.size) {
    return {
      ok: false,
      code: 'ARTIFACT_SIZE',
      reason: `the artifact has ${size} bytes, the release says ${entry.size}`,
    };
  }
  if (bytesSha256 !== entry.sha256) {
    return {
      ok: false,
      code: 'ARTIFACT_HASH',
      reason: `the artifact hashes to ${bytesSha256}, the release says ${entry.sha256}`,
    };
  }
  return { ok: true };
}

// Shared checks ----------------------------------------------------------------------------------

function chainMismatch(header: BlockHeader, pinned: Pinned): Refusal | null {
  if (header.chainId !== pinned.chainId) {
    return refuse(
      'CHAIN_MISMATCH',
      `the header is from chain ${JSON.stringify(header.chainId)}, the device's genesis is ${JSON.stringify(pinned.chainId)}`,
    );
  }
  if (header.validatorSetHash !== pinned.validatorSetHash) {
    return refuse(
      'CHAIN_MISMATCH',
      "the header names another validator set than the device's genesis; the device cannot check its signers",
    );
  }
  return null;
}

/**
 * The certificate must certify this very header (HEADER_HASH), with a quorum of distinct
 * validators (CERT_QUORUM), all known to genesis (CERT_UNKNOWN_SIGNER), each signature valid
 * (CERT_SIGNATURE). The classification is done here; verifyCommitCertificate then does the
 * authoritative check, so the two can never disagree towards acceptance.
 */
function checkCertificate(header: BlockHeader, cert: CommitCertificate, pinned: Pinned): Refusal | null {
  const hash = blockHash(header);
  if (cert.height !== header.height) {
    return refuse(
      'HEADER_HASH',
      `the certificate is for height ${cert.height}, the header is ${header.height}`,
    );
  }
  if (cert.blockHash !== hash) {
    return refuse(
      'HEADER_HASH',
      `the header hashes to ${hash} but the certificate is for ${cert.blockHash}: the header was altered`,
    );
  }
  const n = pinned.keys.length;
  const distinct = new Set<number>();
  for (const s of cert.signatures) {
    if (!Number.isSafeInteger(s.validator) || s.validator < 0 || s.validator >= n) {
      return refuse(
        'CERT_UNKNOWN_SIGNER',
        `the certificate names validator ${String(s.validator)}, genesis has validators 0..${n - 1}`,
      );
    }
    distinct.add(s.validator);
  }
  if (distinct.size < pinned.quorum || distinct.size !== cert.signatures.length) {
    return refuse(
      'CERT_QUORUM',
      `the certificate has ${cert.signatures.length} signatures by ${distinct.size} distinct validators, a quorum is ${pinned.quorum} distinct`,
    );
  }
  const check = verifyCommitCertificate(cert, {
    chainId: pinned.chainId,
    validators: pinned.keys,
    expected: { height: header.height, blockHash: hash },
  });
  if (!check.ok) return refuse('CERT_SIGNATURE', `the commit certificate is invalid: ${check.reason}`);
  return null;
}

// Shapes: every field the checks read is tested before it is used -------------------------------

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function headerShapeProblem(header: unknown): string | null {
  if (!isRecord(header)) return 'header is not an object';
  if (typeof header.chainId !== 'string') return 'header.chainId is not a string';
  if (!isCount(header.height) || header.height < 1) return 'header.height is not a positive integer';
  for (const field of ['prevHash', 'txRoot', 'stateRoot', 'validatorSetHash'] as const) {
    if (!isHash32Hex(header[field])) return `header.${field} is not 64 hex characters`;
  }
  if (!isCount(header.timestampMs)) return 'header.timestampMs is not a non-negative integer';
  if (!isCount(header.view)) return 'header.view is not a non-negative integer';
  if (!isCount(header.proposer)) return 'header.proposer is not a non-negative integer';
  return null;
}

/** Asserts the shape only; the certificate check reads exactly these fields. */
function certificateShapeProblem(cert: unknown): string | null {
  if (!isRecord(cert)) return 'certificate is not an object';
  if (!isCount(cert.height)) return 'certificate.height is not a non-negative integer';
  if (!isCount(cert.view)) return 'certificate.view is not a non-negative integer';
  if (!isHash32Hex(cert.blockHash)) return 'certificate.blockHash is not 64 hex characters';
  const signatures = cert.signatures;
  // More signatures than any validator set may have is garbage, not a certificate.
  if (!Array.isArray(signatures) || signatures.length > 256) {
    return 'certificate.signatures is not a list of at most 256 signatures';
  }
  for (const s of signatures) {
    if (!isRecord(s) || !isCount(s.validator) || !isSignatureHex(s.signature)) {
      return 'each certificate signature must be {validator: integer, signature: 128 hex characters}';
    }
  }
  return null;
}

/** The fields the agent's wave decision reads; the state proof vouches for the rest. */
function rolloutEntryShapeProblem(entry: unknown): string | null {
  if (!isRecord(entry)) return 'rollout.entry is not an object';
  if (entry.kind !== 'rollout') return `rollout.entry.kind is ${JSON.stringify(entry.kind)}, not "rollout"`;
  if (typeof entry.rolloutId !== 'string' || typeof entry.target !== 'string') {
    return 'rollout.entry.rolloutId and target must be strings';
  }
  if (!isCount(entry.version) || !isHash32Hex(entry.sha256)) {
    return 'rollout.entry.version must be an integer and sha256 64 hex characters';
  }
  const waves = entry.waves;
  if (!Array.isArray(waves) || waves.length === 0 || waves.length > 100 || !waves.every(isCount)) {
    return 'rollout.entry.waves is not a list of at most 100 integers';
  }
  if (!['running', 'halted', 'aborted', 'done'].includes(entry.status as string)) {
    return `rollout.entry.status is ${JSON.stringify(entry.status)}`;
  }
  if (typeof entry.rollback !== 'boolean' || !isCount(entry.currentWave)) {
    return 'rollout.entry.rollback must be a boolean and currentWave an integer';
  }
  return null;
}

function targetEntryShapeProblem(entry: unknown): string | null {
  if (!isRecord(entry)) return 'entry is neither null nor an object';
  if (entry.kind !== 'target') return `entry.kind is ${JSON.stringify(entry.kind)}, not "target"`;
  if (typeof entry.target !== 'string') return 'entry.target is not a string';
  if (!isCount(entry.version)) return 'entry.version is not a non-negative integer';
  if (!isHash32Hex(entry.sha256)) return 'entry.sha256 is not 64 hex characters';
  if (!isCount(entry.size)) return 'entry.size is not a non-negative integer';
  return null;
}
