/**
 * The replica driver: feeds events into the pure PBFT replica and performs the actions it returns,
 * in order, as etcd's raft node performs a Ready: persist records durably (synchronous=FULL) before
 * any later send; deliver committed blocks to storage in one durable transaction each, then report
 * them executed; run external validity checks asynchronously and feed their results back.
 *
 * Events are queued and stepped one at a time, never re-entrantly: an action that produces a new
 * event (a delivered block becoming executed, a validation finishing) queues it behind the actions
 * of the current step, so the replica always sees a consistent order.
 */
import type { Logger } from 'pino';
import { describeMessage } from '../consensus/messages.ts';
import type { Replica } from '../consensus/replica.ts';
import type { Action, CertifiedBlock, Event, PersistRecord } from '../consensus/types.ts';
import {
  consensusRecordsPerAppendMax,
  pendingRequestsMax,
  stateTransferBlocksPerRequestMax,
} from '../constants.ts';
import type { Height, ValidatorId } from '../encoding/brand.ts';
import { assert } from '../errors.ts';
import type { CommitCertificate, Transaction } from '../ledger/types.ts';
import type { Transport } from '../net/transport.ts';
import type { Store } from '../storage/store.ts';
import type { BlockState, LedgerApp, NodeBlock } from './application.ts';
import { recordSeq, toStored } from './records.ts';

export type NodeEvent = Event<NodeBlock, Transaction>;

/**
 * Uncommitted proposed blocks at which new requests wait to enter the replica together. One: under
 * load the four validators share the machine's cores, so a second block in flight does not finish
 * sooner, it only splits the waiting requests into two smaller blocks, each costing every node its
 * votes and durable writes. Four interleaved pairs of `npm run bench -- system` runs (128 and 256
 * clients) gave 1,799/1,622, 1,681/1,621, 1,744/1,720 and 2,136/1,968 attests/s for one against
 * two. An idle network is unaffected: a request with nothing in flight is never held.
 */
const admissionInFlightMax = 1;
/**
 * The longest a request waits for admission. Under load a block commits well within it, so held
 * requests enter together when a block commits; a shorter hold expired before that and sent a
 * stream of small extra blocks into the pipeline, each costing every node a prepare round (about
 * half the transactions per block and a quarter more CPU per transaction were measured at 50 ms).
 * It stays far below the view-change timeout, so a silent primary is still suspected in time.
 */
const admissionHoldMsMax = 250;
/** Events stepped before their persist records are written together. */
const stepBatchMax = 256;
/** Records per durable write; a rare larger batch takes several writes, all before any send. */
const recordsPerWriteMax = Math.min(1024, consensusRecordsPerAppendMax);

export interface DriverHooks {
  /** A block is durably stored and the app's committed state advanced. */
  readonly onCommitted: (state: BlockState, block: NodeBlock, certificate: CommitCertificate) => void;
  readonly onReply: (action: Extract<Action<NodeBlock>, { kind: 'reply' }>) => void;
  readonly onViewChanged: (view: number, primary: number) => void;
  /** A fatal inconsistency (a certified block that does not apply): the node must stop. */
  readonly onFatal: (error: Error) => void;
}

export interface DriverOptions {
  readonly replica: Replica<NodeBlock, Transaction>;
  readonly app: LedgerApp;
  readonly store: Store;
  readonly transport: Transport;
  readonly logger: Logger;
  readonly hooks: DriverHooks;
  /** The latest persisted 'view' record at start (from the restored log), if any. */
  readonly lastViewRecord?: PersistRecord<NodeBlock>;
  readonly onBlockValidated?: (valid: boolean, ms: number) => void;
}

/** Messages between nodes that are not PBFT messages: transaction gossip and state transfer. */
export type NodeMessage =
  | { readonly kind: 'tx'; readonly tx: unknown }
  | { readonly kind: 'get-blocks'; readonly fromHeight: number; readonly toHeight: number }
  | { readonly kind: 'blocks'; readonly blocks: readonly CertifiedBlock<NodeBlock>[] };

