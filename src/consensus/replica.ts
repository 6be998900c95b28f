/**
 * The PBFT replica (Castro and Liskov), as a pure state machine: step(event) -> actions.
 *
 * No clock (time arrives in tick events), no randomness, no I/O, no async. The driver (the node or
 * the simulator) performs the returned actions IN ORDER, and makes every persist action durable
 * before it performs any later action of the same list: that is what lets a restarted replica
 * never contradict a message it sent. See docs/consensus.md for the protocol and its safety
 * argument, in particular the chaining rules R1-R3 that keep a hash-linked chain consistent while
 * several sequence numbers are in flight.
 *
 * Signatures: every signature the replica relies on is checked here, through the injected Verifier,
 * before the message changes any state (nested ones too). Own messages are signed with the Signer.
 */
import * as constants from '../constants.ts';
import { Domain } from '../crypto/domains.ts';
import type { BlockHash, Height, ValidatorId, View } from '../encoding/brand.ts';
import { AssertionFailure, assert } from '../errors.ts';
import { commitPayload, faultsTolerated, makeCommitCertificate, quorumSize } from './certificate.ts';
import { isWellFormedCertifiedBlock, isWellFormedMessage, signedPart, verifyMessage } from './messages.ts';
import type {
  Action,
  Application,
  BlocksEvent,
  Checkpoint,
  Commit,
  CommitCertificate,
  ConsensusMessage,
  Event,
  NewView,
  PersistRecord,
  PrePrepare,
  Prepare,
  PreparedCertificate,
  ReplicaConfig,
  ReplicaFaults,
  ReplicaLimits,
  ReplicaState,
  ReplicaStatus,
  RequestKey,
  RestoredState,
  StableCheckpoint,
  ValidationResultEvent,
  ViewChange,
} from './types.ts';

/** Defaults of every protocol limit, from src/constants.ts. */
export const defaultLimits: ReplicaLimits = {
  checkpointInterval: constants.checkpointInterval,
  watermarkWindow: constants.watermarkWindow,
  batchWaitMs: constants.batchWaitMsMax,
  blockTxsMax: constants.blockTxsMax,
  blockBytesMax: constants.blockBytesMax,
  viewChangeTimeoutMs: constants.viewChangeTimeoutMs,
  viewChangeTimeoutMsMax: constants.viewChangeTimeoutMsMax,
  requestTimeoutMs: constants.requestTimeoutMs,
  pendingRequestsMax: constants.pendingRequestsMax,
  futureMessagesMax: constants.futureMessagesMax,
  stateTransferBlocksPerRequestMax: constants.stateTransferBlocksPerRequestMax,
  heartbeatIntervalMs: 0,
  retransmitMs: constants.consensusRetransmitMs,
  committedRequestsRememberedMax: constants.committedRequestsRememberedMax,
};

export function primaryOf(view: number, n: number): ValidatorId {
  return (view % n) as ValidatorId;
}

/** A request key as one string, for maps. */
export function requestKeyString(key: RequestKey): string {
  return `${key.clientId}\u0000${key.requestId}`;
}

type Validation = 'none' | 'requested' | 'valid' | 'invalid';

/** Everything the replica knows about one sequence number above its stable checkpoint. */
interface Slot<B> {
  readonly seq: Height;
  /** The pre-prepare accepted in the current view (undefined after a view change until a new one). */
  prePrepare: PrePrepare<B> | undefined;
  validation: Validation;
  /** Prepares and commits of the current view, one per replica (the first one received). */
  readonly prepares: Map<number, Prepare>;
  readonly commits: Map<number, Commit>;
  /** Own prepare and commit of the current view. */
  sentPrepare: Prepare | undefined;
  sentCommit: Commit | undefined;
  preparedInView: boolean;
  /** The highest-view prepared certificate this replica holds for this seq (survives view changes). */
  prepared: PreparedCertificate<B> | undefined;
  /** Committed locally (or fetched with a certificate). */
  committed:
    | { readonly digest: BlockHash; readonly block: B; readonly certificate: CommitCertificate }
    | undefined;
}

interface PendingRequest<R> {
  readonly request: R;
  readonly key: RequestKey;
  readonly bytes: number;
  readonly arrivedMs: number;
  /** Start of its censorship timer: arrival, or the start of the current view if later. */
  sinceMs: number;
}

interface Transfer {
  /** A probe asks one peer once, without evidence that anything is missing. */
  readonly probe: boolean;
  target: Height;
  peer: ValidatorId;
  sentAtMs: number;
  attempts: number;
}

/** One entry of a new-view's O set, before it is signed as a pre-prepare. */
export interface OEntry<B> {
  readonly seq: Height;
  readonly digest: BlockHash;
  readonly block: B;
}

/**
 * Rule R3: the O set a new primary must propose, computed from the V set alone (so every backup
 * can recompute it). The chosen checkpoint is the highest stable checkpoint in V; above it, take
 * for each seq the prepared certificate with the highest view, and stop at the first seq that has
 * none or whose block does not extend the previous entry. Everything from there up is free.
 */
export function computeNewViewSet<B>(
  viewChanges: readonly ViewChange<B>[],
  parentOf: (block: B) => BlockHash,
  window: number,
  ignorePrepared = false,
): { checkpoint: StableCheckpoint; entries: OEntry<B>[] } {
  assert(viewChanges.length > 0, 'a V set is never empty');
  let checkpoint = viewChanges[0]!.checkpoint;
  for (const vc of viewChanges) if (vc.checkpoint.seq > checkpoint.seq) checkpoint = vc.checkpoint;
  const entries: OEntry<B>[] = [];
  if (ignorePrepared) return { checkpoint, entries };
  const bySeq = new Map<number, PrePrepare<B>>();
  for (const vc of viewChanges) {
    for (const cert of vc.prepared) {
      const pp = cert.prePrepare;
      const best = bySeq.get(pp.seq);
      // Highest view wins; within a view, certificates cannot disagree unless more than f are
      // faulty, and the smallest digest keeps the choice deterministic even then.
      if (best === undefined || pp.view > best.view || (pp.view === best.view && pp.digest < best.digest)) {
        bySeq.set(pp.seq, pp);
      }
    }
  }
  let previous = checkpoint.digest;
  for (let seq = checkpoint.seq + 1; seq <= checkpoint.seq + window; seq++) {
    const pp = bySeq.get(seq);
    if (pp === undefined || parentOf(pp.block) !== previous) break;
    entries.push({ seq: seq as Height, digest: pp.digest, block: pp.block });
    previous = pp.digest;
  }
  return { checkpoint, entries };
}

export class Replica<B, R> implements ReplicaState {
  readonly id: ValidatorId;
  readonly n: number;
  readonly f: number;
  readonly limits: ReplicaLimits;
  private readonly quorum: number;
  private readonly chainId: string;
  private readonly faults: ReplicaFaults;
  /** Cross-replica invariants are asserted only when no test fault is switched on. */
  private readonly strict: boolean;

  private currentView = 0 as View;
  private currentStatus: ReplicaStatus = 'normal';
  private nowMs = 0;
  private executed: { height: Height; hash: BlockHash };
  private delivered: Height;
  private deliveredHash: BlockHash;
  /** Digests of delivered heights not yet executed or above the stable checkpoint. */
  private readonly deliveredDigests = new Map<number, BlockHash>();
  private stable: StableCheckpoint;
  private readonly slots = new Map<number, Slot<B>>();
  /** Checkpoint messages above the stable checkpoint, by seq then replica. */
  private readonly checkpoints = new Map<number, Map<number, Checkpoint>>();
  private readonly ownCheckpoints = new Map<number, Checkpoint>();
  /** Highest seq each replica was seen voting on beyond our high watermark (we may be behind). */
  private readonly aheadSeq = new Map<number, number>();
  /** The latest valid view-change of each replica. */
  private readonly viewChanges = new Map<number, ViewChange<B>>();
  private ownViewChange: ViewChange<B> | undefined;
  private lastNewView: NewView<B> | undefined;
  private viewChangeDeadlineMs: number | undefined;
  private consecutiveViewChanges = 0;
  private viewStartMs = 0;
  /** Pre-prepares of the current view whose parent (seq - 1) is not known yet (rule R1). */
  private readonly waitingParent = new Map<number, PrePrepare<B>>();
  /** Verified messages of a later view, replayed when that view starts. */
  private future: { from: number; message: PrePrepare<B> | Prepare | Commit }[] = [];
  private readonly futureByPeer = new Map<number, number>();
  /** Highest view among each replica's buffered messages, kept as they arrive so joining a later view needs no rescan of the buffer. */
  private readonly futureTopView = new Map<number, number>();
  private readonly pending = new Map<string, PendingRequest<R>>();
  /** Pending requests not in any block pre-prepared in the current view, in arrival order. */
  private readonly unproposed = new Map<string, PendingRequest<R>>();
  private unproposedBytes = 0;
  /** Request keys in blocks pre-prepared in the current view and not yet delivered, with their seq. */
  private readonly proposedKeys = new Map<string, number>();
  private readonly recentCommitted = new Map<string, Height>();
  /** The app's verdicts, by digest, for blocks above the stable checkpoint. */
  private readonly validity = new Map<string, { seq: number; valid: boolean }>();
  private transfer: Transfer | undefined;
  private transferCursor = 0;
  private lastRetransmitMs = 0;
  private lastDeliveryMs = 0;
  private lastProposalMs = 0;
  private lastStallFetchMs = 0;
  /** "replica:seq" of checkpoints at or below our stable one that replicas sent us (cleared as it moves). */
  private readonly staleCheckpointSeen = new Set<string>();
  private readonly lastHelpMs = new Map<number, number>();
  private out: Action<B>[] = [];
  private resumed = false;
  /** Set while a new-view's O set is being accepted: the primary must not propose in between. */
  private installing = false;
  private restartTransferTarget = 0;

