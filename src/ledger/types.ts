/**
 * The ledger's data model: genesis, block headers, blocks, transactions and state entries.
 * Everything here is plain JSON (no bigint, no binary) so it canonicalizes, hashes and signs
 * with RFC 8785 without conversions. Binary values are lower-case hex; inline content is base64.
 */
import type {
  BlockHash,
  DeviceId,
  Hash32Hex,
  Height,
  PublicKeyHex,
  SignatureHex,
  TargetName,
  TxId,
  ValidatorId,
  View,
} from '../encoding/brand.ts';

export interface ValidatorInfo {
  readonly id: ValidatorId;
  readonly publicKey: PublicKeyHex;
  /** host:port of the mutual-TLS peer endpoint. */
  readonly peerAddress: string;
  /** Base URL of the validator's HTTP API, e.g. http://127.0.0.1:5001 */
  readonly apiUrl: string;
}

export interface AdminInfo {
  readonly id: string;
  readonly publicKey: PublicKeyHex;
}

export interface ConfigSource {
  /** "A" is device-facing, "B" validator-facing; a deployment may add more. */
  readonly id: string;
  readonly url: string;
  readonly role: 'device-facing' | 'validator-facing';
}

export interface Policy {
  /** A heartbeat block is proposed when the chain has been idle this long. */
  readonly heartbeatIntervalMs: number;
  /** Devices refuse certified headers older than this. */
  readonly headerAgeMsMax: number;
  /** Release transactions may carry content inline up to this size. */
  readonly inlineContentBytesMax: number;
  /** Validators keep copies of released content up to this size. */
  readonly contentCopyBytesMax: number;
  readonly artifactBytesMax: number;
  /** Demo networks may answer the article's unauthenticated /validateHash calls. */
  readonly allowUnauthenticatedCompat: boolean;
  /** How far a proposed block's timestamp may be ahead of a validator's clock. */
  readonly clockSkewMsMax: number;
}

export interface Genesis {
  readonly chainId: string;
  readonly genesisTimeMs: number;
  readonly validators: readonly ValidatorInfo[];
  readonly admins: readonly AdminInfo[];
  /** m of the m-of-n admin signatures a release needs. */
  readonly releaseThreshold: number;
  readonly configSources: readonly ConfigSource[];
  readonly policy: Policy;
}

export interface BlockHeader {
  readonly chainId: string;
  readonly height: Height;
  /** Hash of the previous header; for height 0, the canonical hash of the genesis document. */
  readonly prevHash: BlockHash;
  readonly timestampMs: number;
  /**
   * How many transactions the block holds. An RFC 9162 inclusion proof is only meaningful with
   * the tree size, so a proof checked against this header pins both the position and the count.
   */
  readonly txCount: number;
  /** RFC 9162 root over the block's transactions (leaf data = canonical transaction bytes). */
  readonly txRoot: Hash32Hex;
  /** Root of the state after applying this block. */
  readonly stateRoot: Hash32Hex;
  readonly validatorSetHash: Hash32Hex;
  readonly view: View;
  readonly proposer: ValidatorId;
}

export interface Block {
  readonly header: BlockHeader;
  readonly txs: readonly Transaction[];
}

export interface Approval {
  /** Admin id from genesis. */
  readonly signer: string;
  readonly signature: SignatureHex;
}

export interface ReleaseBody {
  readonly type: 'release';
  readonly chainId: string;
  readonly target: TargetName;
  readonly version: number;
  readonly sha256: Hash32Hex;
  readonly size: number;
  readonly mediaType: string;
  /** Optional inline content, base64, up to policy.inlineContentBytesMax bytes decoded. */
  readonly content?: string;
}

export interface AttestBody {
  readonly type: 'attest';
  readonly chainId: string;
  readonly target: TargetName;
  readonly version: number;
  readonly sha256: Hash32Hex;
  readonly size: number;
  /**
   * Legacy only: attests recorded before they became unsigned named the validator that made them
   * and carried its signature. Such an attest is still accepted, with that one valid signature, so
   * chains recorded then still verify; validators no longer make them.
   */
  readonly submitter?: ValidatorId;
}

