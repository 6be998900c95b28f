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
import { blockTxsMax, speculativeStatesMax, txBytesMax } from '../constants.ts';
import type { BlockHash, Height, TxId, ValidatorId, View } from '../encoding/brand.ts';
import { canonicalBytes } from '../encoding/canonical.ts';
import { assert } from '../errors.ts';
import { applyBlock, blockHash, buildBlock, type LedgerState, txId, txRoot } from '../ledger/index.ts';
import type { Block, BlockHeader, Genesis, StateChange, Transaction } from '../ledger/types.ts';
import type { ConfigSourceClient } from './config-source.ts';

/** A block's header and the state after it, plus the changes it made (what storage persists). */
export interface BlockState {
  readonly header: BlockHeader;
  readonly hash: BlockHash;
  readonly state: LedgerState;
  readonly changes: readonly StateChange[];
}

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
  readonly onRejected?: (rejected: readonly { tx: unknown; reason: string }[]) => void;
  /** The height a transaction was committed at, from the store's index; null if never. */
  readonly findCommittedTx?: (id: TxId) => Height | null;
}

const REQUEST_CLIENT = 'tx';

export class LedgerApp implements Application<Block, Transaction> {
  readonly genesis: Genesis;
  #committed: BlockState;
  /** Speculative block states by hash; never holds heights at or below the committed tip. */
  readonly #speculative = new Map<BlockHash, BlockState>();
  readonly #configSource: ConfigSourceClient;
  readonly #now: () => number;
  readonly #signatureChecked: ((id: TxId) => boolean) | undefined;
  readonly #onRejected: LedgerAppOptions['onRejected'];
  readonly #findCommittedTx: LedgerAppOptions['findCommittedTx'];
  /** txId cache per transaction object: a tx is hashed once however often it is looked at. */
  readonly #ids = new WeakMap<Transaction, TxId>();

  constructor(options: LedgerAppOptions) {
    this.genesis = options.genesis;
    this.#committed = options.committed;
    this.#configSource = options.configSource;
    this.#now = options.now;
    this.#signatureChecked = options.signatureChecked;
    this.#onRejected = options.onRejected;
    this.#findCommittedTx = options.findCommittedTx;
  }

  get committed(): BlockState {
    return this.#committed;
  }

  get speculativeCount(): number {
    return this.#speculative.size;
  }

  idOf(tx: Transaction): TxId {
    let id = this.#ids.get(tx);
    if (id === undefined) {
      id = txId(tx);
      this.#ids.set(tx, id);
    }
    return id;
  }

  // --- Application<Block, Transaction> -------------------------------------------------------

  digest(block: Block): BlockHash {
    return blockHash(block.header);
  }

  parent(block: Block): BlockHash {
    return block.header.prevHash;
  }

  height(block: Block): Height {
    return block.header.height;
  }

  build(input: BuildInput<Transaction>): Block {
    const parent = this.stateOf(input.parent);
    assert(parent !== undefined, `build on unknown parent ${input.parent.slice(0, 12)}`);
    assert(input.height === parent.header.height + 1, 'build height must be parent height + 1');
    // Versions only grow, so ordering a batch by (target, version) lets every newer version in it
    // commit instead of failing behind a higher one that happened to arrive first.
    const candidates = orderForBlock(input.requests);
    const opts = this.#signatureChecked === undefined ? {} : { signatureChecked: this.#signatureChecked };
    const built = buildBlock(
      this.genesis,
      parent.header,
      parent.state,
      candidates,
      {
        view: input.view as View,
        proposer: input.proposer as ValidatorId,
        timestampMs: input.nowMs,
      },
      opts,
    );
    if (built.rejected.length > 0) this.#onRejected?.(built.rejected);
    const hash = blockHash(built.block.header);
    this.remember({ header: built.block.header, hash, state: built.state, changes: built.changes });
    return built.block;
  }

  requestKeys(block: Block): readonly RequestKey[] {
    return block.txs.map((tx) => ({ clientId: REQUEST_CLIENT, requestId: this.idOf(tx) }));
  }

  requestKey(request: Transaction): RequestKey {
    return { clientId: REQUEST_CLIENT, requestId: this.idOf(request) };
  }

  requestBytes(request: Transaction): number {
    return canonicalBytes(request).byteLength;
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
    if (this.requestBytes(request) > txBytesMax) return `transaction is larger than ${txBytesMax} bytes`;
    return null;
  }

  findCommitted(key: RequestKey): Height | null {
    if (key.clientId !== REQUEST_CLIENT) return null;
    return this.#findCommittedTx?.(key.requestId as TxId) ?? null;
  }

  checkBody(block: Block): string | null {
    if (!Array.isArray(block.txs) || block.txs.length > blockTxsMax)
      return 'block transaction list is invalid';
    try {
      return txRoot(block.txs) === block.header.txRoot ? null : 'transaction root does not match the header';
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
  async validate(block: Block): Promise<Validity> {
    const local = this.applyOnParent(block);
    if (!local.valid) return local;
    const header = block.header;
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
      const result = await this.#configSource.lookup(body.target, body.sha256);
      if (!result.ok) return { valid: false, reason: result.reason };
      const offer = result.offer;
      if (offer === undefined) {
        return {
          valid: false,
          reason: `the validator-facing config server does not offer ${body.sha256} for target ${body.target}`,
        };
      }
      if (offer.version !== body.version || offer.size !== body.size) {
        return {
          valid: false,
          reason: `config server offers ${body.sha256} as version ${offer.version} (${offer.size} bytes), not version ${body.version} (${body.size} bytes)`,
        };
      }
    }
    return { valid: true };
  }

  /** Applies the block on its parent's state and remembers the result; synchronous. */
  applyOnParent(block: Block): Validity {
    const hash = blockHash(block.header);
    if (this.stateOf(hash) !== undefined) return { valid: true };
    const parent = this.stateOf(block.header.prevHash);
    if (parent === undefined)
      return { valid: false, reason: 'the parent block is unknown to this validator' };
    try {
      const opts = this.#signatureChecked === undefined ? {} : { signatureChecked: this.#signatureChecked };
      const applied = applyBlock(this.genesis, parent.header, parent.state, block, opts);
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
  commitState(block: Block): BlockState {
    const hash = blockHash(block.header);
    assert(block.header.prevHash === this.#committed.hash, 'a committed block must extend the committed tip');
    const known = this.#speculative.get(hash);
    if (known !== undefined) return known;
    const opts = this.#signatureChecked === undefined ? {} : { signatureChecked: this.#signatureChecked };
    const applied = applyBlock(this.genesis, this.#committed.header, this.#committed.state, block, opts);
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