  constructor(
    readonly config: ReplicaConfig,
    readonly app: Application<B, R>,
    restored?: RestoredState<B>,
  ) {
    assert(Number.isSafeInteger(config.n) && config.n >= 4, `PBFT needs n >= 4 validators, got ${config.n}`);
    assert(config.n <= constants.validatorsMax, `at most ${constants.validatorsMax} validators`);
    assert(
      Number.isSafeInteger(config.id) && config.id >= 0 && config.id < config.n,
      'replica id out of range',
    );
    this.id = config.id;
    this.n = config.n;
    this.f = faultsTolerated(config.n);
    this.quorum = quorumSize(config.n);
    this.chainId = config.chainId;
    this.faults = config.faults ?? {};
    this.strict = config.faults === undefined;
    this.limits = { ...defaultLimits, ...config.limits };
    const l = this.limits;
    assert(l.checkpointInterval >= 1, 'checkpointInterval >= 1');
    assert(
      l.watermarkWindow >= 2 * l.checkpointInterval,
      'the window holds at least two checkpoint intervals',
    );
    assert(
      l.watermarkWindow % l.checkpointInterval === 0,
      'the window is a multiple of the checkpoint interval',
    );
    assert(
      l.blockTxsMax >= 1 && l.pendingRequestsMax >= l.blockTxsMax,
      'the pending queue holds a full block',
    );
    assert(
      l.viewChangeTimeoutMs > 0 && l.viewChangeTimeoutMs <= l.viewChangeTimeoutMsMax,
      'view-change timeouts',
    );
    assert(
      l.retransmitMs > 0 && l.stateTransferBlocksPerRequestMax >= 1,
      'retransmission and transfer limits',
    );

    const executed = restored?.executed ?? { height: 0 as Height, hash: config.genesisHash };
    this.executed = { ...executed };
    this.delivered = executed.height;
    this.deliveredHash = executed.hash;
    this.stable = { seq: 0 as Height, digest: config.genesisHash, proof: [] };
    if (restored !== undefined) this.restore(restored);
  }

  // -------------------------------------------------------------------------------------------
  // Read-only accessors

  get view(): View {
    return this.currentView;
  }
  get status(): ReplicaStatus {
    return this.currentStatus;
  }
  get primary(): ValidatorId {
    return primaryOf(this.currentView, this.n);
  }
  get lastDelivered(): Height {
    return this.delivered;
  }
  get lastExecuted(): { readonly height: Height; readonly hash: BlockHash } {
    return { ...this.executed };
  }
  get stableCheckpoint(): { readonly seq: Height; readonly digest: BlockHash } {
    return { seq: this.stable.seq, digest: this.stable.digest };
  }
  get pendingRequests(): number {
    return this.pending.size;
  }
  /** The digest committed (or delivered) at seq, when this replica still knows it. */
  committedDigestAt(seq: number): BlockHash | undefined {
    return this.committedDigest(seq);
  }

  // -------------------------------------------------------------------------------------------
  // The one entry point

  step(event: Event<B, R>): Action<B>[] {
    assert(this.out.length === 0, 'step is not re-entrant');
    try {
      if (!this.resumed) {
        this.resumed = true;
        this.resume();
      }
      switch (event.kind) {
        case 'message':
          this.onMessage(event.from, event.message);
          break;
        case 'tick':
          this.onTick(event.nowMs);
          break;
        case 'request':
          this.onRequest(event.request);
          break;
        case 'validation-result':
          this.onValidationResult(event);
          break;
        case 'block-executed':
          this.onBlockExecuted(event.height, event.hash);
          break;
        case 'blocks':
          this.onBlocks(event);
          break;
      }
      this.checkInvariants();
      return this.out;
    } finally {
      this.out = [];
    }
  }

  // -------------------------------------------------------------------------------------------
  // Output helpers

  private persist(...records: PersistRecord<B>[]): void {
    const last = this.out[this.out.length - 1];
    if (last?.kind === 'persist') {
      this.out[this.out.length - 1] = { kind: 'persist', records: [...last.records, ...records] };
    } else {
      this.out.push({ kind: 'persist', records });
    }
  }

  private broadcast(message: ConsensusMessage<B>): void {
    this.out.push({ kind: 'broadcast', message });
  }

  private send(to: number, message: ConsensusMessage<B>): void {
    assert(to !== this.id && to >= 0 && to < this.n, 'send to another known replica');
    this.out.push({ kind: 'send', to: to as ValidatorId, message });
  }

  private sign<M extends ConsensusMessage<B>>(unsigned: Omit<M, 'signature'>): M {
    const draft = { ...unsigned, signature: '' } as unknown as M;
    const { domain, payload } = signedPart(this.chainId, draft);
    return { ...unsigned, signature: this.config.signer.sign(domain, payload) } as unknown as M;
  }

  private verify(message: ConsensusMessage<B>): boolean {
    if (!Number.isSafeInteger(message.replica) || message.replica < 0 || message.replica >= this.n)
      return false;
    return verifyMessage(this.chainId, this.config.verifier, message);
  }

  /** An invariant that only holds while at most f replicas are faulty (off under test faults). */
  private checkSafety(condition: boolean, message: string): void {
    if (this.strict && !condition) throw new AssertionFailure(message);
  }

  // -------------------------------------------------------------------------------------------
  // Small queries

  private isPrimary(): boolean {
    return primaryOf(this.currentView, this.n) === this.id;
  }

  private get highWatermark(): number {
    return this.stable.seq + this.limits.watermarkWindow;
  }

  private inWindow(seq: number): boolean {
    return Number.isSafeInteger(seq) && seq > this.stable.seq && seq <= this.highWatermark;
  }

  private slot(seq: number): Slot<B> {
    assert(this.inWindow(seq), `slot ${seq} outside the window (${this.stable.seq}, ${this.highWatermark}]`);
    let slot = this.slots.get(seq);
    if (slot === undefined) {
      slot = {
        seq: seq as Height,
        prePrepare: undefined,
        validation: 'none',
        prepares: new Map(),
        commits: new Map(),
        sentPrepare: undefined,
        sentCommit: undefined,
        preparedInView: false,
        prepared: undefined,
        committed: undefined,
      };
      this.slots.set(seq, slot);
    }
    return slot;
  }

  private committedDigest(seq: number): BlockHash | undefined {
    if (seq === this.executed.height) return this.executed.hash;
    if (seq === this.stable.seq) return this.stable.digest;
    if (seq === this.delivered) return this.deliveredHash;
    return this.deliveredDigests.get(seq) ?? this.slots.get(seq)?.committed?.digest;
  }

  /** Rule R1: the digest the replica holds at seq (committed, or pre-prepared in the current view). */
  private knownDigest(seq: number): BlockHash | undefined {
    const committed = this.committedDigest(seq);
    if (committed !== undefined) return committed;
    const pp = this.slots.get(seq)?.prePrepare;
    return pp !== undefined && pp.view === this.currentView ? pp.digest : undefined;
  }

  /** Rule R2: the parent of a block at seq is committed, or prepared in the current view. */
  private parentReady(seq: number, parent: BlockHash): boolean {
    if (this.committedDigest(seq - 1) === parent) return true;
    const p = this.slots.get(seq - 1);
    return (
      p?.prePrepare !== undefined &&
      p.prePrepare.view === this.currentView &&
      p.prePrepare.digest === parent &&
      p.preparedInView
    );
  }

