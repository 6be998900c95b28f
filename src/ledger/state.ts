/**
 * The ledger state: the current TargetEntry of every target and the DeviceEntry of every device,
 * held in a persistent sparse Merkle tree (src/merkle/sparse.ts) so the state root is updated in
 * O(log n) per changed entry and every older state stays usable after a newer one is derived.
 */
import { canonicalHash } from '../crypto/hash.ts';
import type { Hash32Hex, ValidatorId } from '../encoding/brand.ts';
import { fromHex } from '../encoding/bytes.ts';
import { assert } from '../errors.ts';
import {
  EMPTY_SPARSE_ROOT,
  SparseMerkleTree,
  type SparseProof,
  sparseRootFromScratch,
} from '../merkle/sparse.ts';
import { LedgerError } from './errors.ts';
import {
  type DeviceEntry,
  deviceKey,
  type HeartbeatEntry,
  heartbeatKey,
  type RolloutEntry,
  rolloutKey,
  type StateChange,
  type StateEntry,
  type StateKey,
  type TargetEntry,
  targetKey,
  targetRolloutKey,
} from './types.ts';

/** A state proof is a sparse Merkle proof: compact JSON of hex strings (see SparseProof). */
export type StateProof = SparseProof;

/** The root of the state with no entries (32 zero bytes in hex). */
export const EMPTY_STATE_ROOT: Hash32Hex = EMPTY_SPARSE_ROOT;

/**
 * The key an entry is stored under: "target/<name>", "device/<id>", "heartbeat/<validator>",
 * "rollout/<id>" or "target-rollout/<target>".
 */
export function stateKeyOf(entry: StateEntry): StateKey {
  switch (entry.kind) {
    case 'target':
      return targetKey(entry.target);
    case 'device':
      return deviceKey(entry.deviceId);
    case 'heartbeat':
      return heartbeatKey(entry.submitter);
    case 'rollout':
      return rolloutKey(entry.rolloutId);
    case 'target-rollout':
      return targetRolloutKey(entry.target);
  }
}

/** The value hash the state tree commits to for an entry. */
export function entryHash(entry: StateEntry): Hash32Hex {
  return canonicalHash(entry);
}

/**
 * Entries a state holds back from its tree before with() folds them in. Applying a block calls
 * with() once per transaction but needs the root only at the end, so the tree is rebuilt once per
 * batch (SparseMerkleTree.setMany) instead of once per transaction, and the upper levels that all
 * of a block's keys share are hashed once. The bound keeps with()'s copy of the pending entries
 * small for the largest blocks.
 */
const pendingEntriesMax = 64;
const nothingPending: ReadonlyMap<StateKey, StateEntry> = new Map();

export class LedgerState {
  /** The tree without the pending entries. */
  readonly #base: SparseMerkleTree<StateEntry>;
  /** Entries written since #base, by key; reads see them first. */
  readonly #pending: ReadonlyMap<StateKey, StateEntry>;
  /** #base with #pending folded in, made on first need of a root, size, proof or listing. */
  #tree: SparseMerkleTree<StateEntry> | undefined;

  private constructor(base: SparseMerkleTree<StateEntry>, pending = nothingPending) {
    this.#base = base;
    this.#pending = pending;
    this.#tree = pending.size === 0 ? base : undefined;
  }

