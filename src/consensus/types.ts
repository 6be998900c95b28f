/**
 * The PBFT core's public types: configuration, the application it orders blocks for, the messages
 * replicas exchange, and the events and actions of the pure state machine (etcd raft's Ready).
 *
 * The core is generic over the block type B and the client request type R. The real node uses
 * ledger Blocks and Transactions; the simulator uses small plain objects. The core only touches
 * blocks and requests through the Application interface, so it knows nothing of configurations.
 *
 * This file is a contract others code against: add to it, never rename.
 */
import type { DomainTag } from '../crypto/domains.ts';
import type { BlockHash, Height, SignatureHex, ValidatorId, View } from '../encoding/brand.ts';
import type { CommitCertificate } from '../ledger/types.ts';

export type { CommitCertificate } from '../ledger/types.ts';

// ---------------------------------------------------------------------------------------------
// Configuration and injected dependencies

/**
 * Checks one signature by one validator. The core calls it synchronously for every signature it
 * relies on, nested ones included (prepared certificates in view-changes, view-changes in a
 * new-view, checkpoint proofs, commit certificates in state transfer). The node backs it with a
 * cache filled by asynchronous pre-verification on the thread pool; the simulator with real
 * Ed25519 checks. It must return false, never throw, for unknown validators or malformed input.
 */
export interface Verifier {
  verify(domain: DomainTag, payload: unknown, signature: SignatureHex, validator: ValidatorId): boolean;
}

/** Signs this replica's own messages (Ed25519 with the domain tag, see src/crypto/ed25519.ts). */
export interface Signer {
  sign(domain: DomainTag, payload: unknown): SignatureHex;
}

/**
 * Protocol limits. Defaults come from src/constants.ts; tests and the simulator may override
 * some (for example a small checkpoint interval) through ReplicaConfig.limits.
 */
export interface ReplicaLimits {
  /** A checkpoint is taken at every multiple of this sequence number (PBFT's K). */
  readonly checkpointInterval: number;
  /** Sequence numbers accepted above the stable checkpoint (PBFT's L). Multiple of the interval. */
  readonly watermarkWindow: number;
  /** The primary proposes once a batch is full or its oldest request waited this long. */
  readonly batchWaitMs: number;
  /** Requests per block. */
  readonly blockTxsMax: number;
  /** Sum of app.requestBytes over a block's requests. */
  readonly blockBytesMax: number;
  /** First view-change timeout; doubled on each successive view change without progress. */
  readonly viewChangeTimeoutMs: number;
  readonly viewChangeTimeoutMsMax: number;
  /** A request this replica has seen that stays uncommitted this long makes it suspect the primary. */
  readonly requestTimeoutMs: number;
  readonly pendingRequestsMax: number;
  /** Messages kept for later (sequence numbers ahead of what is known, missing parents, future views). */
  readonly futureMessagesMax: number;
  readonly stateTransferBlocksPerRequestMax: number;
  /** When > 0, an idle primary proposes an empty (heartbeat) block after this long. 0 disables. */
  readonly heartbeatIntervalMs: number;
  /** Unanswered own messages (votes, view-change, checkpoint) are re-sent this often. */
  readonly retransmitMs: number;
  /** Recently committed request keys kept in memory for duplicate answers. */
  readonly committedRequestsRememberedMax: number;
}

/**
 * TEST-ONLY deliberately broken behaviours. The simulator turns them on to prove that its checkers
 * detect real safety bugs. A production node must never set any of them (the node refuses to start
 * when faults is present).
 */
export interface ReplicaFaults {
  /** Commit locally on 2f matching commits instead of 2f+1. */
  readonly commitOnTwoF?: boolean;
  /** The new primary builds its O set without the prepared certificates (everything is free). */
  readonly newViewIgnoresPrepared?: boolean;
  /** Accept a pre-prepare without checking that its digest is the digest of the block it carries. */
  readonly skipPrePrepareDigestCheck?: boolean;
}

export interface ReplicaConfig {
  /** Goes into every signed payload so that no message replays across chains. */
  readonly chainId: string;
  /** This replica's validator id, 0..n-1. */
  readonly id: ValidatorId;
  /** Number of validators, n = 3f+1 >= 4 (n that is not 3f+1 is allowed; f = floor((n-1)/3)). */
  readonly n: number;
  /** Digest of block 0 (the hash of the genesis document), the parent of block 1. */
  readonly genesisHash: BlockHash;
  readonly signer: Signer;
  readonly verifier: Verifier;
  readonly limits?: Partial<ReplicaLimits>;
  /** TEST-ONLY, see ReplicaFaults. */
  readonly faults?: ReplicaFaults;
}