  /** The app holds the state after the block at seq: it was delivered, built or validated valid. */
  private appHas(seq: number): BlockHash | undefined {
    if (seq <= this.delivered) return this.committedDigest(seq);
    const s = this.slots.get(seq);
    if (s?.prePrepare === undefined || s.prePrepare.view !== this.currentView) return undefined;
    return s.validation === 'valid' ? s.prePrepare.digest : undefined;
  }

  private currentTimeoutMs(base: number): number {
    const doublings = Math.min(Math.max(this.consecutiveViewChanges - 1, 0), 30);
    return Math.min(base * 2 ** doublings, Math.max(this.limits.viewChangeTimeoutMsMax, base));
  }

  // -------------------------------------------------------------------------------------------
  // Client requests and proposals

  private onRequest(request: R): void {
    const key = this.app.requestKey(request);
    const k = requestKeyString(key);
    const committedAt = this.recentCommitted.get(k) ?? this.app.findCommitted?.(key) ?? null;
    if (committedAt !== null) {
      this.reply(key, { status: 'duplicate', height: committedAt });
      return;
    }
    if (this.pending.has(k)) return;
    const reason = this.app.checkRequest(request);
    if (reason !== null) {
      this.reply(key, { status: 'rejected', reason });
      return;
    }
    const bytes = this.app.requestBytes(request);
    if (bytes > this.limits.blockBytesMax) {
      this.reply(key, {
        status: 'rejected',
        reason: `request of ${bytes} bytes exceeds the block limit of ${this.limits.blockBytesMax}; split it`,
      });
      return;
    }
    if (this.pending.size >= this.limits.pendingRequestsMax) {
      this.reply(key, {
        status: 'rejected',
        reason: `the pending queue is full (${this.limits.pendingRequestsMax} requests); retry later`,
      });
      return;
    }
    const entry: PendingRequest<R> = { request, key, bytes, arrivedMs: this.nowMs, sinceMs: this.nowMs };
    this.pending.set(k, entry);
    if (!this.proposedKeys.has(k)) {
      this.unproposed.set(k, entry);
      this.unproposedBytes += bytes;
    }
    this.tryPropose();
  }

  private reply(key: RequestKey, result: import('./types.ts').ReplyResult): void {
    this.out.push({ kind: 'reply', clientId: key.clientId, requestId: key.requestId, result });
  }

  private removeUnproposed(k: string): void {
    const entry = this.unproposed.get(k);
    if (entry === undefined) return;
    this.unproposed.delete(k);
    this.unproposedBytes -= entry.bytes;
  }

  private nextProposalSeq(): number {
    let seq = Math.max(this.delivered, this.stable.seq);
    while (this.slots.get(seq + 1)?.prePrepare?.view === this.currentView) seq++;
    return seq + 1;
  }

  private batchReady(seq: number): boolean {
    const l = this.limits;
    if (this.unproposed.size >= l.blockTxsMax || this.unproposedBytes >= l.blockBytesMax) return true;
    const first = this.unproposed.values().next();
    if (!first.done && this.nowMs - first.value.arrivedMs >= l.batchWaitMs) return true;
    if (l.heartbeatIntervalMs > 0 && this.unproposed.size === 0 && seq === this.delivered + 1) {
      const idleSince = Math.max(this.lastDeliveryMs, this.lastProposalMs, this.viewStartMs);
      return this.nowMs - idleSince >= l.heartbeatIntervalMs;
    }
    return false;
  }

  /** The primary proposes while a batch is ready, the window has room and its parent is known. */
  private tryPropose(): void {
    if (this.currentStatus !== 'normal' || !this.isPrimary() || this.installing) return;
    for (;;) {
      const seq = this.nextProposalSeq();
      if (seq > this.highWatermark) return;
      const parent = this.appHas(seq - 1);
      if (parent === undefined || !this.batchReady(seq)) return;
      this.propose(seq as Height, parent);
    }
  }

  private propose(seq: Height, parent: BlockHash): void {
    const requests: R[] = [];
    const keys: string[] = [];
    let bytes = 0;
    for (const [k, entry] of this.unproposed) {
      if (requests.length >= this.limits.blockTxsMax) break;
      if (bytes + entry.bytes > this.limits.blockBytesMax) break;
      requests.push(entry.request);
      keys.push(k);
      bytes += entry.bytes;
    }
    const block = this.app.build({
      parent,
      height: seq,
      view: this.currentView,
      proposer: this.id,
      nowMs: this.nowMs,
      requests,
    });
    const digest = this.app.digest(block);
    assert(this.app.height(block) === seq, 'app.build returned a block at another height');
    assert(this.app.parent(block) === parent, 'app.build returned a block on another parent');
    const included = new Set(this.app.requestKeys(block).map(requestKeyString));
    assert(
      keys.every((k) => included.has(k)),
      'app.build must include every request it is given',
    );
    const pp = this.sign<PrePrepare<B>>({
      kind: 'pre-prepare',
      view: this.currentView,
      seq,
      digest,
      block,
      replica: this.id,
    });
    const slot = this.slot(seq);
    assert(
      slot.prePrepare === undefined,
      `the primary proposes once per (view ${this.currentView}, seq ${seq})`,
    );
    slot.prePrepare = pp;
    slot.validation = 'valid';
    this.validity.set(digest, { seq, valid: true });
    for (const k of included) {
      this.proposedKeys.set(k, seq);
      this.removeUnproposed(k);
    }
    this.lastProposalMs = this.nowMs;
    this.persist({ kind: 'pre-prepare', message: pp });
    this.broadcast(pp);
    this.checkPrepared(seq);
  }

  // -------------------------------------------------------------------------------------------
  // Messages

  /** A block from the network passes the app's structural check (or is at least an object). */
  private readonly isBlock = (value: unknown): boolean =>
    typeof value === 'object' && value !== null && (this.app.isBlock?.(value) ?? true);

  private onMessage(from: ValidatorId, message: ConsensusMessage<B>): void {
    // Malformed input from a peer is an operating error: drop it, never throw.
    if (!Number.isSafeInteger(from) || from < 0 || from >= this.n || from === this.id) return;
    const limits = { n: this.n, window: this.limits.watermarkWindow };
    if (!isWellFormedMessage(message, limits, this.isBlock)) return;
    switch (message.kind) {
      case 'pre-prepare':
        this.onPrePrepare(from, message, false);
        return;
      case 'prepare':
        this.onPrepare(from, message, false);
        return;
      case 'commit':
        this.onCommit(from, message, false);
        return;
      case 'checkpoint':
        this.onCheckpoint(from, message);
        return;
      case 'view-change':
        this.onViewChange(message);
        return;
      case 'new-view':
        this.onNewView(message);
        return;
    }
  }

  /**
   * Common gate for pre-prepare, prepare and commit: later views are buffered, earlier ones dropped,
   * seqs beyond the window only tell us we may be behind. Returns true when the message is for the
   * current view, in the window, and its signature is valid.
   */
  private admitVote(from: number, message: PrePrepare<B> | Prepare | Commit, verified: boolean): boolean {
    if (!Number.isSafeInteger(message.view) || !Number.isSafeInteger(message.seq)) return false;
    const later =
      message.view > this.currentView ||
      (message.view === this.currentView && this.currentStatus !== 'normal');
    if (later) {
      if (verified || this.verify(message)) this.bufferFuture(from, message);
      return false;
    }
    if (message.view < this.currentView) return false;
    if (!this.inWindow(message.seq)) {
      if (message.seq > this.highWatermark && (verified || this.verify(message))) this.noteAhead(message);
      return false;
    }
    return verified || this.verify(message);
  }

  private onPrePrepare(from: number, pp: PrePrepare<B>, verified: boolean): void {
    if (pp.replica !== primaryOf(pp.view, this.n)) return;
    if (!this.admitVote(from, pp, verified)) return;
    this.acceptPrePrepare(pp);
  }