export interface DeviceEnrollBody {
  readonly type: 'device-enroll';
  readonly chainId: string;
  readonly deviceId: DeviceId;
  readonly publicKey: PublicKeyHex;
  /** Rollout group, e.g. "cameras"; devices of a group follow target "group:<name>" when set. */
  readonly group: string;
  readonly target: TargetName;
}

export interface DeviceRevokeBody {
  readonly type: 'device-revoke';
  readonly chainId: string;
  readonly deviceId: DeviceId;
  readonly reason: string;
}

export interface DeviceReportBody {
  readonly type: 'device-report';
  readonly chainId: string;
  readonly deviceId: DeviceId;
  /** Strictly increasing per device; a report with a used sequence number is a replay. */
  readonly seq: number;
  readonly target: TargetName;
  readonly version: number;
  readonly sha256: Hash32Hex;
  readonly status: 'applied' | 'failed' | 'mismatch';
  readonly detail: string;
}

/**
 * A validator's "still here": it changes nothing but the submitter's heartbeat entry, and exists so
 * that an idle chain still commits blocks and a device can demand a recently certified header
 * (policy.heartbeatIntervalMs). Signed like an attest: signer = the submitter's id in decimal.
 */
export interface HeartbeatBody {
  readonly type: 'heartbeat';
  readonly chainId: string;
  readonly submitter: ValidatorId;
  /** The submitter's clock; strictly above its previous heartbeat's, so a replay never applies. */
  readonly timestampMs: number;
}

/**
 * A staged rollout of the current release of a group target ("group:<G>") to the devices that
 * follow it. Each device falls into a wave by waveOf() (src/ledger/rollout.ts); wave i holds the
 * devices whose bucket in [0, 100) is below waves[i] and not below waves[i-1]. Approved like a
 * release: by genesis.releaseThreshold distinct admins, in Domain.releaseApproval.
 */
export interface RolloutBody {
  readonly type: 'rollout';
  readonly chainId: string;
  readonly rolloutId: string;
  readonly target: TargetName;
  /** Must be the target's current version when the rollout is recorded. */
  readonly version: number;
  /** Cumulative percentages, strictly ascending integers, the last one 100; e.g. [10, 50, 100]. */
  readonly waves: readonly number[];
  /** A wave halts the rollout when its failures exceed this percentage of its devices. */
  readonly maxFailuresPercent: number;
}

/** An operator's decision on a rollout; signed by one admin. */
export interface RolloutControlBody {
  readonly type: 'rollout-control';
  readonly chainId: string;
  readonly rolloutId: string;
  readonly action: 'abort' | 'resume' | 'rollback';
  /**
   * The rollout's controlSeq plus one: each control applies once, so a replayed "abort" cannot
   * undo a later "resume".
   */
  readonly seq: number;
}

export type TxBody =
  | ReleaseBody
  | AttestBody
  | DeviceEnrollBody
  | DeviceRevokeBody
  | DeviceReportBody
  | HeartbeatBody
  | RolloutBody
  | RolloutControlBody;
export type TxType = TxBody['type'];

/**
 * A transaction: a body and the signatures its signer rule asks for.
 * release and rollout: m-of-n distinct admins; device-enroll/revoke and rollout-control: one admin;
 * heartbeat: the submitting validator (signer = its id as a decimal string); device-report: the
 * device (signer = device id); attest: none (every validator checks it against its own config
 * source before voting, and the block's commit certificate records that a quorum did).
 */
export interface Transaction {
  readonly body: TxBody;
  readonly signatures: readonly Approval[];
}

/** The current configuration of a target, as committed by the state root. */
export interface TargetEntry {
  readonly kind: 'target';
  readonly target: TargetName;
  readonly source: 'release' | 'attest';
  readonly version: number;
  readonly sha256: Hash32Hex;
  readonly size: number;
  readonly mediaType: string;
  readonly height: Height;
  readonly txId: TxId;
}

