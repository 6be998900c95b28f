/**
 * The application the PBFT replica orders blocks for: ledger blocks of transactions.
 *
 * It keeps the committed ledger state and, for blocks proposed but not yet committed, speculative
 * states keyed by block hash, so the primary can build block s+1 on top of block s before s
 * commits and a backup can validate s+1 against s. A block's state is computed once (when it is
 * built or validated) and reused when it commits, so every transaction signature is checked once
 * per node. External validity (validate) adds what the pure ledger cannot know: the
 * validator-facing config server must offer every attested (and released) artifact, and the
 * block's timestamp must be close to this node's clock.
 */

import type { Application, BuildInput, RequestKey } from '../consensus/types.ts';
import { blockTxsMax, pendingRequestsMax, speculativeStatesMax, txBytesMax } from '../constants.ts';
import type { BlockHash, Height, TxId, ValidatorId, View } from '../encoding/brand.ts';
import { canonicalBytes } from '../encoding/canonical.ts';
import { assert } from '../errors.ts';
import {
  applyBlock,
  blockHash,
  buildBlock,
  checkTransaction,
  type LedgerState,
  type ParsedTransaction,
  parseTransactionWithId,
  type TxCheckOptions,
  txId,
  txRootOfLeafData,
} from '../ledger/index.ts';
import type { Block, BlockHeader, Genesis, StateChange, Transaction } from '../ledger/types.ts';
import { type ConfigSourceClient, offerProblem } from './config-source.ts';

/** A block's header and the state after it, plus the changes it made (what storage persists). */
export interface BlockState {
  readonly header: BlockHeader;
  readonly hash: BlockHash;
  readonly state: LedgerState;
  readonly changes: readonly StateChange[];
}

/**
 * What the replica orders: a ledger block plus the ids of the requests the primary left out of it
 * because they can never be valid on its state (stale versions, bad signatures). The replica needs
 * every request it handed to build() accounted for (requestKeys), and the ledger accepts only
 * valid transactions in a block, so the left-out ones travel beside it. They are not covered by
 * the block hash and are never stored; a backup checks every left-out transaction it knows of
 * against the block's resulting state and votes against a block that left out a valid one, so a
 * faulty primary cannot use the list to censor.
 */
export type NodeBlock = Block & { readonly dropped?: readonly TxId[] };

export type Validity = { readonly valid: true } | { readonly valid: false; readonly reason: string };

export interface LedgerAppOptions {
  readonly genesis: Genesis;
  /** The committed tip: the last block applied to storage and the state after it. */
  readonly committed: BlockState;
  readonly configSource: ConfigSourceClient;
  readonly now: () => number;
  /** Transaction ids whose signatures this node has verified (the ledger's signatureChecked hint). */
  readonly signatureChecked?: (id: TxId) => boolean;
  /** Called with the transactions build() left out and why (stale versions, bad signatures, ...). */
  readonly onRejected?: (rejected: readonly { tx: unknown; reason: string }[], deferred: number) => void;
  /** The hash of the committed block at a height at or below the tip, from the store. */
  readonly committedHashAt?: (height: Height) => BlockHash | undefined;
  /** The height a transaction was committed at, from the store's index; null if never. */
  readonly findCommittedTx?: (id: TxId) => Height | null;
}

const REQUEST_CLIENT = 'tx';
/** Extra build passes for transactions that become valid later in their own batch. */
const buildPassesMax = 3;

export class LedgerApp implements Application<NodeBlock, Transaction> {
  readonly genesis: Genesis;
  #committed: BlockState;
  /** Speculative block states by hash; never holds heights at or below the committed tip. */
  readonly #speculative = new Map<BlockHash, BlockState>();
  readonly #configSource: ConfigSourceClient;
  readonly #now: () => number;
  readonly #signatureChecked: ((id: TxId) => boolean) | undefined;
  readonly #onRejected: LedgerAppOptions['onRejected'];
  readonly #findCommittedTx: LedgerAppOptions['findCommittedTx'];
  readonly #committedHashAt: LedgerAppOptions['committedHashAt'];
  /** Each transaction's schema check, canonical bytes and id, computed once per node. */
  readonly #parsed = new ParsedTxCache(pendingRequestsMax);
  /** Transactions this node has seen submitted or gossiped, to check a primary's left-out list. */
  readonly #seen = new Map<TxId, Transaction>();
  /** What the ledger's checks get: the signature hint and the parse cache. */
  readonly #opts: TxCheckOptions;