  /** Accepts a verified pre-prepare of the current view in the window (rule R1 included). */
  private acceptPrePrepare(pp: PrePrepare<B>): void {
    const slot = this.slot(pp.seq);
    if (slot.prePrepare !== undefined) {
      // Two different proposals for one (view, seq) prove the primary faulty.
      if (slot.prePrepare.digest !== pp.digest) this.suspectPrimary();
      return;
    }
    if (!this.faults.skipPrePrepareDigestCheck) {
      if (this.app.digest(pp.block) !== pp.digest || this.app.height(pp.block) !== pp.seq) {
        this.suspectPrimary();
        return;
      }
    }
    const committed = this.committedDigest(pp.seq);
    if (committed !== undefined && committed !== pp.digest) {
      this.suspectPrimary();
      return;
    }
    const parent = this.knownDigest(pp.seq - 1);
    if (parent === undefined) {
      // R1: wait (bounded: one per seq in the window) until the parent is known.
      if (!this.waitingParent.has(pp.seq)) this.waitingParent.set(pp.seq, pp);
      return;
    }
    if (this.app.parent(pp.block) !== parent) {
      this.suspectPrimary();
      return;
    }
    const keys = this.app.requestKeys(pp.block).map(requestKeyString);
    for (const k of keys) {
      const at = this.recentCommitted.get(k) ?? this.proposedKeys.get(k);
      if (at !== undefined && at !== pp.seq) {
        // The block repeats a request that is committed or proposed at another height.
        this.suspectPrimary();
        return;
      }
    }
    slot.prePrepare = pp;
    slot.validation = 'none';
    for (const k of keys) {
      this.proposedKeys.set(k, pp.seq);
      this.removeUnproposed(k);
    }
    this.tryValidate(pp.seq);
    const child = this.waitingParent.get(pp.seq + 1);
    if (child !== undefined && child.view === this.currentView && this.inWindow(child.seq)) {
      this.waitingParent.delete(child.seq);
      this.acceptPrePrepare(child);
    }
  }

  /** Asks the app to validate the block at seq once the app holds its parent. */
  private tryValidate(seq: number): void {
    const slot = this.slots.get(seq);
    const pp = slot?.prePrepare;
    if (slot === undefined || pp === undefined || slot.validation !== 'none') return;
    const parent = this.app.parent(pp.block);
    const parentKnownToApp =
      (seq - 1 <= this.delivered && this.committedDigest(seq - 1) === parent) ||
      (this.slots.get(seq - 1)?.prePrepare?.digest === parent &&
        this.slots.get(seq - 1)?.prePrepare?.view === this.currentView &&
        this.slots.get(seq - 1)?.validation !== 'none');
    if (!parentKnownToApp) return;
    const cached = this.validity.get(pp.digest);
    if (this.committedDigest(seq) === pp.digest || cached !== undefined) {
      this.applyValidity(slot, cached?.valid ?? true);
    } else {
      slot.validation = 'requested';
      this.out.push({ kind: 'validate', view: pp.view, seq: pp.seq, digest: pp.digest, block: pp.block });
    }
    this.tryValidate(seq + 1);
  }

  private onValidationResult(event: ValidationResultEvent): void {
    if (!this.inWindow(event.seq)) return;
    this.validity.set(event.digest, { seq: event.seq, valid: event.valid });
    const slot = this.slots.get(event.seq);
    const pp = slot?.prePrepare;
    if (slot === undefined || pp === undefined || pp.digest !== event.digest || pp.view !== event.view)
      return;
    if (slot.validation !== 'requested') return;
    this.applyValidity(slot, event.valid);
  }

  private applyValidity(slot: Slot<B>, valid: boolean): void {
    slot.validation = valid ? 'valid' : 'invalid';
    if (!valid) {
      // External validity: an honest replica never prepares an invalid block; its proposer is faulty.
      this.suspectPrimary();
      return;
    }
    this.tryPrepare(slot.seq);
    this.tryPropose();
  }

  /** Sends PREPARE once the block is valid and its parent is prepared or committed (rule R2). */
  private tryPrepare(seq: number): void {
    const slot = this.slots.get(seq);
    const pp = slot?.prePrepare;
    if (slot === undefined || pp === undefined || this.currentStatus !== 'normal') return;
    if (pp.view !== this.currentView || slot.validation !== 'valid') return;
    if (this.isPrimary() || slot.sentPrepare !== undefined) {
      this.checkPrepared(seq);
      return;
    }
    if (!this.parentReady(seq, this.app.parent(pp.block))) return;
    const prepare = this.sign<Prepare>({
      kind: 'prepare',
      view: pp.view,
      seq: pp.seq,
      digest: pp.digest,
      replica: this.id,
    });
    slot.sentPrepare = prepare;
    slot.prepares.set(this.id, prepare);
    this.persist({ kind: 'pre-prepare', message: pp }, { kind: 'prepare', message: prepare });
    this.broadcast(prepare);
    this.checkPrepared(seq);
  }

  private onPrepare(from: number, prepare: Prepare, verified: boolean): void {
    if (prepare.replica === primaryOf(prepare.view, this.n)) return;
    if (!this.admitVote(from, prepare, verified)) return;
    const slot = this.slot(prepare.seq);
    if (slot.prepares.has(prepare.replica)) return;
    slot.prepares.set(prepare.replica, prepare);
    this.checkPrepared(prepare.seq);
  }

  /** Prepared = pre-prepare + 2f matching prepares from distinct backups; then COMMIT. */
  private checkPrepared(seq: number): void {
    const slot = this.slots.get(seq);
    const pp = slot?.prePrepare;
    if (slot === undefined || pp === undefined || slot.preparedInView || this.currentStatus !== 'normal')
      return;
    if (pp.view !== this.currentView || slot.validation !== 'valid') return;
    if (!this.isPrimary() && slot.sentPrepare === undefined) return;
    // R2 holds for every COMMIT sender: a backup checked it before its PREPARE; the primary, which
    // sends no PREPARE, checks it here. So every honest committer of s has s-1 prepared or committed.
    if (this.isPrimary() && !this.parentReady(seq, this.app.parent(pp.block))) return;
    const matching = [...slot.prepares.values()].filter((p) => p.digest === pp.digest);
    if (matching.length < 2 * this.f) return;
    matching.sort((a, b) => a.replica - b.replica);
    const certificate: PreparedCertificate<B> = { prePrepare: pp, prepares: matching.slice(0, 2 * this.f) };
    slot.preparedInView = true;
    slot.prepared = certificate;
    assert(slot.sentCommit === undefined, `one commit per (view ${pp.view}, seq ${seq})`);
    const commit = this.sign<Commit>({
      kind: 'commit',
      view: pp.view,
      seq: pp.seq,
      digest: pp.digest,
      replica: this.id,
    });
    slot.sentCommit = commit;
    slot.commits.set(this.id, commit);
    this.persist({ kind: 'prepared', certificate }, { kind: 'commit', message: commit });
    this.broadcast(commit);
    this.checkCommitted(seq);
    this.tryPrepare(seq + 1);
  }

  private onCommit(from: number, commit: Commit, verified: boolean): void {
    if (!this.admitVote(from, commit, verified)) return;
    const slot = this.slot(commit.seq);
    if (slot.commits.has(commit.replica)) return;
    slot.commits.set(commit.replica, commit);
    this.checkCommitted(commit.seq);
  }

  /** Committed-local = prepared + 2f+1 matching commits from distinct replicas (own included). */
  private checkCommitted(seq: number): void {
    const slot = this.slots.get(seq);
    const pp = slot?.prePrepare;
    if (slot === undefined || pp === undefined || !slot.preparedInView || slot.committed !== undefined)
      return;
    const needed = this.faults.commitOnTwoF ? 2 * this.f : this.quorum;
    const matching = [...slot.commits.values()].filter((c) => c.digest === pp.digest);
    if (matching.length < needed) return;
    matching.sort((a, b) => a.replica - b.replica);
    const certificate = makeCommitCertificate(
      pp.seq,
      pp.view,
      pp.digest,
      matching.slice(0, needed).map((c) => ({ validator: c.replica, signature: c.signature })),
    );
    this.markCommitted(slot, pp.digest, pp.block, certificate);
    this.tryDeliver();
  }

  private markCommitted(slot: Slot<B>, digest: BlockHash, block: B, certificate: CommitCertificate): void {
    const known = this.committedDigest(slot.seq);
    this.checkSafety(
      known === undefined || known === digest,
      `two different blocks committed at height ${slot.seq} (${known} and ${digest})`,
    );
    slot.committed = { digest, block, certificate };
  }

  private tryDeliver(): void {
    for (;;) {
      const committed = this.slots.get(this.delivered + 1)?.committed;
      if (committed === undefined) return;
      this.deliver(committed.block, committed.certificate);
    }
  }

