/**
 * The facade: everything the HTTP layer needs from a running validator, and nothing more.
 *
 * The node (src/node) implements it; the API (src/api/server.ts) is built against it, so the API
 * can be tested in-process over a small in-memory implementation and the node can change its
 * internals freely. Reads that the node answers from memory are synchronous (the current-hash
 * check of POST /validateHash is the hot path and must stay a Map lookup); reads that may touch
 * the store return MaybePromise so a synchronous SQLite store and an asynchronous one both fit.
 *
 * Wiring (the node's side):
 *   import { buildApiServer } from '../api/server.ts';
 *   const app = await buildApiServer(facade, { logger });   // a fastify instance, not yet listening
 *   await app.listen({ host: '127.0.0.1', port: apiPort });
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { TargetProof, TxProof } from '../device/contract.ts';
import type {
  BlockHash,
  DeviceId,
  Hash32Hex,
  Height,
  TargetName,
  TxId,
  ValidatorId,
  View,
} from '../encoding/brand.ts';
import type {
  Block,
  CommitCertificate,
  DeviceEntry,
  DeviceReportBody,
  Genesis,
  RolloutEntry,
  TargetEntry,
  Transaction,
} from '../ledger/types.ts';

export type MaybePromise<T> = T | Promise<T>;

/** A committed block as stored: its hash, the block, and the certificate that committed it. */
export interface BlockRecord {
  readonly hash: BlockHash;
  readonly block: Block;
  /** The 2f+1 commit signatures this node holds; null for the genesis block. */
  readonly certificate: CommitCertificate | null;
}

/** Where a committed transaction is. */
export interface TxRecord {
  readonly txId: TxId;
  readonly tx: Transaction;
  readonly height: Height;
  readonly blockHash: BlockHash;
  /** Position of the transaction in its block's transaction list. */
  readonly index: number;
}

/** What this node knows about one other validator. */
export interface PeerStatus {
  readonly id: ValidatorId;
  readonly apiUrl: string;
  readonly peerAddress: string;
  /** True while an authenticated peer link to it is up. */
  readonly connected: boolean;
  /** Milliseconds since the last valid message from it; null if none yet. */
  readonly lastMessageAgoMs: number | null;
  /** The highest view and height its messages showed; null if unknown. */
  readonly view: View | null;
  readonly height: Height | null;
}

/** This node's own status. */
export interface NodeStatus {
  readonly id: ValidatorId;
  readonly chainId: string;
  readonly view: View;
  /** Height of the last committed block (0 = genesis only). */
  readonly height: Height;
  readonly tipHash: BlockHash;
  readonly primary: ValidatorId;
  /** True while this replica is in a view change (not accepting pre-prepares). */
  readonly viewChanging: boolean;
  /** Client requests (transactions) waiting to be ordered. */
  readonly pendingTxs: number;
  readonly uptimeMs: number;
  /** Every other validator of genesis, in id order. */
  readonly peers: readonly PeerStatus[];
}

export interface Readiness {
  /** Ready when caught up and at least a quorum of validators (itself included) is reachable. */
  readonly ready: boolean;
  /** Why not ready, in sentences an operator can act on; empty when ready. */
  readonly reasons: readonly string[];
}

/**
 * The article's flow for one hash, as decided by the node:
 * - current:     the hash is the target's current configuration on the ledger (no consensus ran);
 * - added:       an attest transaction for it was committed in block `height`;
 * - rejected:    the validators refused it (not offered by the validator-facing config server B,
 *                not newer than the current version, or the attest became invalid); nothing added;
 * - timeout:     no decision within the deadline; the caller must not treat it as either answer;
 * - unavailable: the node cannot decide right now (for example config server B is unreachable or
 *                the node is still catching up); like timeout, neither success nor failure.
 */
export type ValidateResult =
  | { readonly outcome: 'current'; readonly entry: TargetEntry }
  | {
      readonly outcome: 'added';
      readonly txId: TxId;
      readonly height: Height;
      readonly blockHash: BlockHash;
    }
  | { readonly outcome: 'rejected'; readonly reason: string }
  | { readonly outcome: 'timeout'; readonly reason: string }
  | { readonly outcome: 'unavailable'; readonly reason: string };

export interface ValidateOptions {
  /** Aborted when the HTTP client goes away; the node may stop waiting (not stop consensus). */
  readonly signal?: AbortSignal;
}

/**
 * The outcome of submitting a transaction:
 * - committed: in block `height`;
 * - rejected:  invalid (schema, signature, version, ...); `code` is the ledger's error code;
 * - pending:   accepted for ordering but not committed within the wait (or no wait was asked).
 */
export type SubmitResult =
  | {
      readonly status: 'committed';
      readonly txId: TxId;
      readonly height: Height;
      readonly blockHash: BlockHash;
    }
  | { readonly status: 'rejected'; readonly txId: TxId; readonly code: string; readonly reason: string }
  | { readonly status: 'pending'; readonly txId: TxId };

