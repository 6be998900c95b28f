/**
 * Rollout reads shared by the node's facade (src/node/validator.ts) and the in-memory facade
 * (src/api/memory-facade.ts): the rollout part of a target proof, and the newest rollouts of a
 * state. Both are pure functions of one committed state, so a proof and its entries always come
 * from the same block.
 */
import type { TargetRolloutProof } from '../device/contract.ts';
import { assert } from '../errors.ts';
import type { LedgerState } from '../ledger/state.ts';
import {
  type RolloutEntry,
  rolloutKey,
  type StateEntry,
  type StateKey,
  targetRolloutKey,
} from '../ledger/types.ts';

/** The target's rollout pointer and the rollout it names, each with its proof in `state`. */
export function rolloutProofOf(state: LedgerState, target: string): TargetRolloutProof {
  const pointerKey = targetRolloutKey(target);
  const pointer = state.get(pointerKey);
  const pointerProof = state.proof(pointerKey);
  if (pointer === undefined) return { pointer: null, pointerProof, entry: null, entryProof: null };
  assert(pointer.kind === 'target-rollout', `state key ${pointerKey} holds a ${pointer.kind} entry`);
  const entry = state.rollout(pointer.rolloutId);
  assert(entry !== undefined, `${pointerKey} names rollout ${pointer.rolloutId}, which exists`);
  return { pointer, pointerProof, entry, entryProof: state.proof(rolloutKey(pointer.rolloutId)) };
}

/** The rollouts among these entries, newest (highest createdAt, then id) first, at most `limit`. */
export function newestRollouts(entries: Iterable<[StateKey, StateEntry]>, limit: number): RolloutEntry[] {
  assert(Number.isSafeInteger(limit) && limit >= 1, 'a rollout list has a positive limit');
  const all: RolloutEntry[] = [];
  for (const [, entry] of entries) if (entry.kind === 'rollout') all.push(entry);
  all.sort((a, b) =>
    a.createdAt !== b.createdAt ? b.createdAt - a.createdAt : a.rolloutId < b.rolloutId ? -1 : 1,
  );
  return all.slice(0, limit);
}