  private deliver(block: B, certificate: CommitCertificate): void {
    const height = (this.delivered + 1) as Height;
    assert(certificate.height === height, 'delivery strictly in height order');
    this.checkSafety(
      this.app.parent(block) === this.deliveredHash,
      `the block delivered at height ${height} does not extend the block delivered before it`,
    );
    this.out.push({ kind: 'deliver', height, block, certificate });
    this.delivered = height;
    this.deliveredHash = certificate.blockHash;
    this.deliveredDigests.set(height, certificate.blockHash);
    for (const key of this.app.requestKeys(block)) {
      const k = requestKeyString(key);
      this.rememberCommitted(k, height);
      this.proposedKeys.delete(k);
      this.removeUnproposed(k);
      if (this.pending.delete(k)) this.reply(key, { status: 'committed', height });
    }
    this.consecutiveViewChanges = 0;
    this.lastDeliveryMs = this.nowMs;
    this.tryValidate(height + 1);
    // The child may have waited on rule R2 for this parent.
    this.tryPrepare(height + 1);
    if (this.transfer !== undefined && this.delivered >= this.transfer.target) this.transfer = undefined;
  }

  private rememberCommitted(k: string, height: Height): void {
    this.recentCommitted.set(k, height);
    if (this.recentCommitted.size > this.limits.committedRequestsRememberedMax) {
      const oldest = this.recentCommitted.keys().next();
      if (!oldest.done) this.recentCommitted.delete(oldest.value);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Execution and checkpoints

  private onBlockExecuted(height: Height, hash: BlockHash): void {
    assert(height === this.executed.height + 1, `executed height goes ${this.executed.height} -> ${height}`);
    assert(height <= this.delivered, `block ${height} executed before it was delivered`);
    assert(this.committedDigest(height) === hash, `block executed at ${height} is not the one delivered`);
    this.executed = { height, hash };
    if (height % this.limits.checkpointInterval === 0 && height > this.stable.seq) {
      const checkpoint = this.sign<Checkpoint>({
        kind: 'checkpoint',
        seq: height,
        digest: hash,
        replica: this.id,
      });
      this.ownCheckpoints.set(height, checkpoint);
      this.persist({ kind: 'checkpoint', message: checkpoint });
      this.broadcast(checkpoint);
      this.addCheckpoint(checkpoint);
    }
    this.gcDelivered();
  }

  private onCheckpoint(from: number, checkpoint: Checkpoint): void {
    const { seq } = checkpoint;
    if (!Number.isSafeInteger(seq) || seq <= 0 || seq % this.limits.checkpointInterval !== 0) return;
    if (seq <= this.stable.seq) {
      // The same old checkpoint twice from its own signer: it is re-sending because it never saw
      // that checkpoint become stable, so hand it our proof. Relayed proofs are not such pings.
      if (from !== checkpoint.replica) return;
      const key = `${checkpoint.replica}:${seq}`;
      if (this.staleCheckpointSeen.has(key)) this.helpLaggard(checkpoint.replica);
      else if (
        this.staleCheckpointSeen.size <
        this.n * (this.limits.watermarkWindow / this.limits.checkpointInterval + 2)
      ) {
        this.staleCheckpointSeen.add(key);
      }
      return;
    }
    if (!this.verify(checkpoint)) return;
    this.addCheckpoint(checkpoint);
  }

  private addCheckpoint(checkpoint: Checkpoint): void {
    let bySender = this.checkpoints.get(checkpoint.seq);
    if (bySender === undefined) {
      bySender = new Map();
      this.checkpoints.set(checkpoint.seq, bySender);
    }
    if (bySender.has(checkpoint.replica)) return;
    bySender.set(checkpoint.replica, checkpoint);
    this.boundCheckpoints(checkpoint.replica);
    if (checkpoint.seq > this.highWatermark) this.noteAhead(checkpoint);
    const matching = [...bySender.values()].filter((c) => c.digest === checkpoint.digest);
    if (matching.length >= this.quorum) {
      matching.sort((a, b) => a.replica - b.replica);
      this.advanceStable({
        seq: checkpoint.seq,
        digest: checkpoint.digest,
        proof: matching.slice(0, this.quorum),
      });
    }
  }

  /** A replica keeps at most a few checkpoint messages per sender above its stable checkpoint. */
  private boundCheckpoints(replica: number): void {
    const perSenderMax = this.limits.watermarkWindow / this.limits.checkpointInterval + 2;
    const seqs = [...this.checkpoints.entries()].filter(([, m]) => m.has(replica)).map(([s]) => s);
    if (seqs.length <= perSenderMax) return;
    seqs.sort((a, b) => a - b);
    const victim = this.checkpoints.get(seqs[0]!);
    victim?.delete(replica);
    if (victim?.size === 0) this.checkpoints.delete(seqs[0]!);
  }

  /** Moves the low watermark to a checkpoint proved by 2f+1 signatures, and collects garbage below it. */
  private advanceStable(checkpoint: StableCheckpoint): void {
    if (checkpoint.seq <= this.stable.seq) return;
    const known = this.committedDigest(checkpoint.seq);
    this.checkSafety(
      known === undefined || known === checkpoint.digest,
      `stable checkpoint at ${checkpoint.seq} disagrees with the block committed here`,
    );
    this.stable = checkpoint;
    this.staleCheckpointSeen.clear();
    this.persist({ kind: 'stable-checkpoint', checkpoint });
    for (const seq of [...this.slots.keys()]) if (seq <= checkpoint.seq) this.slots.delete(seq);
    for (const seq of [...this.checkpoints.keys()]) if (seq <= checkpoint.seq) this.checkpoints.delete(seq);
    for (const seq of [...this.ownCheckpoints.keys()])
      if (seq < checkpoint.seq) this.ownCheckpoints.delete(seq);
    for (const seq of [...this.waitingParent.keys()])
      if (seq <= checkpoint.seq) this.waitingParent.delete(seq);
    for (const [digest, v] of [...this.validity]) if (v.seq <= checkpoint.seq) this.validity.delete(digest);
    for (const [replica, seq] of [...this.aheadSeq])
      if (seq <= this.highWatermark) this.aheadSeq.delete(replica);
    this.gcDelivered();
    if (this.delivered < checkpoint.seq) this.startTransfer(checkpoint.seq);
    // Pre-prepares for the seq just above the new low watermark may have waited on it.
    const next = this.waitingParent.get(checkpoint.seq + 1);
    if (next !== undefined) {
      this.waitingParent.delete(next.seq);
      this.acceptPrePrepare(next);
    }
    this.tryPropose();
  }

  private gcDelivered(): void {
    const below = Math.min(this.stable.seq, this.executed.height);
    for (const seq of [...this.deliveredDigests.keys()]) if (seq < below) this.deliveredDigests.delete(seq);
  }

  /** Sends the proof of our stable checkpoint to a replica whose checkpoint is older (rate-limited). */
  private helpLaggard(replica: number): void {
    if (!Number.isSafeInteger(replica) || replica < 0 || replica >= this.n || replica === this.id) return;
    const last = this.lastHelpMs.get(replica);
    if (last !== undefined && this.nowMs - last < this.limits.retransmitMs) return;
    this.lastHelpMs.set(replica, this.nowMs);
    for (const checkpoint of this.stable.proof) this.send(replica, checkpoint);
  }

  // -------------------------------------------------------------------------------------------
  // Being behind: state transfer

  /** f+1 replicas voting beyond our high watermark: at least one honest one is ahead of us. */
  private noteAhead(message: { replica: ValidatorId; seq: Height }): void {
    if (message.replica === this.id) return;
    const previous = this.aheadSeq.get(message.replica) ?? 0;
    if (message.seq > previous) this.aheadSeq.set(message.replica, message.seq);
    const ahead = [...this.aheadSeq.values()].filter((s) => s > this.highWatermark).sort((a, b) => b - a);
    // The block at that seq may not be committed anywhere yet; a peer answers with what it has.
    const target = ahead[this.f];
    if (target !== undefined) this.startTransfer(target);
  }

  private startTransfer(target: number, probe = false): void {
    if (target <= this.delivered) return;
    if (this.transfer !== undefined) {
      if (target > this.transfer.target && !probe) this.transfer.target = target as Height;
      return;
    }
    this.transfer = {
      probe,
      target: target as Height,
      peer: this.nextPeer(),
      sentAtMs: this.nowMs,
      attempts: 0,
    };
    this.requestChunk();
  }

  private nextPeer(): ValidatorId {
    this.transferCursor = (this.transferCursor + 1) % this.n;
    if (this.transferCursor === this.id) this.transferCursor = (this.transferCursor + 1) % this.n;
    return this.transferCursor as ValidatorId;
  }

  private requestChunk(): void {
    const t = this.transfer;
    assert(t !== undefined, 'a chunk belongs to a transfer');
    const fromHeight = this.delivered + 1;
    const toHeight = Math.min(t.target, this.delivered + this.limits.stateTransferBlocksPerRequestMax);
    t.sentAtMs = this.nowMs;
    this.out.push({
      kind: 'request-blocks',
      to: t.peer,
      fromHeight: fromHeight as Height,
      toHeight: toHeight as Height,
    });
  }

  private onBlocks(event: BlocksEvent<B>): void {
    if (!Array.isArray(event.blocks)) return;
    let progressed = false;
    for (const item of event.blocks.slice(0, this.limits.stateTransferBlocksPerRequestMax)) {
      if (!isWellFormedCertifiedBlock(item, this.n, this.isBlock)) break;
      const height = this.app.height(item.block);
      if (height <= this.delivered) continue;
      if (height !== this.delivered + 1) break;
      const digest = this.app.digest(item.block);
      if (this.app.parent(item.block) !== this.deliveredHash) break;
      if (item.certificate.height !== height || item.certificate.blockHash !== digest) break;
      if (this.app.checkBody(item.block) !== null) break;
      if (!this.certificateValid(item.certificate)) break;
      const known = this.committedDigest(height);
      this.checkSafety(
        known === undefined || known === digest,
        `state transfer conflicts at height ${height}`,
      );
      const slot = this.inWindow(height) ? this.slot(height) : undefined;
      if (slot !== undefined && slot.committed === undefined) {
        slot.committed = { digest, block: item.block, certificate: item.certificate };
      }
      this.deliver(item.block, item.certificate);
      progressed = true;
    }
    this.tryDeliver();
    if (this.transfer !== undefined && progressed && this.delivered < this.transfer.target) {
      this.transfer.attempts = 0;
      this.requestChunk();
    }
    this.tryPropose();
  }

  /** A commit certificate: 2f+1 distinct known validators, valid commit signatures over the digest. */
  private certificateValid(cert: CommitCertificate): boolean {
    if (!Array.isArray(cert.signatures) || cert.signatures.length < this.quorum) return false;
    if (cert.signatures.length > this.n) return false;
    const payload = commitPayload(this.chainId, cert.view, cert.height, cert.blockHash);
    const seen = new Set<number>();
    for (const { validator, signature } of cert.signatures) {
      if (!Number.isSafeInteger(validator) || validator < 0 || validator >= this.n || seen.has(validator))
        return false;
      seen.add(validator);
      if (!this.config.verifier.verify(Domain.pbftCommit, payload, signature, validator)) return false;
    }
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // View change

  private suspectPrimary(): void {
    if (this.currentStatus === 'normal') this.startViewChange((this.currentView + 1) as View);
  }

  private startViewChange(newView: View): void {
    assert(newView > this.currentView, `views only grow (${this.currentView} -> ${newView})`);
    this.currentView = newView;
    this.currentStatus = 'view-change';
    this.viewChangeDeadlineMs = undefined;
    this.consecutiveViewChanges++;
    this.resetViewState();
    this.announceViewChange();
  }

  /** Signs, persists (with the view) and broadcasts this replica's VIEW-CHANGE for its current view. */
  private announceViewChange(): void {
    const newView = this.currentView;
    const prepared = [...this.slots.values()]
      .filter((s) => s.prepared !== undefined && s.seq > this.stable.seq)
      .sort((a, b) => a.seq - b.seq)
      .map((s) => s.prepared!);
    const vc = this.sign<ViewChange<B>>({
      kind: 'view-change',
      newView,
      checkpoint: this.stable,
      prepared,
      replica: this.id,
    });
    this.ownViewChange = vc;
    this.viewChanges.set(this.id, vc);
    this.lastRetransmitMs = this.nowMs;
    this.persist(
      { kind: 'view', view: newView, status: 'view-change' },
      { kind: 'view-change', message: vc },
    );
    this.broadcast(vc);
    this.checkViewChangeQuorum();
  }

  /** Forgets everything tied to the old view; prepared certificates and commits survive. */
  private resetViewState(): void {
    for (const [seq, slot] of [...this.slots]) {
      slot.prePrepare = undefined;
      slot.validation = 'none';
      slot.prepares.clear();
      slot.commits.clear();
      slot.sentPrepare = undefined;
      slot.sentCommit = undefined;
      slot.preparedInView = false;
      if (slot.prepared === undefined && slot.committed === undefined) this.slots.delete(seq);
    }
    this.waitingParent.clear();
    this.proposedKeys.clear();
    this.unproposed.clear();
    this.unproposedBytes = 0;
    for (const [k, entry] of this.pending) {
      this.unproposed.set(k, entry);
      this.unproposedBytes += entry.bytes;
    }
  }

  private onViewChange(vc: ViewChange<B>): void {
    if (!Number.isSafeInteger(vc.newView) || vc.replica === this.id) return;
    if (
      vc.newView < this.currentView ||
      (vc.newView === this.currentView && this.currentStatus === 'normal')
    ) {
      // The sender is behind: show it the new-view that started our current view.
      if (this.currentStatus === 'normal' && this.lastNewView !== undefined) this.sendNewViewTo(vc.replica);
      return;
    }
    const existing = this.viewChanges.get(vc.replica);
    if (existing !== undefined && existing.newView >= vc.newView) return;
    if (!this.validViewChange(vc)) return;
    this.viewChanges.set(vc.replica, vc);
    // Join: f+1 replicas ask for views above ours, so at least one honest replica does.
    const higher = [...this.viewChanges.values()]
      .filter((v) => v.replica !== this.id && v.newView > this.currentView)
      .map((v) => v.newView)
      .sort((a, b) => b - a);
    const join = higher[this.f];
    if (join !== undefined) {
      this.startViewChange(Math.min(...higher) as View);
      return;
    }
    this.checkViewChangeQuorum();
  }

  /**
   * The new-view did not come in time. Move on to the next view only when 2f+1 replicas (own
   * included) already ask for this view or a later one; otherwise wait for them: running ahead
   * alone would only widen the gap between honest replicas. Together with the join rule in
   * onViewChange (f+1 others ask for higher views), honest replicas converge on one view.
   */
  private viewChangeTimerExpired(): void {
    const others = [...this.viewChanges.values()].filter((v) => v.replica !== this.id);
    const atOrAbove = others.filter((v) => v.newView >= this.currentView).length + 1;
    if (atOrAbove >= this.quorum) {
      this.startViewChange((this.currentView + 1) as View);
    } else {
      this.viewChangeDeadlineMs = this.nowMs + this.currentTimeoutMs(this.limits.viewChangeTimeoutMs);
    }
  }

  private sendNewViewTo(replica: number): void {
    if (replica < 0 || replica >= this.n || replica === this.id || this.lastNewView === undefined) return;
    const last = this.lastHelpMs.get(replica);
    if (last !== undefined && this.nowMs - last < this.limits.retransmitMs) return;
    this.lastHelpMs.set(replica, this.nowMs);
    this.send(replica, this.lastNewView);
  }

  /** A view-change is valid when its signature, checkpoint proof and every prepared certificate check. */
  private validViewChange(vc: ViewChange<B>): boolean {
    if (!this.verify(vc)) return false;
    const ck = vc.checkpoint;
    if (!this.validCheckpointProof(ck)) return false;
    if (!Array.isArray(vc.prepared) || vc.prepared.length > this.limits.watermarkWindow) return false;
    let lastSeq = ck.seq;
    for (const cert of vc.prepared) {
      const pp = cert.prePrepare;
      if (pp.seq <= lastSeq || pp.seq > ck.seq + this.limits.watermarkWindow) return false;
      lastSeq = pp.seq;
      if (!this.validPreparedCertificate(cert, vc.newView)) return false;
    }
    return true;
  }

  private validCheckpointProof(ck: StableCheckpoint): boolean {
    if (!Number.isSafeInteger(ck.seq) || ck.seq < 0) return false;
    if (ck.seq === 0) return ck.digest === this.config.genesisHash;
    if (ck.seq % this.limits.checkpointInterval !== 0) return false;
    if (ck.seq === this.stable.seq && ck.digest === this.stable.digest) return true;
    if (!Array.isArray(ck.proof) || ck.proof.length > this.n) return false;
    const signers = new Set<number>();
    for (const c of ck.proof) {
      if (c.kind !== 'checkpoint' || c.seq !== ck.seq || c.digest !== ck.digest || signers.has(c.replica))
        return false;
      if (!this.verify(c)) return false;
      signers.add(c.replica);
    }
    return signers.size >= this.quorum;
  }

  private validPreparedCertificate(cert: PreparedCertificate<B>, beforeView: number): boolean {
    const pp = cert.prePrepare;
    if (pp.kind !== 'pre-prepare' || !Number.isSafeInteger(pp.view) || pp.view >= beforeView) return false;
    const primary = primaryOf(pp.view, this.n);
    if (pp.replica !== primary) return false;
    if (this.app.digest(pp.block) !== pp.digest || this.app.height(pp.block) !== pp.seq) return false;
    if (!this.verify(pp)) return false;
    if (!Array.isArray(cert.prepares)) return false;
    const signers = new Set<number>();
    for (const p of cert.prepares) {
      if (p.kind !== 'prepare' || p.view !== pp.view || p.seq !== pp.seq || p.digest !== pp.digest)
        return false;
      if (p.replica === primary || signers.has(p.replica) || !this.verify(p)) return false;
      signers.add(p.replica);
    }
    return signers.size >= 2 * this.f;
  }

  private checkViewChangeQuorum(): void {
    if (this.currentStatus !== 'view-change') return;
    const forView = [...this.viewChanges.values()].filter((v) => v.newView === this.currentView);
    if (forView.length < this.quorum) return;
    // PBFT's timer: once 2f+1 replicas want this view, the new-view is due within one timeout.
    const due = this.nowMs + this.currentTimeoutMs(this.limits.viewChangeTimeoutMs);
    this.viewChangeDeadlineMs = Math.min(this.viewChangeDeadlineMs ?? due, due);
    if (this.isPrimary()) this.sendNewView(forView);
  }

  private sendNewView(forView: ViewChange<B>[]): void {
    forView.sort((a, b) => (a.replica === this.id ? -1 : b.replica === this.id ? 1 : a.replica - b.replica));
    const chosen = forView.slice(0, this.quorum);
    const { checkpoint, entries } = computeNewViewSet<B>(
      chosen,
      (b) => this.app.parent(b),
      this.limits.watermarkWindow,
      this.faults.newViewIgnoresPrepared ?? false,
    );
    const prePrepares = entries.map((e) =>
      this.sign<PrePrepare<B>>({
        kind: 'pre-prepare',
        view: this.currentView,
        seq: e.seq,
        digest: e.digest,
        block: e.block,
        replica: this.id,
      }),
    );
    const nv = this.sign<NewView<B>>({
      kind: 'new-view',
      view: this.currentView,
      viewChanges: chosen,
      prePrepares,
      replica: this.id,
    });
    // Durable first (the O set and the view), then the new-view, then what the new view brings.
    this.persist(...prePrepares.map((message) => ({ kind: 'pre-prepare' as const, message })), {
      kind: 'view',
      view: nv.view,
      status: 'normal',
    });
    this.broadcast(nv);
    this.installNewView(nv, checkpoint, true);
  }

  private onNewView(nv: NewView<B>): void {
    if (!Number.isSafeInteger(nv.view) || nv.replica !== primaryOf(nv.view, this.n) || nv.replica === this.id)
      return;
    if (nv.view < this.currentView || (nv.view === this.currentView && this.currentStatus === 'normal'))
      return;
    const checkpoint = this.checkNewView(nv);
    if (checkpoint === undefined) {
      // A new-view whose O set does not follow from its V set proves its sender faulty: reject it
      // and let the view-change timer move on to the next primary.
      if (nv.view === this.currentView) {
        this.viewChangeDeadlineMs ??= this.nowMs + this.currentTimeoutMs(this.limits.viewChangeTimeoutMs);
      }
      return;
    }
    this.installNewView(nv, checkpoint);
  }

  /** Validates V and recomputes O from it; returns the chosen checkpoint, or undefined to reject. */
  private checkNewView(nv: NewView<B>): StableCheckpoint | undefined {
    if (!this.verify(nv)) return undefined;
    if (
      !Array.isArray(nv.viewChanges) ||
      nv.viewChanges.length < this.quorum ||
      nv.viewChanges.length > this.n
    ) {
      return undefined;
    }
    const senders = new Set<number>();
    for (const vc of nv.viewChanges) {
      if (vc.kind !== 'view-change' || vc.newView !== nv.view || senders.has(vc.replica)) return undefined;
      senders.add(vc.replica);
      const mine = this.viewChanges.get(vc.replica);
      const alreadyChecked = mine !== undefined && mine.signature === vc.signature && mine === vc;
      if (!alreadyChecked && !this.validViewChange(vc)) return undefined;
    }
    // Under the test-only fault, backups run the same broken rule, so the broken variant is
    // internally consistent and only the simulator's checkers can tell.
    const { checkpoint, entries } = computeNewViewSet<B>(
      nv.viewChanges,
      (b) => this.app.parent(b),
      this.limits.watermarkWindow,
      this.faults.newViewIgnoresPrepared ?? false,
    );
    if (!Array.isArray(nv.prePrepares) || nv.prePrepares.length !== entries.length) return undefined;
    for (let i = 0; i < entries.length; i++) {
      const pp = nv.prePrepares[i]!;
      const e = entries[i]!;
      if (pp.kind !== 'pre-prepare' || pp.view !== nv.view || pp.replica !== nv.replica) return undefined;
      if (pp.seq !== e.seq || pp.digest !== e.digest || this.app.digest(pp.block) !== pp.digest)
        return undefined;
      if (!this.verify(pp)) return undefined;
    }
    return checkpoint;
  }

  /** Enters normal operation in nv.view: adopt its checkpoint, accept its O set, replay buffers. */
  private installNewView(nv: NewView<B>, checkpoint: StableCheckpoint, persisted = false): void {
    assert(nv.view >= this.currentView, 'a new-view never moves back');
    if (nv.view > this.currentView || this.currentStatus === 'normal') {
      this.currentView = nv.view;
      this.resetViewState();
    }
    this.currentStatus = 'normal';
    this.viewChangeDeadlineMs = undefined;
    this.lastNewView = nv;
    this.viewStartMs = this.nowMs;
    if (!persisted) this.persist({ kind: 'view', view: nv.view, status: 'normal' });
    for (const [replica, vc] of [...this.viewChanges])
      if (vc.newView <= nv.view) this.viewChanges.delete(replica);
    if (checkpoint.seq > this.stable.seq) this.advanceStable(checkpoint);
    for (const entry of this.pending.values()) entry.sinceMs = Math.max(entry.sinceMs, this.nowMs);
    this.out.push({ kind: 'view-changed', view: nv.view, primary: nv.replica });
    // Every O entry must be in place before the primary may propose above them: a proposal made in
    // between (say, from a cached validation answer) would put a second block at an O seq.
    this.installing = true;
    try {
      for (const pp of nv.prePrepares) if (this.inWindow(pp.seq)) this.acceptPrePrepare(pp);
    } finally {
      this.installing = false;
    }
    this.replayFuture();
    this.tryPropose();
  }

  // -------------------------------------------------------------------------------------------
  // Buffers for later views

  private bufferFuture(from: number, message: PrePrepare<B> | Prepare | Commit): void {
    const perPeer = Math.max(1, Math.floor(this.limits.futureMessagesMax / this.n));
    const count = this.futureByPeer.get(from) ?? 0;
    if (count >= perPeer) return;
    this.futureByPeer.set(from, count + 1);
    this.future.push({ from, message });
    this.futureTopView.set(
      message.replica,
      Math.max(this.futureTopView.get(message.replica) ?? 0, message.view),
    );
    // f+1 replicas already work in a later view: we missed a view change, so join it.
    if (this.currentStatus === 'normal') {
      const sorted = [...this.futureTopView.values()]
        .filter((v) => v > this.currentView)
        .sort((a, b) => b - a);
      const join = sorted[this.f];
      if (join !== undefined) this.startViewChange(join as View);
    }
  }

  private replayFuture(): void {
    const buffered = this.future;
    this.future = [];
    this.futureByPeer.clear();
    this.futureTopView.clear();
    for (const { from, message } of buffered) {
      if (message.view < this.currentView) continue;
      if (message.view > this.currentView || this.currentStatus !== 'normal') {
        this.bufferFuture(from, message);
        continue;
      }
      if (message.kind === 'pre-prepare') this.onPrePrepare(from, message, true);
      else if (message.kind === 'prepare') this.onPrepare(from, message, true);
      else this.onCommit(from, message, true);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Time

  private onTick(nowMs: number): void {
    assert(Number.isFinite(nowMs) && nowMs >= this.nowMs, `time never goes back (${this.nowMs} -> ${nowMs})`);
    this.nowMs = nowMs;
    if (this.currentStatus === 'normal') {
      const oldest = this.pending.values().next();
      const timeout = this.currentTimeoutMs(this.limits.requestTimeoutMs);
      if (!oldest.done && nowMs - oldest.value.sinceMs >= timeout) {
        // A request this replica has seen stayed uncommitted too long: the primary may censor it.
        this.startViewChange((this.currentView + 1) as View);
      }
    } else {
      // Unlike PBFT, the timer also runs while fewer than 2f+1 replicas want this view (with twice
      // the slack). Otherwise honest replicas split over two views (some timed out once more than
      // others, then crashed or lost messages) wait for each other forever when the faulty ones stay
      // silent: f+1 are needed to pull a replica up, 2f+1 to start a view. Moving on one view at a
      // time, each replica with its own backoff, they meet again in a common view.
      this.viewChangeDeadlineMs ??= nowMs + 2 * this.currentTimeoutMs(this.limits.viewChangeTimeoutMs);
      if (nowMs >= this.viewChangeDeadlineMs) this.viewChangeTimerExpired();
    }
    this.tryPropose();
    const t = this.transfer;
    if (t !== undefined && nowMs - t.sentAtMs >= 2 * this.limits.retransmitMs) {
      t.attempts++;
      if (t.probe || t.attempts >= this.n - 1) {
        this.transfer = undefined;
      } else {
        t.peer = this.nextPeer();
        this.requestChunk();
      }
    }
    if (nowMs - this.lastRetransmitMs >= this.limits.retransmitMs) {
      this.lastRetransmitMs = nowMs;
      this.retransmit();
    }
    this.catchUpIfStalled();
  }

  /**
   * f+1 replicas committed a seq above what we delivered, yet nothing was delivered for a while:
   * at least one honest replica has that block with its certificate, so fetch it instead of waiting
   * for votes that others will not re-send once they have delivered it.
   */
  private catchUpIfStalled(): void {
    const stallMs = 2 * this.limits.retransmitMs;
    if (
      this.transfer !== undefined ||
      this.nowMs - Math.max(this.lastDeliveryMs, this.lastStallFetchMs) < stallMs
    ) {
      return;
    }
    let target = 0;
    for (const [seq, slot] of this.slots) {
      if (seq <= this.delivered || seq <= target) continue;
      const others = new Set([...slot.commits.values()].map((c) => c.replica).filter((r) => r !== this.id));
      if (others.size >= this.f + 1) target = seq;
    }
    // Without such evidence a replica may still have missed blocks that nobody will announce
    // again (it was down, or cut off, when the network went idle): probe one peer now and then,
    // often while it waits for something (changing view alone, holding requests), rarely when idle.
    const waiting = this.currentStatus === 'view-change' || this.pending.size > 0;
    const probeMs = waiting ? 2 * stallMs : 10 * this.limits.retransmitMs;
    let probe = false;
    if (target === 0 && this.nowMs - Math.max(this.lastDeliveryMs, this.lastStallFetchMs) >= probeMs) {
      target = this.delivered + this.limits.stateTransferBlocksPerRequestMax;
      probe = true;
    }
    if (target === 0) return;
    this.lastStallFetchMs = this.nowMs;
    this.startTransfer(target, probe);
  }

  /**
   * Messages can be lost; PBFT assumes they are eventually re-sent. Every retransmitMs the replica
   * re-sends what others may still need from it: its view-change while changing view, its votes
   * for seqs it has not delivered, and its checkpoints above the stable one. The primary re-sends
   * a pre-prepare only until it is prepared (blocks are large; by then 2f backups hold it). A
   * replica that missed what others no longer re-send catches up by state transfer (see
   * catchUpIfStalled).
   */
  private retransmit(): void {
    if (this.currentStatus === 'view-change') {
      if (this.ownViewChange?.newView === this.currentView) this.broadcast(this.ownViewChange);
      return;
    }
    for (const seq of [...this.slots.keys()].sort((a, b) => a - b)) {
      const slot = this.slots.get(seq)!;
      if (slot.prePrepare === undefined || seq <= this.delivered) continue;
      if (this.isPrimary() && !slot.preparedInView) this.broadcast(slot.prePrepare);
      if (slot.sentPrepare !== undefined) this.broadcast(slot.sentPrepare);
      if (slot.sentCommit !== undefined) this.broadcast(slot.sentCommit);
    }
    for (const checkpoint of this.ownCheckpoints.values()) {
      if (checkpoint.seq > this.stable.seq) this.broadcast(checkpoint);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Crash recovery

  /** Rebuilds what the replica promised from its persisted records (see PersistRecord). */
  private restore(restored: RestoredState<B>): void {
    let view = 0;
    let status: ReplicaStatus = 'normal';
    let stable = this.stable;
    let lastViewChange: ViewChange<B> | undefined;
    for (const record of restored.records) {
      if (record.kind === 'view') {
        assert(record.view >= view, 'persisted views never decrease');
        view = record.view;
        status = record.status;
      } else if (record.kind === 'stable-checkpoint') {
        if (record.checkpoint.seq > stable.seq) stable = record.checkpoint;
      } else if (record.kind === 'view-change') {
        lastViewChange = record.message;
      }
    }
    this.currentView = view as View;
    this.currentStatus = status;
    this.stable = stable;
    if (this.executed.height < stable.seq) this.restartTransferTarget = stable.seq;
    if (lastViewChange !== undefined && lastViewChange.newView === view) {
      this.ownViewChange = lastViewChange;
      if (status === 'view-change') this.viewChanges.set(this.id, lastViewChange);
    }
    for (const record of restored.records) {
      switch (record.kind) {
        case 'prepared': {
          const pp = record.certificate.prePrepare;
          if (!this.inWindow(pp.seq)) break;
          const slot = this.slot(pp.seq);
          if (slot.prepared === undefined || slot.prepared.prePrepare.view <= pp.view)
            slot.prepared = record.certificate;
          break;
        }
        case 'pre-prepare': {
          const pp = record.message;
          if (pp.view !== view || status !== 'normal' || !this.inWindow(pp.seq)) break;
          this.slot(pp.seq).prePrepare = pp;
          break;
        }
        case 'prepare':
        case 'commit': {
          const m = record.message;
          if (m.view !== view || status !== 'normal' || !this.inWindow(m.seq)) break;
          const slot = this.slot(m.seq);
          if (m.kind === 'prepare') {
            slot.sentPrepare = m;
            slot.prepares.set(this.id, m);
          } else {
            slot.sentCommit = m;
            slot.commits.set(this.id, m);
            if (m.seq > this.executed.height)
              this.restartTransferTarget = Math.max(this.restartTransferTarget, m.seq);
          }
          break;
        }
        case 'checkpoint':
          if (record.message.seq >= stable.seq) this.ownCheckpoints.set(record.message.seq, record.message);
          break;
        default:
          break;
      }
    }
    for (const slot of this.slots.values()) {
      const pp = slot.prePrepare;
      if (pp === undefined) continue;
      // What we sent stays consistent: a prepare or commit only ever matches our pre-prepare.
      assert(
        slot.sentPrepare === undefined || slot.sentPrepare.digest === pp.digest,
        'restored prepare matches',
      );
      assert(
        slot.sentCommit === undefined || slot.sentCommit.digest === pp.digest,
        'restored commit matches',
      );
      if (slot.sentCommit !== undefined && slot.prepared?.prePrepare.view === view)
        slot.preparedInView = true;
      for (const key of this.app.requestKeys(pp.block)) this.proposedKeys.set(requestKeyString(key), pp.seq);
    }
  }

  /** First step after construction: re-ask the app about restored blocks, catch up, re-announce. */
  private resume(): void {
    for (const seq of [...this.slots.keys()].sort((a, b) => a - b)) this.tryValidate(seq);
    if (this.restartTransferTarget > this.delivered) this.startTransfer(this.restartTransferTarget);
    if (this.currentStatus === 'view-change') {
      // The persisted view-change may have been compacted away: then announce a fresh one.
      if (this.ownViewChange?.newView === this.currentView) {
        this.broadcast(this.ownViewChange);
        this.checkViewChangeQuorum();
      } else {
        this.announceViewChange();
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Invariants checked after every step

  private checkInvariants(): void {
    assert(this.executed.height <= this.delivered, 'executed never passes delivered');
    assert(this.pending.size <= this.limits.pendingRequestsMax, 'pending requests within their limit');
    assert(this.future.length <= this.limits.futureMessagesMax, 'future messages within their limit');
    assert(this.unproposed.size <= this.pending.size, 'unproposed requests are pending requests');
    assert(this.slots.size <= this.limits.watermarkWindow, 'the log stays within the watermark window');
    assert(
      this.waitingParent.size <= this.limits.watermarkWindow,
      'waiting pre-prepares stay within the window',
    );
    for (const seq of this.slots.keys()) {
      assert(seq > this.stable.seq && seq <= this.highWatermark, `slot ${seq} inside the window`);
    }
  }
}