/** Identifies a client request for de-duplication. */
export interface RequestKey {
  readonly clientId: string;
  readonly requestId: string;
}

/** What Application.build receives: everything the primary decides about a new block. */
export interface BuildInput<R> {
  /** Digest of the block at height - 1: executed, committed, or speculative (pre-prepared). */
  readonly parent: BlockHash;
  readonly height: Height;
  readonly view: View;
  readonly proposer: ValidatorId;
  /** The primary's clock at proposal time (from the latest tick). */
  readonly nowMs: number;
  /** Every request here must appear in the block (requestKeys(block) lists them all). */
  readonly requests: readonly R[];
}

/**
 * The application the core orders blocks for. Injected, synchronous and deterministic: the same
 * input gives the same output on every honest replica.
 *
 * Speculative state: the app keeps the state after each block it built or was asked to validate
 * (keyed by digest), so that build can extend a block that is not yet committed.
 */
export interface Application<B, R> {
  /** The block hash; the certificate and every vote are over it. */
  digest(block: B): BlockHash;
  /** The previous block's hash (prevHash). */
  parent(block: B): BlockHash;
  height(block: B): Height;
  /** The primary's new block on top of input.parent. Must include every request given. */
  build(input: BuildInput<R>): B;
  /** Keys of the client requests a block contains, for duplicate answers and pending clean-up. */
  requestKeys(block: B): readonly RequestKey[];
  requestKey(request: R): RequestKey;
  /** Size of a request as counted against blockBytesMax. */
  requestBytes(request: R): number;
  /**
   * Stateless check of a client request on arrival (syntax, size, its own signatures): a reason
   * string rejects it at once with a reply; null accepts it into the pending queue. State-dependent
   * failures are not rejected here: the app records them inside the block instead.
   */
  checkRequest(request: R): string | null;
  /**
   * Cheap structural check that a block's body matches its header (e.g. the transaction root),
   * because the digest covers only the header. Used for blocks fetched by state transfer, whose
   * full validation is replaced by their commit certificate. Null when consistent, else a reason.
   */
  checkBody(block: B): string | null;
  /**
   * Optional: the height at which a request was committed, if it ever was (the node's transaction
   * index). The core remembers recent commits itself; this answers duplicates of older ones.
   */
  findCommitted?(key: RequestKey): Height | null;
  /**
   * Optional: structural check of a block that arrived from the network (inside a pre-prepare, a
   * view-change, a new-view or a state-transfer answer), so that the app's other functions never
   * see a malformed one. Without it the core only requires a non-null object, and the driver must
   * validate blocks when it decodes messages.
   */
  isBlock?(value: unknown): boolean;
}

// ---------------------------------------------------------------------------------------------
// Messages. Every message is signed by `replica` over its payload (see payloads in messages.ts)
// in its own domain; payloads carry chainId. The signature, not the link it arrived on, says who
// sent it, so a peer may relay others' messages (a stable checkpoint's proof, a new-view) to a
// replica that is behind; the link's peer id only decides whose buffer quota a message uses.

export interface PrePrepare<B> {
  readonly kind: 'pre-prepare';
  readonly view: View;
  readonly seq: Height;
  readonly digest: BlockHash;
  /** The proposed block; its digest must equal `digest` (not covered by the signature itself). */
  readonly block: B;
  /** Always primary(view). */
  readonly replica: ValidatorId;
  readonly signature: SignatureHex;
}

export interface Prepare {
  readonly kind: 'prepare';
  readonly view: View;
  readonly seq: Height;
  readonly digest: BlockHash;
  readonly replica: ValidatorId;
  readonly signature: SignatureHex;
}

/** Signed over commitPayload(chainId, view, seq, digest) so that 2f+1 of them form a CommitCertificate. */
export interface Commit {
  readonly kind: 'commit';
  readonly view: View;
  readonly seq: Height;
  readonly digest: BlockHash;
  readonly replica: ValidatorId;
  readonly signature: SignatureHex;
}

/** The digest of the block at `seq` (a multiple of checkpointInterval) after executing it. */
export interface Checkpoint {
  readonly kind: 'checkpoint';
  readonly seq: Height;
  readonly digest: BlockHash;
  readonly replica: ValidatorId;
  readonly signature: SignatureHex;
}