export class ReplicaDriver {
  readonly #replica: Replica<NodeBlock, Transaction>;
  readonly #app: LedgerApp;
  readonly #store: Store;
  readonly #transport: Transport;
  readonly #log: Logger;
  readonly #hooks: DriverHooks;
  readonly #onBlockValidated: DriverOptions['onBlockValidated'];
  readonly #queue: NodeEvent[] = [];
  #pumping = false;
  #scheduled = false;
  #highestProposed = 0;
  #held: NodeEvent[] = [];
  #holdTimer: NodeJS.Timeout | undefined;
  #batchTimer: NodeJS.Timeout | undefined;
  #lastTickMs = 0;
  #stopped = false;
  #lastViewRecord: PersistRecord<NodeBlock> | undefined;
  #stableSeq = 0;
  /** Validations in flight, so one proposal is checked once however often it is asked about. */
  readonly #validating = new Set<string>();
  /** Protocol tracing (every step and message) at log level trace, for debugging a network. */
  readonly #trace: boolean;

  constructor(options: DriverOptions) {
    this.#replica = options.replica;
    this.#app = options.app;
    this.#store = options.store;
    this.#transport = options.transport;
    this.#log = options.logger;
    this.#hooks = options.hooks;
    this.#lastViewRecord = options.lastViewRecord;
    this.#onBlockValidated = options.onBlockValidated;
    this.#stableSeq = options.replica.stableCheckpoint.seq;
    this.#trace = options.logger.isLevelEnabled('trace');
  }

