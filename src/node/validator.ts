/**
 * A running validator: the facade the HTTP API calls (src/api/facade.ts), on top of the replica
 * driver, the ledger application, the store and the peer transport.
 *
 * The article's flow (validateHash): the current hash is answered from the in-memory committed
 * state (a Map lookup, no I/O). A new hash is looked up on the validator-facing config server B;
 * if B offers it as a version newer than the current one, this node makes an (unsigned) attest
 * transaction, hands it to its replica and gossips it to every other validator (so a faulty primary
 * cannot censor it), then waits for the truth: the block that makes the hash current commits
 * ('added'), a committed block makes the attest impossible ('rejected'), or the deadline passes
 * ('timeout').
 * Concurrent validations of one hash share one attest.
 */
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type {
  BlockEvent,
  BlockRecord,
  ContentCopy,
  DeviceReportView,
  NodeFacade,
  NodeStatus,
  PeerStatus,
  Readiness,
  SubmitOptions,
  SubmitResult,
  TxRecord,
  ValidateOptions,
  ValidateResult,
} from '../api/facade.ts';
import { newestRollouts, rolloutProofOf } from '../api/rollouts.ts';
import { signedPart } from '../consensus/messages.ts';
import type { Replica } from '../consensus/replica.ts';
import type { Action, ConsensusMessage } from '../consensus/types.ts';
import {
  frameBytesMax,
  pendingValidationsMax,
  storeQueryRowsMax,
  validateHashTimeoutMs,
} from '../constants.ts';
import type { TargetProof, TxProof } from '../device/contract.ts';
import {
  type BlockHash,
  type DeviceId,
  type Hash32Hex,
  type Height,
  isHash32Hex,
  type TargetName,
  type TxId,
  type ValidatorId,
  type View,
} from '../encoding/brand.ts';
import { assert } from '../errors.ts';
import {
  attestTx,
  checkTransaction,
  quorum,
  signHeartbeat,
  targetKey,
  txProofFor,
  txReadKeys,
} from '../ledger/index.ts';
import type {
  CommitCertificate,
  DeviceEntry,
  Genesis,
  RolloutEntry,
  TargetEntry,
  Transaction,
} from '../ledger/types.ts';
import type { Transport } from '../net/transport.ts';
import type { Store, StoredBlock, TargetHistoryItem } from '../storage/store.ts';
import type { BlockState, LedgerApp, NodeBlock } from './application.ts';
import { type ConfigSourceClient, offerProblem } from './config-source.ts';
import { ContentKeeper } from './content.ts';
import type { NodeMessage, ReplicaDriver } from './driver.ts';
import { HeartbeatSchedule } from './heartbeat.ts';
import { sanitizeCertifiedBlocks, sanitizeConsensusMessage } from './messages.ts';
import type { NodeMetrics } from './metrics.ts';
import type { ConsensusVerifier, TxSignatureChecker } from './verifier.ts';

interface Waiter<T> {
  readonly resolve: (value: T) => void;
}

/** One attest this node submitted for a (target, hash), and everyone waiting for its outcome. */
interface PendingValidation {
  readonly target: TargetName;
  readonly sha256: Hash32Hex;
  readonly tx: Transaction;
  readonly txId: TxId;
  readonly waiters: Set<Waiter<ValidateResult>>;
  /** When the attest was last handed to consensus (wall clock). */
  submittedMs: number;
  /** Not yet re-checked on a committed block (see onCommitted). */
  fresh: boolean;
}

/** A transaction submitted through submitTx, waiting for its commit. */
interface PendingSubmission {
  readonly tx: Transaction;
  readonly waiters: Set<Waiter<SubmitResult>>;
  /** Not yet re-checked on a committed block (see onCommitted). */
  fresh: boolean;
}

export interface ValidatorNodeOptions {
  readonly id: ValidatorId;
  readonly genesis: Genesis;
  readonly key: KeyObject;
  readonly store: Store;
  readonly app: LedgerApp;
  readonly transport: Transport;
  readonly configSource: ConfigSourceClient;
  readonly txChecker: TxSignatureChecker;
  readonly metrics: NodeMetrics;
  readonly logger: Logger;
  readonly validateTimeoutMs?: number;
  /** When given, consensus message signatures are pre-verified on the thread pool into its cache. */
  readonly consensusVerifier?: ConsensusVerifier;
}