/** A pre-prepare plus 2f prepares from distinct replicas other than the primary, all matching. */
export interface PreparedCertificate<B> {
  readonly prePrepare: PrePrepare<B>;
  readonly prepares: readonly Prepare[];
}

/** A checkpoint with 2f+1 matching checkpoint messages; seq 0 (genesis) needs no proof. */
export interface StableCheckpoint {
  readonly seq: Height;
  readonly digest: BlockHash;
  readonly proof: readonly Checkpoint[];
}

export interface ViewChange<B> {
  readonly kind: 'view-change';
  /** The view the sender moves to. */
  readonly newView: View;
  readonly checkpoint: StableCheckpoint;
  /** PBFT's P set: for each seq above the checkpoint that the sender prepared, its highest-view certificate. */
  readonly prepared: readonly PreparedCertificate<B>[];
  readonly replica: ValidatorId;
  readonly signature: SignatureHex;
}

export interface NewView<B> {
  readonly kind: 'new-view';
  readonly view: View;
  /** PBFT's V set: 2f+1 valid view-changes for `view` from distinct replicas. */
  readonly viewChanges: readonly ViewChange<B>[];
  /**
   * PBFT's O set: pre-prepares in `view`, signed by the new primary, for consecutive seqs just above
   * the chosen checkpoint, re-proposing prepared blocks (rule R3). Every backup recomputes it from V.
   */
  readonly prePrepares: readonly PrePrepare<B>[];
  readonly replica: ValidatorId;
  readonly signature: SignatureHex;
}

export type ConsensusMessage<B> = PrePrepare<B> | Prepare | Commit | Checkpoint | ViewChange<B> | NewView<B>;
export type ConsensusMessageKind = ConsensusMessage<unknown>['kind'];

// ---------------------------------------------------------------------------------------------
// Events (inputs to Replica.step)

export interface MessageEvent<B> {
  readonly kind: 'message';
  /** The authenticated peer the message arrived from (mutual TLS in the node). */
  readonly from: ValidatorId;
  readonly message: ConsensusMessage<B>;
}

/** Time passes. nowMs never decreases; drivers tick every few milliseconds. */
export interface TickEvent {
  readonly kind: 'tick';
  readonly nowMs: number;
}

/**
 * A client request. Requests reach every replica (the node gossips submitted transactions to all
 * validators), so a backup sees the requests a primary might censor.
 */
export interface RequestEvent<R> {
  readonly kind: 'request';
  readonly request: R;
}

/** The app's answer to a validate action. */
export type ValidationResultEvent = {
  readonly kind: 'validation-result';
  readonly view: View;
  readonly seq: Height;
  readonly digest: BlockHash;
} & ({ readonly valid: true } | { readonly valid: false; readonly reason: string });

/** The app has durably applied a delivered block; height increases by exactly one each time. */
export interface BlockExecutedEvent {
  readonly kind: 'block-executed';
  readonly height: Height;
  readonly hash: BlockHash;
}

export interface CertifiedBlock<B> {
  readonly block: B;
  readonly certificate: CommitCertificate;
}

/** A peer's answer to a request-blocks action: consecutive committed blocks with certificates. */
export interface BlocksEvent<B> {
  readonly kind: 'blocks';
  readonly from: ValidatorId;
  readonly blocks: readonly CertifiedBlock<B>[];
}

export type Event<B, R> =
  | MessageEvent<B>
  | TickEvent
  | RequestEvent<R>
  | ValidationResultEvent
  | BlockExecutedEvent
  | BlocksEvent<B>;

// ---------------------------------------------------------------------------------------------
// Persistence

/**
 * What a replica must find again after a crash so that it never contradicts what it sent. The
 * driver appends records durably (fsync) before performing any later action of the same step.
 *
 * Compaction: a 'stable-checkpoint' record makes every record about a seq at or below its seq
 * obsolete, and a later 'view' record supersedes an earlier one; see compactRecords.
 */