export interface DeviceEntry {
  readonly kind: 'device';
  readonly deviceId: DeviceId;
  readonly publicKey: PublicKeyHex;
  readonly group: string;
  readonly target: TargetName;
  readonly status: 'enrolled' | 'revoked';
  readonly enrolledAt: Height;
  /** Highest report sequence number accepted; 0 before the first report. */
  readonly lastSeq: number;
  readonly lastReport: {
    readonly version: number;
    readonly sha256: Hash32Hex;
    readonly status: DeviceReportBody['status'];
    readonly height: Height;
  } | null;
  /**
   * How this device is counted in its target's rollout, once it reported on the rollout's version;
   * absent before. A second report moves the device between counts instead of adding to them.
   */
  readonly rollout?: {
    readonly rolloutId: string;
    readonly outcome: RolloutOutcome;
  };
}

export type RolloutOutcome = 'success' | 'failure';

export type RolloutStatus = 'running' | 'halted' | 'aborted' | 'done';

/** Devices and their counted reports in one wave of a rollout. */
export interface WaveProgress {
  /** Enrolled devices of the target that fall into this wave. */
  readonly devices: number;
  readonly successes: number;
  readonly failures: number;
}

/** The state of a rollout, under "rollout/<id>". */
export interface RolloutEntry {
  readonly kind: 'rollout';
  readonly rolloutId: string;
  readonly target: TargetName;
  readonly version: number;
  /** The release being rolled out, copied from the target entry when the rollout was recorded. */
  readonly sha256: Hash32Hex;
  readonly waves: readonly number[];
  readonly maxFailuresPercent: number;
  readonly status: RolloutStatus;
  /** Set by a rollback control: devices go back to the version they ran before. */
  readonly rollback: boolean;
  /** Why the status is what it is, in words ("" while running normally). */
  readonly reason: string;
  /** Index of the newest open wave: devices of waves 0..currentWave may update. */
  readonly currentWave: number;
  /** One per wave, in wave order. */
  readonly progress: readonly WaveProgress[];
  /** How many rollout-control transactions applied. */
  readonly controlSeq: number;
  readonly createdAt: Height;
  readonly txId: TxId;
}

/**
 * The rollout that device reports of a target count towards, under "target-rollout/<target>".
 * A report names its target, not a rollout, so this entry is how a report finds its rollout.
 */
export interface TargetRolloutEntry {
  readonly kind: 'target-rollout';
  readonly target: TargetName;
  readonly rolloutId: string;
}

/**
 * The last heartbeat of one validator. It exists so a replayed heartbeat (same id) is refused by a
 * state rule like every other kind, and one validator per entry so that a validator with a clock
 * far ahead can only stall its own heartbeats, never another's.
 */
export interface HeartbeatEntry {
  readonly kind: 'heartbeat';
  readonly submitter: ValidatorId;
  readonly timestampMs: number;
  readonly height: Height;
  readonly txId: TxId;
}

export type StateEntry = TargetEntry | DeviceEntry | HeartbeatEntry | RolloutEntry | TargetRolloutEntry;

/**
 * State keys are namespaced strings: "target/<name>", "device/<id>", "heartbeat/<validator>",
 * "rollout/<id>" and "target-rollout/<target>".
 */
export type StateKey = string & { readonly __brand: 'StateKey' };

export function targetKey(target: string): StateKey {
  return `target/${target}` as StateKey;
}

export function deviceKey(deviceId: string): StateKey {
  return `device/${deviceId}` as StateKey;
}

export function heartbeatKey(submitter: ValidatorId): StateKey {
  return `heartbeat/${submitter}` as StateKey;
}

export function rolloutKey(rolloutId: string): StateKey {
  return `rollout/${rolloutId}` as StateKey;
}

export function targetRolloutKey(target: string): StateKey {
  return `target-rollout/${target}` as StateKey;
}

/** What a block changed: the storage layer persists exactly this. */
export interface StateChange {
  readonly key: StateKey;
  readonly entry: StateEntry;
}

/** 2f+1 PBFT commit signatures over (chainId, view, height, block hash); see src/consensus. */
export interface CommitCertificate {
  readonly height: Height;
  readonly view: View;
  readonly blockHash: BlockHash;
  readonly signatures: readonly { readonly validator: ValidatorId; readonly signature: SignatureHex }[];
}