  #folded(): SparseMerkleTree<StateEntry> {
    if (this.#tree === undefined) {
      const items = [...this.#pending].map(([key, entry]) => ({
        key,
        value: entry,
        valueHash: fromHex(entryHash(entry)),
      }));
      this.#tree = this.#base.setMany(items);
    }
    return this.#tree;
  }

  static empty(): LedgerState {
    return new LedgerState(SparseMerkleTree.empty());
  }

  /**
   * Rebuilds a state from stored entries (for example on node start). O(n log n). Throws
   * LedgerError STATE_INVALID when two entries share a key.
   */
  static fromEntries(entries: Iterable<StateEntry>): LedgerState {
    const items: { key: StateKey; value: StateEntry; valueHash: Buffer }[] = [];
    for (const entry of entries)
      items.push({ key: stateKeyOf(entry), value: entry, valueHash: fromHex(entryHash(entry)) });
    try {
      return new LedgerState(SparseMerkleTree.fromItems(items));
    } catch (error) {
      throw new LedgerError('STATE_INVALID', {
        reason: `cannot load the stored state: ${(error as Error).message}; the state store is corrupt, rebuild it from the blocks`,
        rule: 'state-root',
      });
    }
  }

  get root(): Hash32Hex {
    return this.#folded().root;
  }

  get size(): number {
    return this.#folded().size;
  }

  get(key: StateKey): StateEntry | undefined {
    return this.#pending.get(key) ?? this.#base.get(key);
  }

  target(name: string): TargetEntry | undefined {
    return this.#entryOf(targetKey(name), 'target');
  }

  device(id: string): DeviceEntry | undefined {
    return this.#entryOf(deviceKey(id), 'device');
  }

  heartbeat(submitter: ValidatorId): HeartbeatEntry | undefined {
    return this.#entryOf(heartbeatKey(submitter), 'heartbeat');
  }

  rollout(rolloutId: string): RolloutEntry | undefined {
    return this.#entryOf(rolloutKey(rolloutId), 'rollout');
  }

  /** The rollout that reports of this target count towards, if one was ever recorded. */
  targetRollout(target: string): RolloutEntry | undefined {
    const pointer = this.#entryOf(targetRolloutKey(target), 'target-rollout');
    if (pointer === undefined) return undefined;
    const rollout = this.rollout(pointer.rolloutId);
    assert(
      rollout !== undefined,
      `target-rollout/${target} names rollout ${pointer.rolloutId}, which exists`,
    );
    return rollout;
  }

  /** The entry under a key of one kind; a key holding another kind is a programmer error. */
  #entryOf<K extends StateEntry['kind']>(
    key: StateKey,
    kind: K,
  ): Extract<StateEntry, { kind: K }> | undefined {
    const entry = this.get(key);
    if (entry === undefined) return undefined;
    assert(entry.kind === kind, `state key ${key} holds a ${entry.kind} entry`);
    return entry as Extract<StateEntry, { kind: K }>;
  }

  /** Every entry, in key-path order (the same order on every replica). */
  *entries(): Generator<[StateKey, StateEntry]> {
    for (const [key, entry] of this.#folded().entries()) yield [key as StateKey, entry];
  }

  /**
   * A new state with these entries written; this state is left unchanged. The tree work is
   * deferred (see pendingEntriesMax): reads see the entries at once, the root when asked.
   */
  with(changes: readonly StateChange[]): LedgerState {
    if (changes.length === 0) return this;
    for (const change of changes) {
      assert(
        change.key === stateKeyOf(change.entry),
        `state change key ${change.key} does not match its entry`,
      );
    }
    const fold = this.#pending.size + changes.length > pendingEntriesMax;
    const pending = new Map(fold ? nothingPending : this.#pending);
    for (const change of changes) pending.set(change.key, change.entry);
    return new LedgerState(fold ? this.#folded() : this.#base, pending);
  }

  /** Inclusion proof of the entry at key, or a non-inclusion proof if there is none. */
  proof(key: StateKey): StateProof {
    return this.#folded().proof(key);
  }
}

/**
 * The state root of exactly these entries, recomputed from scratch with an algorithm independent
 * of the incremental tree (sort and split). For tests and for the storage layer's verifyChain.
 * Throws LedgerError STATE_INVALID on two entries with one key.
 */
export function stateRootFromScratch(entries: Iterable<StateEntry>): Hash32Hex {
  const items: { key: string; valueHash: Buffer }[] = [];
  for (const entry of entries) items.push({ key: stateKeyOf(entry), valueHash: fromHex(entryHash(entry)) });
  try {
    return sparseRootFromScratch(items);
  } catch (error) {
    throw new LedgerError('STATE_INVALID', {
      reason: `cannot recompute the state root: ${(error as Error).message}`,
      rule: 'state-root',
    });
  }
}