  constructor(options: LedgerAppOptions) {
    this.genesis = options.genesis;
    this.#committed = options.committed;
    this.#configSource = options.configSource;
    this.#now = options.now;
    this.#signatureChecked = options.signatureChecked;
    this.#onRejected = options.onRejected;
    this.#findCommittedTx = options.findCommittedTx;
    this.#committedHashAt = options.committedHashAt;
    this.#opts =
      this.#signatureChecked === undefined
        ? { parse: this.#parsed.parse }
        : { signatureChecked: this.#signatureChecked, parse: this.#parsed.parse };
  }

  get committed(): BlockState {
    return this.#committed;
  }

  /**
   * The ledger's parse of a transaction (schema, canonical bytes, id), from the node's cache: each
   * transaction, and each copy of it that arrives again in a proposal, is canonicalized once.
   * Throws a LedgerError as parseTransactionWithId does for a malformed one.
   */
  readonly parse = (json: unknown): ParsedTransaction => this.#parsed.parse(json);

  /** The options every ledger check of this node uses (signature hint, parse cache). */
  get checkOptions(): TxCheckOptions {
    return this.#opts;
  }

  idOf(tx: Transaction): TxId {
    try {
      return this.#parsed.parse(tx).id;
    } catch {
      // Not a well-formed transaction (only a caller's bug hands one here): hash it uncached.
      return txId(tx);
    }
  }

  /** Remembers a transaction handed to the replica (bounded; the oldest are forgotten first). */
  noteTx(tx: Transaction): TxId {
    const id = this.idOf(tx);
    this.#parsed.remember(tx);
    if (this.#seen.has(id)) return id;
    if (this.#seen.size >= pendingRequestsMax) {
      const oldest = this.#seen.keys().next();
      if (oldest.done !== true) this.#seen.delete(oldest.value);
    }
    this.#seen.set(id, tx);
    return id;
  }

  // --- Application<NodeBlock, Transaction> ----------------------------------------------------

  digest(block: NodeBlock): BlockHash {
    return blockHash(block.header);
  }

  parent(block: NodeBlock): BlockHash {
    return block.header.prevHash;
  }

  height(block: NodeBlock): Height {
    return block.header.height;
  }

  build(input: BuildInput<Transaction>): NodeBlock {
    const parent = this.stateOf(input.parent);
    assert(parent !== undefined, `build on unknown parent ${input.parent.slice(0, 12)}`);
    assert(input.height === parent.header.height + 1, 'build height must be parent height + 1');
    // Versions only grow, so ordering a batch by (target, version) lets every newer version in it
    // commit instead of failing behind a higher one that happened to arrive first.
    const opts = this.#opts;
    const params = {
      view: input.view as View,
      proposer: input.proposer as ValidatorId,
      timestampMs: input.nowMs,
    };
    let candidates = orderForBlock(input.requests);
    let built = buildBlock(this.genesis, parent.header, parent.state, candidates, params, opts);
    // Backups check every left-out transaction against the block's final state and vote against
    // the block if one is valid there (a censoring primary). A transaction that failed only
    // because of its place in the batch (a device report before the device's enrollment) can be
    // valid at the end: append such ones and build again, a bounded number of times.
    for (let pass = 0; pass < buildPassesMax && built.rejected.length > 0; pass++) {
      const state = built.state;
      const late = built.rejected
        .map((r) => r.tx as Transaction)
        .filter((tx) => checkTransaction(this.genesis, state, tx, opts).ok);
      if (late.length === 0) break;
      const lateSet = new Set(late);
      candidates = [...candidates.filter((tx) => !lateSet.has(tx)), ...late];
      built = buildBlock(this.genesis, parent.header, parent.state, candidates, params, opts);
    }
    const dropped: TxId[] = [];
    for (const r of built.rejected) dropped.push(r.txId ?? txId(r.tx as Transaction));
    // A transaction that did not fit is valid: it cannot be left out as invalid. The replica
    // limits batches with the same count and byte limits, so this does not happen; if it does,
    // the transaction is reported as left out and its submitter's wait ends in a timeout.
    for (const tx of built.deferred) dropped.push(this.idOf(tx));
    if (built.rejected.length > 0 || built.deferred.length > 0)
      this.#onRejected?.(built.rejected, built.deferred.length);
    const hash = blockHash(built.block.header);
    this.remember({ header: built.block.header, hash, state: built.state, changes: built.changes });
    return dropped.length === 0 ? built.block : { ...built.block, dropped };
  }

  requestKeys(block: NodeBlock): readonly RequestKey[] {
    const keys = block.txs.map((tx) => ({ clientId: REQUEST_CLIENT, requestId: this.idOf(tx) as string }));
    for (const id of block.dropped ?? []) keys.push({ clientId: REQUEST_CLIENT, requestId: id });
    return keys;
  }

  requestKey(request: Transaction): RequestKey {
    return { clientId: REQUEST_CLIENT, requestId: this.idOf(request) };
  }

  requestBytes(request: Transaction): number {
    try {
      return this.#parsed.parse(request).bytes.byteLength;
    } catch {
      return canonicalBytes(request).byteLength;
    }
  }

  checkRequest(request: Transaction): string | null {
    if (typeof request !== 'object' || request === null) return 'a transaction must be an object';
    const body = (request as { body?: unknown }).body;
    if (typeof body !== 'object' || body === null) return 'a transaction needs a body';
    if ((body as { chainId?: unknown }).chainId !== this.genesis.chainId) {
      return `transaction is for chain ${String((body as { chainId?: unknown }).chainId)}, not ${this.genesis.chainId}`;
    }
    if (!Array.isArray((request as { signatures?: unknown }).signatures))
      return 'a transaction needs signatures';
    let parsed: ParsedTransaction;
    try {
      parsed = this.#parsed.parse(request);
    } catch (error) {
      return `a malformed transaction: ${(error as Error).message}`;
    }
    if (parsed.bytes.byteLength > txBytesMax) return `transaction is larger than ${txBytesMax} bytes`;
    return null;
  }

  findCommitted(key: RequestKey): Height | null {
    if (key.clientId !== REQUEST_CLIENT) return null;
    return this.#findCommittedTx?.(key.requestId as TxId) ?? null;
  }

  checkBody(block: NodeBlock): string | null {
    if (!Array.isArray(block.txs) || block.txs.length > blockTxsMax)
      return 'block transaction list is invalid';
    try {
      const leaves = block.txs.map((tx) => this.#parsed.parse(tx).bytes);
      return txRootOfLeafData(leaves) === block.header.txRoot
        ? null
        : 'transaction root does not match the header';
    } catch (error) {
      return `block body is malformed: ${(error as Error).message}`;
    }
  }

  // --- The node's side --------------------------------------------------------------------------

  /** The committed or a speculative block state by hash. */
  stateOf(hash: BlockHash): BlockState | undefined {
    if (hash === this.#committed.hash) return this.#committed;
    return this.#speculative.get(hash);
  }

  /**
   * External validity of a proposed block: the ledger's rules on its parent's state, the
   * timestamp against this node's clock, and the validator-facing config server's offers.
   * Never throws and never hangs longer than the config-server timeout.
   */
  async validate(block: NodeBlock): Promise<Validity> {
    const local = this.applyOnParent(block);
    if (!local.valid || block.header.height <= this.#committed.header.height) return local;
    const header = block.header;
    const after = this.stateOf(blockHash(header));
    for (const id of block.dropped ?? []) {
      const tx = this.#seen.get(id);
      if (tx === undefined || after === undefined) continue;
      const check = checkTransaction(this.genesis, after.state, tx, this.#opts);
      if (check.ok) return { valid: false, reason: `the primary left out transaction ${id}, which is valid` };
    }
    const parent = this.stateOf(header.prevHash);
    const skew = this.genesis.policy.clockSkewMsMax;
    const now = this.#now();
    if (header.timestampMs > now + skew) {
      return {
        valid: false,
        reason: `block timestamp is ${header.timestampMs - now} ms ahead of this validator's clock`,
      };
    }
    if (parent !== undefined && header.timestampMs < parent.header.timestampMs) {
      return { valid: false, reason: 'block timestamp is before its parent' };
    }
    for (const tx of block.txs) {
      const body = tx.body;
      if (body.type !== 'attest' && body.type !== 'release') continue;
      if (body.type === 'release' && body.content !== undefined) continue;
      const current = this.#committed.state.target(body.target)?.version ?? 0;
      const result = await this.#configSource.lookup(body.target, body.sha256, current);
      if (!result.ok) return { valid: false, reason: result.reason };
      const problem = offerProblem(body, result.offer);
      if (problem !== null) return { valid: false, reason: problem };
      // A release's artifact is downloaded and hashed before this validator votes for it.
      if (body.type === 'release') {
        const artifact = await this.#configSource.checkArtifact(body.sha256, body.size);
        if (!artifact.ok) return { valid: false, reason: artifact.reason };
      }
    }
    return { valid: true };
  }

  /** Applies the block on its parent's state and remembers the result; synchronous. */
  applyOnParent(block: NodeBlock): Validity {
    const hash = blockHash(block.header);
    if (this.stateOf(hash) !== undefined) return { valid: true };
    // A proposal at or below the committed height (a retransmission, or a new-view re-proposing
    // what this node already committed) is valid exactly when it is the block committed there.
    if (block.header.height <= this.#committed.header.height) {
      const committed = this.#committedHashAt?.(block.header.height);
      return committed === hash
        ? { valid: true }
        : { valid: false, reason: `a different block is already committed at height ${block.header.height}` };
    }
    const parent = this.stateOf(block.header.prevHash);
    if (parent === undefined)
      return { valid: false, reason: 'the parent block is unknown to this validator' };
    try {
      const applied = applyBlock(this.genesis, parent.header, parent.state, block, this.#opts);
      this.remember({ header: block.header, hash, state: applied.state, changes: applied.changes });
      return { valid: true };
    } catch (error) {
      return { valid: false, reason: (error as Error).message };
    }
  }

  /**
   * The state after a committed block: the speculative one if this node built or validated it,
   * else computed now (blocks fetched by state transfer). Throws if the block does not apply,
   * which for a certified block means this node's state is corrupt.
   */
  commitState(block: NodeBlock): BlockState {
    const hash = blockHash(block.header);
    assert(block.header.prevHash === this.#committed.hash, 'a committed block must extend the committed tip');
    const known = this.#speculative.get(hash);
    if (known !== undefined) return known;
    const applied = applyBlock(
      this.genesis,
      this.#committed.header,
      this.#committed.state,
      block,
      this.#opts,
    );
    return { header: block.header, hash, state: applied.state, changes: applied.changes };
  }

  /** Moves the committed tip after storage made the block durable; forgets stale speculation. */
  advance(next: BlockState): void {
    assert(next.header.height === this.#committed.header.height + 1, 'the committed tip advances by one');
    assert(next.header.prevHash === this.#committed.hash, 'the committed tip advances along its chain');
    this.#committed = next;
    for (const [hash, entry] of this.#speculative) {
      if (entry.header.height <= next.header.height) this.#speculative.delete(hash);
    }
  }

  private remember(entry: BlockState): void {
    if (entry.header.height <= this.#committed.header.height) return;
    if (this.#speculative.size >= speculativeStatesMax) {
      // Forget the oldest speculation: it is recomputed if that block is proposed again.
      const oldest = this.#speculative.keys().next();
      if (oldest.done !== true) this.#speculative.delete(oldest.value);
    }
    this.#speculative.set(entry.hash, entry);
  }
}

/**
 * Orders a batch for building: releases and attests by (target, version), then everything else in
 * arrival order. Sorting is stable, so equal keys keep their arrival order.
 */
function orderForBlock(txs: readonly Transaction[]): Transaction[] {
  const versioned: { tx: Transaction; target: string; version: number }[] = [];
  const others: Transaction[] = [];
  for (const tx of txs) {
    const body = tx.body;
    if (body.type === 'attest' || body.type === 'release') {
      versioned.push({ tx, target: body.target, version: body.version });
    } else {
      others.push(tx);
    }
  }
  versioned.sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : a.version - b.version));
  return [...versioned.map((v) => v.tx), ...others];
}

/**
 * The ledger's parse of each transaction (schema check, canonical bytes, id), kept per object so a
 * transaction is canonicalized and hashed once per node however many paths look at it (request
 * checks, block building, the transaction root, applying, the replica's request keys).
 *
 * A proposal from a peer carries fresh copies of transactions this node already holds from gossip.
 * A copy is recognised by its first signature (an unsigned attest by its target and hash) and then
 * compared field by field with the known transaction (a structural comparison of two small JSON
 * values, far cheaper than canonical encoding and hashing); only an exact value match reuses the
 * known parse, so the result is always what parseTransactionWithId would return for the copy.
 * Anything else is parsed in full.
 */
export class ParsedTxCache {
  readonly #byObject = new WeakMap<object, ParsedTransaction>();
  /** Recent transactions by recognitionKey, oldest first (bounded). */
  readonly #byKey = new Map<string, ParsedTransaction>();
  readonly #max: number;

  constructor(max: number) {
    assert(Number.isSafeInteger(max) && max > 0, 'the parse cache holds a positive number of entries');
    this.#max = max;
  }

  /** parseTransactionWithId(json), from the cache when json or an equal copy was parsed before. */
  readonly parse = (json: unknown): ParsedTransaction => {
    if (typeof json !== 'object' || json === null) return parseTransactionWithId(json);
    const hit = this.#byObject.get(json);
    if (hit !== undefined) return hit;
    const key = recognitionKey(json);
    const known = key === undefined ? undefined : this.#byKey.get(key);
    if (known !== undefined && jsonEqual(json, known.tx)) {
      this.#byObject.set(json, known);
      return known;
    }
    const parsed = parseTransactionWithId(json);
    this.#byObject.set(json, parsed);
    this.#byObject.set(parsed.tx, parsed);
    return parsed;
  };

  /** Makes a transaction recognisable when a copy of it arrives in a proposal (bounded). */
  remember(tx: Transaction): void {
    let parsed: ParsedTransaction;
    try {
      parsed = this.parse(tx);
    } catch {
      return;
    }
    const key = recognitionKey(parsed.tx);
    if (key === undefined || this.#byKey.get(key) === parsed) return;
    this.#byKey.delete(key);
    if (this.#byKey.size >= this.#max) {
      const oldest = this.#byKey.keys().next();
      if (oldest.done !== true) this.#byKey.delete(oldest.value);
    }
    this.#byKey.set(key, parsed);
  }
}

/**
 * What a copy of a known transaction is looked up by: its first signature, or for an unsigned
 * one (an attest) its target and hash. Only a hint: a hit is still compared field by field.
 */
function recognitionKey(json: object): string | undefined {
  const signatures = (json as { signatures?: unknown }).signatures;
  if (!Array.isArray(signatures)) return undefined;
  const first: unknown = signatures[0];
  if (first === undefined) {
    const body = (json as { body?: unknown }).body;
    if (typeof body !== 'object' || body === null) return undefined;
    const { target, sha256 } = body as { target?: unknown; sha256?: unknown };
    return typeof target === 'string' && typeof sha256 === 'string'
      ? `unsigned\u0000${target}\u0000${sha256}`
      : undefined;
  }
  if (typeof first !== 'object' || first === null) return undefined;
  const signature = (first as { signature?: unknown }).signature;
  return typeof signature === 'string' ? signature : undefined;
}

/**
 * Equality of two JSON values (as JSON.parse produces them): the same scalars, arrays of equal
 * items in order, objects with the same own keys and equal values (key order does not matter,
 * as it does not for canonical bytes). Depth is bounded by the transaction schema of \`known\`.
 */
export function jsonEqual(a: unknown, known: unknown): boolean {
  if (a === known) return true;
  if (typeof a !== 'object' || typeof known !== 'object' || a === null || known === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(known) || a.length !== known.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], known[i])) return false;
    return true;
  }
  if (Array.isArray(known) || Object.getPrototypeOf(a) !== Object.prototype) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(known).length) return false;
  for (const key of keys) {
    if (!Object.hasOwn(known, key)) return false;
    if (!jsonEqual((a as Record<string, unknown>)[key], (known as Record<string, unknown>)[key]))
      return false;
  }
  return true;
}