export interface SubmitOptions {
  /** How long to wait for the commit; 0 returns as soon as the tx is accepted for ordering. */
  readonly waitMs: number;
  readonly signal?: AbortSignal;
}

export interface NodeFacade {
  readonly genesis: Genesis;
  /** This validator's id (its index in genesis.validators). */
  readonly id: ValidatorId;
  /** The node's prom-client registry, served as Prometheus text at GET /metrics. */
  readonly metrics: Registry;

  status(): NodeStatus;
  ready(): Readiness;

  /** The last committed block. */
  tip(): MaybePromise<BlockRecord>;
  /** Committed blocks from height `from` upward, at most `limit` (the API bounds limit). */
  blocks(from: Height, limit: number): MaybePromise<readonly BlockRecord[]>;
  blockByHeight(height: Height): MaybePromise<BlockRecord | undefined>;
  blockByHash(hash: BlockHash): MaybePromise<BlockRecord | undefined>;
  tx(id: TxId): MaybePromise<TxRecord | undefined>;

  /** The target's current entry from the in-memory committed state: a Map lookup, no I/O. */
  currentTarget(target: TargetName): TargetEntry | undefined;
  /** Every committed entry the target has had, newest first, at most `limit`. */
  targetHistory(target: TargetName, limit: number): MaybePromise<readonly TargetEntry[]>;

  /**
   * The article's flow: current hash -> 'current'; else check config server B and submit an
   * attest through consensus, then wait (bounded by validateHashTimeoutMs) for the truth.
   * Concurrent calls for the same hash share one pending attest. Never resolves 'added' for a
   * block that does not exist. Never rejects for operating errors: those are 'unavailable'.
   */
  validateHash(target: TargetName, sha256: Hash32Hex, opts: ValidateOptions): Promise<ValidateResult>;

  /** Checks the transaction (ledger rules), submits it to consensus and optionally waits. */
  submitTx(tx: Transaction, opts: SubmitOptions): Promise<SubmitResult>;

  /**
   * The light-client proof of a target at the latest committed block: header, commit certificate,
   * the target's entry (or null) and its state proof, all of that one block. Undefined while no
   * block above genesis is committed (genesis has no certificate).
   */
  targetProof(target: TargetName): MaybePromise<TargetProof | undefined>;
  /** The inclusion proof of a committed transaction; undefined when it is not committed here. */
  txProof(id: TxId): MaybePromise<TxProof | undefined>;

  /** The device's entry in the committed state (a Map lookup, no I/O): enrolled or revoked. */
  device(id: DeviceId): DeviceEntry | undefined;
  /** The device registry sorted by id, after `afterId` (a cursor), at most `limit`. */
  devices(afterId: string | undefined, limit: number): MaybePromise<readonly DeviceEntry[]>;
  /** Committed device reports about a target, newest first, at most `limit`. */
  targetReports(target: TargetName, limit: number): MaybePromise<readonly DeviceReportView[]>;

  /** A rollout's entry in the committed state (a Map lookup, no I/O). */
  rollout(rolloutId: string): RolloutEntry | undefined;
  /** The committed rollouts, newest first, at most `limit` (the API bounds limit). */
  rollouts(limit: number): MaybePromise<readonly RolloutEntry[]>;

  /** The copy of released content with this hash, if this validator holds one. */
  content(sha256: Hash32Hex): MaybePromise<ContentCopy | undefined>;

  /** Calls `listener` for every block committed from now on; returns the unsubscribe function. */
  onBlock(listener: (event: BlockEvent) => void): () => void;
}

/** One committed device report about a target (GET /v1/targets/:target/history lists them). */
export interface DeviceReportView {
  readonly deviceId: DeviceId;
  readonly seq: number;
  readonly version: number;
  readonly sha256: Hash32Hex;
  readonly status: DeviceReportBody['status'];
  readonly detail: string;
  readonly height: Height;
  readonly txId: TxId;
}

/** A copy of released content this validator holds. */
export interface ContentCopy {
  readonly sha256: Hash32Hex;
  readonly bytes: Uint8Array;
  /** From the release that named this content; application/octet-stream when unknown. */
  readonly mediaType: string;
}

/** What GET /v1/events sends for every committed block. */
export interface BlockEvent {
  readonly height: Height;
  readonly hash: BlockHash;
  readonly timestampMs: number;
  readonly txCount: number;
  readonly txIds: readonly TxId[];
}

export interface ApiServerOptions {
  /** A pino logger for request logs; false or absent for none. */
  readonly logger?: Logger | false;
  /** Overrides httpBodyBytesMax from src/constants.ts (tests only). */
  readonly bodyLimitBytes?: number;
  /** The clock device request timestamps are checked against; Date.now by default (tests only). */
  readonly nowMs?: () => number;
  /** Overrides the live-event intervals (tests only). */
  readonly events?: { readonly statusIntervalMs?: number; readonly keepaliveMs?: number };
}