  get replica(): Replica<NodeBlock, Transaction> {
    return this.#replica;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#batchTimer !== undefined) clearTimeout(this.#batchTimer);
    if (this.#holdTimer !== undefined) clearTimeout(this.#holdTimer);
    this.#held = [];
    this.#queue.length = 0;
  }

  /**
   * Queues an event. The queue is stepped on the next turn of the event loop, so events that
   * arrive together (several frames in one read, a burst of requests) are stepped as one batch
   * whose persist records take one durable write: under load that is one fsync per batch instead
   * of one per message, and persist-before-send still holds because every record of the batch is
   * durable before any of the batch's other actions is performed.
   */
  push(event: NodeEvent): void {
    if (this.#stopped) return;
    if (this.#trace && event.kind !== 'tick') this.#log.trace({ event: describeEvent(event) }, 'step');
    if (event.kind === 'request' && this.admissionHeld(event)) return;
    if (event.kind === 'message' && event.message.kind === 'pre-prepare') {
      this.#highestProposed = Math.max(this.#highestProposed, event.message.seq);
    }
    const idle = event.kind === 'request' && this.#highestProposed <= this.#replica.lastDelivered;
    this.#queue.push(event);
    if (event.kind === 'request') this.tickAfterBatchWait();
    // Idle fast path: nothing is in flight, so there is nothing to batch with. The request arrived
    // at the replica's last clock reading, which is usually older than the batch wait, so a fresh
    // tick right behind it lets the primary propose in this same pump instead of after a timer.
    if (idle) this.tick();
    if (this.#pumping || this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.pump());
  }

  /**
   * Admission batching. Every block costs each node a few durable writes whatever its size, so a
   * primary that proposes a tiny block for every few requests while earlier blocks are still in
   * flight spends the network's capacity on overhead. While at least admissionInFlightMax proposed
   * blocks are uncommitted, new requests wait here and enter the replica together when a block
   * commits (or after admissionHoldMsMax, so nothing waits long and a silent primary is still
   * suspected in time). The buffer is bounded; beyond it requests go straight in.
   */
  private admissionHeld(event: Extract<NodeEvent, { kind: 'request' }>): boolean {
    const inFlight = this.#highestProposed - this.#replica.lastDelivered;
    if (inFlight < admissionInFlightMax || this.#held.length >= pendingRequestsMax) return false;
    this.#held.push(event);
    if (this.#holdTimer === undefined) {
      this.#holdTimer = setTimeout(() => this.releaseHeld(), admissionHoldMsMax);
    }
    return true;
  }

  private releaseHeld(): void {
    if (this.#holdTimer !== undefined) clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    if (this.#held.length === 0 || this.#stopped) return;
    const held = this.#held;
    this.#held = [];
    for (const event of held) this.#queue.push(event);
    this.tickAfterBatchWait();
    if (!this.#pumping && !this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.pump());
    }
  }

  /**
   * The primary proposes when its oldest request has waited the replica's batch wait, which it
   * notices on a tick; one tick just after that moment saves up to a tick period of latency.
   */
  private tickAfterBatchWait(): void {
    if (this.#batchTimer !== undefined || this.#stopped) return;
    this.#batchTimer = setTimeout(() => {
      this.#batchTimer = undefined;
      this.#lastTickMs = Math.max(this.#lastTickMs, Date.now());
      this.push({ kind: 'tick', nowMs: this.#lastTickMs });
    }, this.#replica.limits.batchWaitMs + 1);
  }

  /** Time for the replica: never decreasing, from the wall clock. */
  tick(): void {
    this.#lastTickMs = Math.max(this.#lastTickMs, Date.now());
    this.push({ kind: 'tick', nowMs: this.#lastTickMs });
  }

  private pump(): void {
    this.#scheduled = false;
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#queue.length > 0 && !this.#stopped) {
        const actions: Action<NodeBlock>[] = [];
        for (let stepped = 0; stepped < stepBatchMax && this.#queue.length > 0; stepped++) {
          const next = this.#queue.shift() as NodeEvent;
          for (const action of this.#replica.step(next)) actions.push(action);
        }
        const records: PersistRecord<NodeBlock>[] = [];
        for (const action of actions) if (action.kind === 'persist') records.push(...action.records);
        for (let i = 0; i < records.length; i += recordsPerWriteMax) {
          this.persist(records.slice(i, i + recordsPerWriteMax));
        }
        this.perform(actions);
      }
    } finally {
      this.#pumping = false;
    }
  }

  private perform(actions: readonly Action<NodeBlock>[]): void {
    for (const action of actions) {
      if (this.#stopped) return;
      switch (action.kind) {
        case 'persist':
          // Already made durable, before any other action of the batch (see pump).
          break;
        case 'send':
          if (this.#trace) this.#log.trace({ to: action.to, m: describeMessage(action.message) }, 'send');
          this.#transport.send(action.to, action.message);
          break;
        case 'broadcast':
          if (action.message.kind === 'pre-prepare') {
            this.#highestProposed = Math.max(this.#highestProposed, action.message.seq);
            this.#log.debug(
              {
                seq: action.message.seq,
                txs: action.message.block.txs.length,
                pending: this.#replica.pendingRequests,
                held: this.#held.length,
              },
              'proposed',
            );
          }
          if (this.#trace) this.#log.trace({ m: describeMessage(action.message) }, 'broadcast');
          this.#transport.broadcast(action.message);
          break;
        case 'deliver':
          this.deliver(action.height, action.block, action.certificate);
          if (this.#held.length > 0) this.releaseHeld();
          break;
        case 'validate':
          this.validate(action);
          break;
        case 'request-blocks':
          this.#transport.send(action.to, {
            kind: 'get-blocks',
            fromHeight: action.fromHeight,
            toHeight: action.toHeight,
          } satisfies NodeMessage);
          break;
        case 'reply':
          this.#hooks.onReply(action);
          break;
        case 'view-changed':
          this.#log.info({ view: action.view, primary: action.primary }, 'entered a new view');
          this.#hooks.onViewChanged(action.view, action.primary);
          break;
      }
    }
  }

  /**
   * Makes records durable before anything after them in the step happens. View records are stored
   * under the current stable checkpoint so pruning never loses the newest view, and when a new
   * stable checkpoint is persisted the newest view record is re-stored under it before the log
   * below it is pruned.
   */
  private persist(records: readonly PersistRecord<NodeBlock>[]): void {
    if (records.length === 0) return;
    const stored = records.map((record) => {
      if (record.kind === 'view') {
        this.#lastViewRecord = record;
        return toStored(record, this.#stableSeq);
      }
      return toStored(record);
    });
    this.#store.appendConsensusRecords(stored);
    for (const record of records) {
      if (record.kind !== 'stable-checkpoint') continue;
      const seq = recordSeq(record);
      if (seq <= this.#stableSeq) continue;
      this.#stableSeq = seq;
      if (this.#lastViewRecord !== undefined) {
        this.#store.appendConsensusRecords([toStored(this.#lastViewRecord, seq)]);
      }
      const pruned = this.#store.pruneConsensusRecords(seq);
      this.#log.debug({ seq, pruned }, 'pruned the consensus log below the stable checkpoint');
    }
  }

  private deliver(height: Height, block: NodeBlock, certificate: CommitCertificate): void {
    let next: BlockState;
    try {
      next = this.#app.commitState(block);
    } catch (error) {
      // A block with 2f+1 commit signatures that does not apply here means this node's state
      // disagrees with the quorum: continuing would serve a wrong chain.
      this.#hooks.onFatal(
        new Error(
          `committed block ${height} does not apply on this node's state: ${(error as Error).message}. ` +
            'This node disagrees with the quorum and has stopped; move its database (data/chain.sqlite in the ' +
            "validator's folder) away and restart it to fetch the chain from the other validators",
        ),
      );
      this.stop();
      return;
    }
    assert(next.header.height === height, 'deliver height matches the block');
    this.#store.appendBlock({
      block: { header: block.header, txs: block.txs },
      certificate,
      changes: next.changes,
    });
    this.#app.advance(next);
    this.#hooks.onCommitted(next, block, certificate);
    this.#queue.push({ kind: 'block-executed', height, hash: next.hash });
  }

  private validate(action: Extract<Action<NodeBlock>, { kind: 'validate' }>): void {
    const key = `${action.view}/${action.seq}/${action.digest}`;
    if (this.#validating.has(key)) return;
    this.#validating.add(key);
    const started = performance.now();
    this.#app
      .validate(action.block)
      .catch((error: unknown) => ({
        valid: false as const,
        reason: `validation failed: ${(error as Error).message}`,
      }))
      .then((result) => {
        this.#validating.delete(key);
        this.#onBlockValidated?.(result.valid, performance.now() - started);
        if (!result.valid) {
          this.#log.warn(
            { seq: action.seq, view: action.view, reason: result.reason },
            'voting against a proposed block',
          );
        }
        const base = {
          kind: 'validation-result' as const,
          view: action.view,
          seq: action.seq,
          digest: action.digest,
        };
        this.push(result.valid ? { ...base, valid: true } : { ...base, valid: false, reason: result.reason });
      });
  }

  /** A peer asks for committed blocks: answer from storage, bounded in count and bytes. */
  answerBlocks(from: ValidatorId, fromHeight: number, toHeight: number, bytesMax: number): void {
    const tip = this.#store.tip().height;
    if (!Number.isSafeInteger(fromHeight) || !Number.isSafeInteger(toHeight) || fromHeight < 1) return;
    const last = Math.min(toHeight, tip, fromHeight + stateTransferBlocksPerRequestMax - 1);
    if (last < fromHeight) return;
    const stored = this.#store.blocks(fromHeight, last - fromHeight + 1);
    const blocks: CertifiedBlock<NodeBlock>[] = [];
    let bytes = 0;
    for (const s of stored) {
      if (s.certificate === null) continue;
      const size = Buffer.byteLength(JSON.stringify(s.block)) + 2048;
      if (blocks.length > 0 && bytes + size > bytesMax) break;
      bytes += size;
      blocks.push({ block: s.block, certificate: s.certificate });
    }
    if (blocks.length > 0) this.#transport.send(from, { kind: 'blocks', blocks } satisfies NodeMessage);
  }
}

function describeEvent(event: NodeEvent): string {
  switch (event.kind) {
    case 'message':
      return `from ${event.from}: ${describeMessage(event.message)}`;
    case 'request':
      return 'request';
    case 'validation-result':
      return `validation v=${event.view} s=${event.seq} ${event.valid ? 'valid' : `invalid: ${event.reason}`}`;
    case 'block-executed':
      return `executed ${event.height}`;
    case 'blocks':
      return `${event.blocks.length} blocks from ${event.from}`;
    case 'tick':
      return 'tick';
  }
}