export class ValidatorNode implements NodeFacade {
  readonly genesis: Genesis;
  readonly id: ValidatorId;
  readonly #key: KeyObject;
  readonly #store: Store;
  readonly #app: LedgerApp;
  readonly #transport: Transport;
  readonly #configSource: ConfigSourceClient;
  readonly #txChecker: TxSignatureChecker;
  readonly #metrics: NodeMetrics;
  readonly #log: Logger;
  readonly #validateTimeoutMs: number;
  readonly #startedMs = Date.now();
  #driver: ReplicaDriver | null = null;
  /** (target, sha256) -> the attest in flight for it. */
  readonly #validations = new Map<string, PendingValidation>();
  readonly #validationsByTx = new Map<TxId, PendingValidation>();
  readonly #submissions = new Map<TxId, PendingSubmission>();
  /** What peers' messages showed: highest view and sequence number per validator. */
  readonly #peerViews = new Map<number, { view: number; seq: number; lastMs: number }>();
  /** Per peer, the tail of its messages waiting for signature pre-verification. */
  readonly #peerQueues = new Map<number, Promise<void>>();
  readonly #consensusVerifier: ConsensusVerifier | undefined;
  readonly #blockListeners = new Set<(event: BlockEvent) => void>();
  readonly #content: ContentKeeper;
  readonly #heartbeat: HeartbeatSchedule;
  /** This node's heartbeat in flight (the schedule's pending one), to hand in again if lost. */
  #pendingHeartbeat: Transaction | null = null;