export type PersistRecord<B> =
  /** The replica's view and whether it is in normal operation or changing view. */
  | { readonly kind: 'view'; readonly view: View; readonly status: ReplicaStatus }
  /** A pre-prepare this replica sent (as primary) or accepted (before preparing it). */
  | { readonly kind: 'pre-prepare'; readonly message: PrePrepare<B> }
  /** Own prepare, own commit, own checkpoint, own view-change: what it promised. */
  | { readonly kind: 'prepare'; readonly message: Prepare }
  | { readonly kind: 'commit'; readonly message: Commit }
  | { readonly kind: 'checkpoint'; readonly message: Checkpoint }
  | { readonly kind: 'view-change'; readonly message: ViewChange<B> }
  /** A prepared certificate, kept so that later view-changes still carry it after a restart. */
  | { readonly kind: 'prepared'; readonly certificate: PreparedCertificate<B> }
  | { readonly kind: 'stable-checkpoint'; readonly checkpoint: StableCheckpoint };

/** What a restarted replica is built from. */
export interface RestoredState<B> {
  /** Every record persisted so far, in order (compacted or not). */
  readonly records: readonly PersistRecord<B>[];
  /** The app's last durably applied block (height 0 and the genesis hash when none). */
  readonly executed: { readonly height: Height; readonly hash: BlockHash };
}

// ---------------------------------------------------------------------------------------------
// Actions (outputs of Replica.step), performed by the driver IN ORDER

/** Make these records durable before performing any later action of the same step. */
export interface PersistAction<B> {
  readonly kind: 'persist';
  readonly records: readonly PersistRecord<B>[];
}

export interface SendAction<B> {
  readonly kind: 'send';
  readonly to: ValidatorId;
  readonly message: ConsensusMessage<B>;
}

/** Send to every other replica (not to self: the core has already processed its own message). */
export interface BroadcastAction<B> {
  readonly kind: 'broadcast';
  readonly message: ConsensusMessage<B>;
}

/**
 * A committed block, in height order, each height exactly once. The app applies it durably and
 * then feeds back a block-executed event.
 */
export interface DeliverAction<B> {
  readonly kind: 'deliver';
  readonly height: Height;
  readonly block: B;
  readonly certificate: CommitCertificate;
}

/** Ask the app whether a proposed block is valid; the answer comes back as a validation-result. */
export interface ValidateAction<B> {
  readonly kind: 'validate';
  readonly view: View;
  readonly seq: Height;
  readonly digest: BlockHash;
  readonly block: B;
}

/** Ask peer `to` for committed blocks fromHeight..toHeight (inclusive); the answer is a blocks event. */
export interface RequestBlocksAction {
  readonly kind: 'request-blocks';
  readonly to: ValidatorId;
  readonly fromHeight: Height;
  readonly toHeight: Height;
}

export type ReplyResult =
  /** The request is in the block committed at this height. */
  | { readonly status: 'committed'; readonly height: Height }
  /** The request was committed before, at this height; it is not executed again. */
  | { readonly status: 'duplicate'; readonly height: Height }
  /** Refused on arrival: app.checkRequest failed or the pending queue is full. */
  | { readonly status: 'rejected'; readonly reason: string };

export interface ReplyAction {
  readonly kind: 'reply';
  readonly clientId: string;
  readonly requestId: string;
  readonly result: ReplyResult;
}

/** Informational: this replica entered normal operation in a new view. */
export interface ViewChangedAction {
  readonly kind: 'view-changed';
  readonly view: View;
  readonly primary: ValidatorId;
}

export type Action<B> =
  | PersistAction<B>
  | SendAction<B>
  | BroadcastAction<B>
  | DeliverAction<B>
  | ValidateAction<B>
  | RequestBlocksAction
  | ReplyAction
  | ViewChangedAction;

// ---------------------------------------------------------------------------------------------
// The replica as seen from outside

/** 'normal': processing requests in `view`; 'view-change': waiting for the new-view of `view`. */
export type ReplicaStatus = 'normal' | 'view-change';

/**
 * Read-only accessors of Replica (src/consensus/replica.ts), for drivers and the simulator's
 * checkers. The class is `new Replica<B, R>(config, app, restored?)` with `step(event): Action<B>[]`.
 */
export interface ReplicaState {
  readonly id: ValidatorId;
  readonly n: number;
  readonly f: number;
  /** The current view (during a view change, the view being moved to). */
  readonly view: View;
  readonly status: ReplicaStatus;
  readonly primary: ValidatorId;
  /** Highest height handed out in a deliver action. */
  readonly lastDelivered: Height;
  /** Highest height the app reported executed, and its hash. */
  readonly lastExecuted: { readonly height: Height; readonly hash: BlockHash };
  readonly stableCheckpoint: { readonly seq: Height; readonly digest: BlockHash };
  /** Requests waiting to be committed. */
  readonly pendingRequests: number;
}