  constructor(options: ValidatorNodeOptions) {
    this.genesis = options.genesis;
    this.id = options.id;
    this.#key = options.key;
    this.#store = options.store;
    this.#app = options.app;
    this.#transport = options.transport;
    this.#configSource = options.configSource;
    this.#txChecker = options.txChecker;
    this.#metrics = options.metrics;
    this.#log = options.logger;
    this.#validateTimeoutMs = options.validateTimeoutMs ?? validateHashTimeoutMs;
    this.#consensusVerifier = options.consensusVerifier;
    this.#content = new ContentKeeper({
      genesis: options.genesis,
      store: options.store,
      configSource: options.configSource,
      logger: options.logger.child({ part: 'content' }),
    });
    this.#heartbeat = new HeartbeatSchedule(options.genesis.policy.heartbeatIntervalMs, Date.now());
  }

  /**
   * Called often (start.ts): submits a heartbeat transaction when the chain has been idle for the
   * policy's interval (primary) or twice that (backups); see heartbeat.ts.
   */
  heartbeatTick(nowMs: number = Date.now()): void {
    if (this.#driver === null) return;
    const replica = this.replica;
    const isPrimary = replica.primary === this.id && replica.status !== 'view-change';
    // Without a quorum of validators reachable nothing can commit: do not even try.
    const reachable = this.#transport.peerStatus().filter((p) => p.connected).length + 1;
    if (reachable < quorum(this.genesis.validators.length)) return;
    const next = this.#heartbeat.next(nowMs, isPrimary);
    if (next === null) return;
    if (next === 'again') {
      if (this.#pendingHeartbeat !== null) this.submitToConsensus(this.#pendingHeartbeat);
      return;
    }
    // A heartbeat's timestamp must be above this validator's last one on the ledger.
    const last = this.#app.committed.state.heartbeat(this.id)?.timestampMs ?? -1;
    const tx = signHeartbeat(this.genesis, this.id, this.#key, Math.max(Math.floor(nowMs), last + 1));
    const txId = this.#app.idOf(tx);
    this.#txChecker.markOwn(txId);
    this.#heartbeat.submitted(txId, nowMs);
    this.#pendingHeartbeat = tx;
    this.#log.debug({ txId, primary: isPrimary }, 'the chain is idle: submitting a heartbeat');
    this.submitToConsensus(tx);
  }

  attach(driver: ReplicaDriver): void {
    this.#driver = driver;
    // Copies this node should hold but lacks (it may have stopped between a commit and the fetch).
    void this.#content.scanRecent(this.#store.tip().height);
  }

  get metrics(): Registry {
    return this.#metrics.registry;
  }

  private get replica(): Replica<NodeBlock, Transaction> {
    if (this.#driver === null) throw new Error('the node is not started');
    return this.#driver.replica;
  }

  // --- Status ------------------------------------------------------------------------------------

  status(): NodeStatus {
    const replica = this.replica;
    const transportPeers = new Map(this.#transport.peerStatus().map((p) => [p.id as number, p]));
    const now = Date.now();
    const peers: PeerStatus[] = this.genesis.validators
      .filter((v) => v.id !== this.id)
      .map((v) => {
        const link = transportPeers.get(v.id);
        const seen = this.#peerViews.get(v.id);
        return {
          id: v.id,
          apiUrl: v.apiUrl,
          peerAddress: v.peerAddress,
          connected: link?.connected ?? false,
          lastMessageAgoMs: link?.lastSeenMs == null ? null : Math.max(0, now - link.lastSeenMs),
          view: seen === undefined ? null : (seen.view as View),
          height: seen === undefined ? null : (seen.seq as Height),
        };
      });
    const committed = this.#app.committed;
    return {
      id: this.id,
      chainId: this.genesis.chainId,
      view: replica.view,
      height: committed.header.height,
      tipHash: committed.hash,
      primary: replica.primary,
      viewChanging: replica.status === 'view-change',
      pendingTxs: replica.pendingRequests,
      uptimeMs: now - this.#startedMs,
      peers,
    };
  }

  ready(): Readiness {
    const reasons: string[] = [];
    const connected = this.#transport.peerStatus().filter((p) => p.connected).length;
    const needed = quorum(this.genesis.validators.length);
    if (connected + 1 < needed) {
      reasons.push(
        `only ${connected + 1} of ${this.genesis.validators.length} validators are reachable (this one included); ` +
          `a quorum is ${needed}: start the others or check their peer ports`,
      );
    }
    const height: number = this.#app.committed.header.height;
    let highest = height;
    for (const seen of this.#peerViews.values()) highest = Math.max(highest, seen.seq - 1);
    // Peers' sequence numbers run ahead of their commits by the pipeline; only a large gap is lag.
    if (highest - height > 16) {
      reasons.push(`catching up: at height ${height}, peers are at about ${highest}`);
    }
    return { ready: reasons.length === 0, reasons };
  }

  // --- Reads -------------------------------------------------------------------------------------

  tip(): BlockRecord {
    const tip = this.#store.tip();
    const stored = this.#store.blockByHeight(tip.height);
    if (stored === null) throw new Error(`the store has no block at its tip height ${tip.height}`);
    return toRecord(stored);
  }

  blocks(from: Height, limit: number): readonly BlockRecord[] {
    return this.#store.blocks(from, limit).map(toRecord);
  }

  blockByHeight(height: Height): BlockRecord | undefined {
    const stored = this.#store.blockByHeight(height);
    return stored === null ? undefined : toRecord(stored);
  }

  blockByHash(hash: BlockHash): BlockRecord | undefined {
    const stored = this.#store.blockByHash(hash);
    return stored === null ? undefined : toRecord(stored);
  }

  tx(id: TxId): TxRecord | undefined {
    const stored = this.#store.txById(id);
    if (stored === null) return undefined;
    const block = this.#store.blockByHeight(stored.height);
    if (block === null) return undefined;
    return {
      txId: stored.txId,
      tx: stored.tx,
      height: stored.height,
      blockHash: block.hash,
      index: stored.index,
    };
  }

  currentTarget(target: TargetName): TargetEntry | undefined {
    return this.#app.committed.state.target(target);
  }

  targetHistory(target: TargetName, limit: number): readonly TargetEntry[] {
    const newest = newestHistory(this.#store, target, limit).reverse();
    return newest.map((item) => ({
      kind: 'target',
      target: item.target,
      source: item.type,
      version: item.version,
      sha256: item.sha256,
      size: item.size,
      mediaType: mediaTypeOf(this.#store, item.txId),
      height: item.height,
      txId: item.txId,
    }));
  }

  // --- Proofs and the fleet ---------------------------------------------------------------------

  /**
   * Header, certificate and state of one block: the committed BlockState holds the header and the
   * state together, and the store appended that block (with its certificate) before the state
   * advanced, all in this synchronous call, so no commit can fall between the reads.
   */
  targetProof(target: TargetName): TargetProof | undefined {
    const committed = this.#app.committed;
    if (committed.header.height === 0) return undefined;
    const certificate = this.#store.certificate(committed.header.height);
    assert(
      certificate !== null && certificate.blockHash === committed.hash,
      `the store holds the certificate of the committed block at height ${committed.header.height}`,
    );
    return {
      target,
      header: committed.header,
      certificate,
      entry: committed.state.target(target) ?? null,
      stateProof: committed.state.proof(targetKey(target)),
      rollout: rolloutProofOf(committed.state, target),
    };
  }

  /** A rollout's entry in the committed state (a Map lookup, no I/O). */
  rollout(rolloutId: string): RolloutEntry | undefined {
    return this.#app.committed.state.rollout(rolloutId);
  }

  /**
   * The committed rollouts, newest first, at most `limit`. The state holds no index by kind, so
   * this walks the in-memory state once (no I/O); rollouts are few and the walk is bounded by the
   * state's size.
   */
  rollouts(limit: number): readonly RolloutEntry[] {
    return newestRollouts(this.#app.committed.state.entries(), limit);
  }

  txProof(id: TxId): TxProof | undefined {
    const data = this.#store.txProofData(id);
    if (data === null) return undefined;
    assert(data.certificate !== null, `transaction ${id} is in a block with a commit certificate`);
    const position = txProofFor({ header: data.header, txs: data.txs }, data.index);
    assert(position.txCount === data.header.txCount, 'the header counts the transactions of its block');
    const tx = data.txs[data.index];
    assert(tx !== undefined, 'the stored index points into the block');
    return {
      txId: data.txId,
      tx,
      height: data.height,
      header: data.header,
      certificate: data.certificate,
      index: position.index,
      txCount: position.txCount,
      inclusion: position.inclusion,
    };
  }

  device(id: DeviceId): DeviceEntry | undefined {
    return this.#app.committed.state.device(id);
  }

  devices(afterId: string | undefined, limit: number): readonly DeviceEntry[] {
    return this.#store.devices(afterId === undefined ? { limit } : { afterDeviceId: afterId, limit });
  }

  targetReports(target: TargetName, limit: number): readonly DeviceReportView[] {
    return this.#store.reportsForTarget(target, { limit }).map((r) => ({
      deviceId: r.deviceId,
      seq: r.seq,
      version: r.version,
      sha256: r.sha256,
      status: r.status,
      detail: r.detail,
      height: r.height,
      txId: r.txId,
    }));
  }

  content(sha256: Hash32Hex): ContentCopy | undefined {
    const bytes = this.#store.getContent(sha256);
    if (bytes === null) return undefined;
    return { sha256, bytes, mediaType: this.#content.mediaType(sha256) ?? 'application/octet-stream' };
  }

  onBlock(listener: (event: BlockEvent) => void): () => void {
    this.#blockListeners.add(listener);
    return () => this.#blockListeners.delete(listener);
  }

  // --- The article's flow ------------------------------------------------------------------------

  async validateHash(target: TargetName, sha256: Hash32Hex, opts: ValidateOptions): Promise<ValidateResult> {
    const started = performance.now();
    const result = await this.decide(target, sha256, opts);
    this.#metrics.validations.inc({ outcome: result.outcome });
    this.#metrics.validationLatency.observe(
      { outcome: result.outcome },
      (performance.now() - started) / 1000,
    );
    return result;
  }

  private async decide(
    target: TargetName,
    sha256: Hash32Hex,
    opts: ValidateOptions,
  ): Promise<ValidateResult> {
    const current = this.#app.committed.state.target(target);
    if (current !== undefined && current.sha256 === sha256) return { outcome: 'current', entry: current };
    if (!isHash32Hex(sha256))
      return { outcome: 'rejected', reason: 'a configuration hash is 64 lower-case hex characters' };

    const key = `${target}\u0000${sha256}`;
    const pending = this.#validations.get(key);
    if (pending !== undefined) {
      // An attest undecided for a whole deadline may have been lost (a view change, a dropped
      // link): hand it in again. The replica de-duplicates it if it is still pending.
      if (Date.now() - pending.submittedMs > this.#validateTimeoutMs) {
        pending.submittedMs = Date.now();
        this.submitToConsensus(pending.tx);
      }
      return this.wait(pending, opts);
    }

    const askedB = performance.now();
    const lookup = await this.#configSource.lookup(target, sha256, current?.version ?? 0);
    const lookupMs = performance.now() - askedB;
    if (lookupMs > 50) this.#log.debug({ target, lookupMs }, 'config server B answered slowly');
    if (!lookup.ok) return { outcome: 'unavailable', reason: lookup.reason };
    const offer = lookup.offer;
    if (offer === undefined) {
      return { outcome: 'rejected', reason: `config server B does not offer ${sha256} for target ${target}` };
    }
    // The state may have moved while B answered.
    const now = this.#app.committed.state.target(target);
    if (now !== undefined && now.sha256 === sha256) return { outcome: 'current', entry: now };
    if (now !== undefined && offer.version <= now.version) {
      return {
        outcome: 'rejected',
        reason: `version ${offer.version} is not newer than the current version ${now.version}: a rollback is refused`,
      };
    }
    const again = this.#validations.get(key);
    if (again !== undefined) return this.wait(again, opts);
    if (this.#validations.size >= pendingValidationsMax) {
      return {
        outcome: 'unavailable',
        reason: 'too many validations are in flight on this validator; retry shortly',
      };
    }

    const tx = attestTx(this.genesis.chainId, target, sha256, offer);
    const txId = this.#app.idOf(tx);
    const entry: PendingValidation = {
      target,
      sha256,
      tx,
      txId,
      waiters: new Set(),
      submittedMs: Date.now(),
      fresh: true,
    };
    this.#validations.set(key, entry);
    this.#validationsByTx.set(txId, entry);
    const waiting = this.wait(entry, opts);
    this.submitToConsensus(tx);
    return waiting;
  }

  private wait(entry: PendingValidation, opts: ValidateOptions): Promise<ValidateResult> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter<ValidateResult> = {
        resolve: (value) => {
          if (timer !== undefined) clearTimeout(timer);
          opts.signal?.removeEventListener('abort', onAbort);
          entry.waiters.delete(waiter);
          resolve(value);
        },
      };
      const onAbort = () => waiter.resolve({ outcome: 'timeout', reason: 'the client went away' });
      timer = setTimeout(
        () =>
          waiter.resolve({
            outcome: 'timeout',
            reason: `consensus did not decide within ${this.#validateTimeoutMs} ms; the hash may still be added: ask again`,
          }),
        this.#validateTimeoutMs,
      );
      entry.waiters.add(waiter);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  // --- Transactions ----------------------------------------------------------------------------

  async submitTx(raw: Transaction, opts: SubmitOptions): Promise<SubmitResult> {
    let tx: Transaction;
    let id: TxId;
    try {
      // One parse gives the transaction and its id (and fills the node's parse cache).
      ({ tx, id } = this.#app.parse(raw));
    } catch (error) {
      const e = error as { code?: string; message: string };
      return { status: 'rejected', txId: '' as TxId, code: e.code ?? 'TX_INVALID', reason: e.message };
    }
    const stored = this.#store.txById(id);
    if (stored !== null) {
      const block = this.#store.blockByHeight(stored.height);
      if (block !== null)
        return { status: 'committed', txId: id, height: stored.height, blockHash: block.hash };
    }
    const state = this.#app.committed.state;
    await this.#txChecker.check(id, tx, state);
    const check = checkTransaction(this.genesis, state, tx, this.#app.checkOptions);
    if (!check.ok)
      return { status: 'rejected', txId: id, code: check.error.code, reason: check.error.message };
    const problem = await this.releaseProblem(tx);
    if (problem !== null) {
      return {
        status: 'rejected',
        txId: id,
        code: 'ARTIFACT_UNVERIFIED',
        reason: `validator ${this.id} would vote against this release: ${problem}`,
      };
    }
    let entry = this.#submissions.get(id);
    const first = entry === undefined;
    if (entry === undefined) {
      entry = { tx, waiters: new Set(), fresh: true };
      this.#submissions.set(id, entry);
    }
    const pendingEntry = entry;
    const result = new Promise<SubmitResult>((resolve) => {
      const timer = setTimeout(
        () => waiter.resolve({ status: 'pending', txId: id }),
        Math.max(0, opts.waitMs),
      );
      const waiter: Waiter<SubmitResult> = {
        resolve: (value) => {
          clearTimeout(timer);
          pendingEntry.waiters.delete(waiter);
          if (pendingEntry.waiters.size === 0 && value.status !== 'pending') this.#submissions.delete(id);
          resolve(value);
        },
      };
      pendingEntry.waiters.add(waiter);
    });
    if (first) this.submitToConsensus(tx);
    return result;
  }

  /** Hands a transaction to the local replica and gossips it to every other validator. */
  private submitToConsensus(tx: Transaction): void {
    // No artifact prefetch here: the one path that hands in a release (submitTx) has already
    // awaited releaseProblem, whose checkArtifact verdict the config-source client caches.
    this.#app.noteTx(tx);
    this.#transport.broadcast({ kind: 'tx', tx } satisfies NodeMessage);
    this.#driver?.push({ kind: 'request', request: tx });
  }

  // --- Events from the driver and the transport ----------------------------------------------------

  /** A block is durably committed: answer everyone whose outcome it decides. */
  onCommitted(state: BlockState, block: NodeBlock, _certificate: CommitCertificate): void {
    this.#metrics.committedBlocks.inc();
    this.#metrics.committedTxs.inc(block.txs.length);
    this.#content.onCommitted(block.txs);
    const txIds = block.txs.map((tx) => this.#app.idOf(tx));
    // Idle time counts from the block's own timestamp: its age is what a device checks.
    this.#heartbeat.committed(state.header.timestampMs, txIds);
    if (this.#blockListeners.size > 0) {
      const event: BlockEvent = {
        height: state.header.height,
        hash: state.hash,
        timestampMs: state.header.timestampMs,
        txCount: block.txs.length,
        txIds,
      };
      for (const listener of [...this.#blockListeners]) listener(event);
    }
    if (this.#validations.size === 0 && this.#submissions.size === 0) return;
    const height = state.header.height;
    for (const [index, tx] of block.txs.entries()) {
      const id = txIds[index];
      assert(id !== undefined, 'every committed transaction has an id');
      const submission = this.#submissions.get(id);
      if (submission !== undefined) {
        this.#submissions.delete(id);
        for (const w of [...submission.waiters])
          w.resolve({ status: 'committed', txId: id, height, blockHash: state.hash });
      }
      const body = tx.body;
      if (body.type !== 'attest' && body.type !== 'release') continue;
      const key = `${body.target}\u0000${body.sha256}`;
      const pending = this.#validations.get(key);
      if (pending === undefined) continue;
      // Whoever submitted it, the hash is now in a committed block of this chain.
      this.finishValidation(pending, { outcome: 'added', txId: id, height, blockHash: state.hash });
    }
    // What is left may have become impossible (a newer version committed meanwhile), or be
    // forgotten: nobody has waited for it for a long time. A transaction's validity depends only
    // on the state entries the ledger's txReadKeys names (its target, its device, a rollout and
    // its target's pointer), so an entry already checked on an earlier block is checked again
    // only when this block changed one of them; an entry created since the last block (perhaps
    // checked on a state this block has since replaced) always is.
    const committedState = state.state;
    const changed = new Set<string>(state.changes.map((c) => c.key));
    const needsCheck = (entry: { tx: Transaction; fresh: boolean }): boolean => {
      const recheck = entry.fresh || txReadKeys(committedState, entry.tx).some((k) => changed.has(k));
      entry.fresh = false;
      return recheck;
    };
    const forgetBeforeMs = Date.now() - 10 * this.#validateTimeoutMs;
    for (const pending of [...this.#validations.values()]) {
      if (pending.waiters.size === 0 && pending.submittedMs < forgetBeforeMs) {
        this.finishValidation(pending, { outcome: 'timeout', reason: 'forgotten' });
        continue;
      }
      if (!needsCheck(pending)) continue;
      const check = checkTransaction(this.genesis, committedState, pending.tx, this.#app.checkOptions);
      if (!check.ok) {
        this.finishValidation(pending, { outcome: 'rejected', reason: check.error.message });
      }
    }
    for (const [id, submission] of [...this.#submissions]) {
      if (!needsCheck(submission)) continue;
      const check = checkTransaction(this.genesis, committedState, submission.tx, this.#app.checkOptions);
      if (!check.ok) {
        this.#submissions.delete(id);
        for (const w of [...submission.waiters]) {
          w.resolve({ status: 'rejected', txId: id, code: check.error.code, reason: check.error.message });
        }
      }
    }
  }

  private finishValidation(pending: PendingValidation, result: ValidateResult): void {
    this.#validations.delete(`${pending.target}\u0000${pending.sha256}`);
    this.#validationsByTx.delete(pending.txId);
    for (const w of [...pending.waiters]) w.resolve(result);
  }

  onReply(action: Extract<Action<NodeBlock>, { kind: 'reply' }>): void {
    const id = action.requestId as TxId;
    const result = action.result;
    if (result.status !== 'rejected') return; // commits are answered from the delivered block
    this.#heartbeat.refused(id);
    const pending = this.#validationsByTx.get(id);
    if (pending !== undefined) {
      this.finishValidation(pending, {
        outcome: 'unavailable',
        reason: `consensus refused the attest: ${result.reason}`,
      });
    }
    const submission = this.#submissions.get(id);
    if (submission !== undefined) {
      this.#submissions.delete(id);
      for (const w of [...submission.waiters]) {
        w.resolve({ status: 'rejected', txId: id, code: 'TX_REFUSED', reason: result.reason });
      }
    }
  }

  /** Everything a peer sends: PBFT messages, gossiped transactions, state transfer. */
  onPeerMessage(from: ValidatorId, message: Record<string, unknown>): void {
    const driver = this.#driver;
    if (driver === null) return;
    switch (message.kind) {
      case 'tx':
        this.onGossipedTx(message.tx);
        return;
      case 'get-blocks':
        driver.answerBlocks(from, Number(message.fromHeight), Number(message.toHeight), blocksAnswerBytesMax);
        return;
      case 'blocks': {
        const blocks = sanitizeCertifiedBlocks(message.blocks, this.genesis.validators.length);
        if (blocks !== null && blocks.length > 0) driver.push({ kind: 'blocks', from, blocks });
        return;
      }
      default: {
        const consensus = sanitizeConsensusMessage(
          message,
          from,
          this.genesis.validators.length,
          this.#app.parse,
        );
        if (consensus === null) {
          this.#log.debug({ from, kind: String(message.kind) }, 'dropped a malformed peer message');
          return;
        }
        this.notePeer(from, consensus);
        const verifier = this.#consensusVerifier;
        if (verifier === undefined || !verifier.checksAhead) {
          // Nothing is checked ahead (signatures on the event loop): the replica's step verifies.
          // This peer's queue below is then never used, so its messages stay in order.
          this.#driver?.push({ kind: 'message', from, message: consensus });
          return;
        }
        // Check the signature on the thread pool first; messages from one peer stay in order.
        const { domain, payload } = signedPart(this.genesis.chainId, consensus);
        const previous = this.#peerQueues.get(from) ?? Promise.resolve();
        const next = previous
          .then(() => verifier.preverify(domain, payload, consensus.signature, consensus.replica))
          .then(() => this.#driver?.push({ kind: 'message', from, message: consensus }));
        this.#peerQueues.set(from, next);
        void next.then(() => {
          if (this.#peerQueues.get(from) === next) this.#peerQueues.delete(from);
        });
      }
    }
  }

  private onGossipedTx(raw: unknown): void {
    let tx: Transaction;
    let id: TxId;
    try {
      ({ tx, id } = this.#app.parse(raw));
    } catch {
      return;
    }
    // Warm the config-server cache now: the proposal carrying this attest follows in a few
    // milliseconds, and its validation then needs no round trip to B.
    const body = tx.body;
    if (body.type === 'attest' || (body.type === 'release' && body.content === undefined)) {
      void this.#configSource.lookup(
        body.target,
        body.sha256,
        this.#app.committed.state.target(body.target)?.version ?? 0,
      );
    }
    void this.#txChecker
      .check(id, tx, this.#app.committed.state)
      .then(async (ok) => ok && (await this.releaseProblem(tx)) === null)
      .then((ok) => {
        if (!ok) return;
        this.#app.noteTx(tx);
        this.#driver?.push({ kind: 'request', request: tx });
      });
  }

  /**
   * Why this validator would vote against a block carrying this release (its config server does
   * not offer it as that version, or the artifact's download does not match), or null. Checked
   * before a release enters the replica, so an honest primary never proposes a block that the
   * honest validators refuse (which would only end in view changes).
   */
  private async releaseProblem(tx: Transaction): Promise<string | null> {
    const body = tx.body;
    if (body.type !== 'release' || body.content !== undefined) return null;
    const current = this.#app.committed.state.target(body.target)?.version ?? 0;
    const [lookup, artifact] = await Promise.all([
      this.#configSource.lookup(body.target, body.sha256, current),
      this.#configSource.checkArtifact(body.sha256, body.size),
    ]);
    if (!lookup.ok) return lookup.reason;
    return offerProblem(body, lookup.offer) ?? (artifact.ok ? null : artifact.reason);
  }

  private notePeer(from: ValidatorId, message: ConsensusMessage<NodeBlock>): void {
    const seen = this.#peerViews.get(from) ?? { view: 0, seq: 0, lastMs: 0 };
    if ('view' in message && typeof message.view === 'number') seen.view = Math.max(seen.view, message.view);
    if ('newView' in message && typeof message.newView === 'number')
      seen.view = Math.max(seen.view, message.newView);
    if ('seq' in message && typeof message.seq === 'number') seen.seq = Math.max(seen.seq, message.seq);
    seen.lastMs = Date.now();
    this.#peerViews.set(from, seen);
  }

  /** Answers every waiter with 'unavailable' (the node is shutting down). */
  close(): void {
    this.#content.close();
    for (const pending of [...this.#validations.values()]) {
      this.finishValidation(pending, { outcome: 'unavailable', reason: 'the validator is shutting down' });
    }
    for (const [id, submission] of this.#submissions) {
      for (const w of [...submission.waiters]) w.resolve({ status: 'pending', txId: id });
    }
    this.#submissions.clear();
  }
}

/** A state-transfer answer leaves room under the frame limit for its envelope. */
const blocksAnswerBytesMax = frameBytesMax - 512 * 1024;

/** Pages of history read to find a target's newest entries; each page is one bounded query. */
const historyPagesMax = 64;

/**
 * The newest `limit` history items of a target, oldest first. The store pages forward from a
 * height, so this starts a little below the tip and moves the start down until enough items are
 * found, then pages forward to the end (items at a page boundary are de-duplicated by id).
 */
function newestHistory(store: Store, target: string, limit: number): TargetHistoryItem[] {
  const tip = store.tip().height;
  let span = 16;
  for (;;) {
    const from = Math.max(0, tip - span);
    const items: TargetHistoryItem[] = [];
    const seen = new Set<string>();
    let cursor = from;
    for (let page = 0; page < historyPagesMax; page++) {
      const rows = store.targetHistory(target, { fromHeight: cursor, limit: storeQueryRowsMax });
      let added = 0;
      for (const row of rows) {
        if (seen.has(row.txId)) continue;
        seen.add(row.txId);
        items.push(row);
        added++;
      }
      const last = rows[rows.length - 1];
      if (rows.length < storeQueryRowsMax || last === undefined || added === 0) break;
      cursor = last.height;
    }
    if (items.length >= limit || from === 0) return items.slice(-limit);
    span *= 4;
  }
}

function toRecord(stored: StoredBlock): BlockRecord {
  return { hash: stored.hash, block: stored.block, certificate: stored.certificate };
}

function mediaTypeOf(store: Store, txId: TxId): string {
  const stored = store.txById(txId);
  const body = stored?.tx.body;
  return body !== undefined && body.type === 'release' ? body.mediaType : 'application/octet-stream';
}
