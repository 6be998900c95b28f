import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { sha256Hex } from '../crypto/hash.ts';
import type { Height, TargetName, TxId } from '../encoding/brand.ts';
import { AssertionFailure } from '../errors.ts';
import { verifyStateProof } from '../merkle/sparse.ts';
import { LedgerError } from './errors.ts';
import { EMPTY_STATE_ROOT, LedgerState, stateKeyOf, stateRootFromScratch } from './state.ts';
import { type TargetEntry, targetKey } from './types.ts';

function target(name: string, version: number): TargetEntry {
  return {
    kind: 'target',
    target: name as TargetName,
    source: 'release',
    version,
    sha256: sha256Hex(`${name}${version}`),
    size: 1,
    mediaType: 'text/plain',
    height: 1 as Height,
    txId: sha256Hex(name) as string as TxId,
  };
}

describe('LedgerState', () => {
  it('starts empty with the placeholder root', () => {
    const s = LedgerState.empty();
    assert.equal(s.root, EMPTY_STATE_ROOT);
    assert.equal(s.size, 0);
    assert.equal(stateRootFromScratch([]), EMPTY_STATE_ROOT);
  });

  it('writes changes into a new state and keeps the old one', () => {
    const s0 = LedgerState.empty();
    const s1 = s0.with([{ key: targetKey('a'), entry: target('a', 1) }]);
    const s2 = s1.with([{ key: targetKey('a'), entry: target('a', 2) }]);
    assert.equal(s1.target('a')?.version, 1);
    assert.equal(s2.target('a')?.version, 2);
    assert.equal(s2.size, 1);
    assert.equal(s0.get(targetKey('a')), undefined);
    assert.equal(s2.device('a'), undefined);
    assert.deepEqual([...s2.entries()], [[targetKey('a'), target('a', 2)]]);
  });

  it('rebuilds from stored entries to the same root, and refuses duplicate keys', () => {
    const entries = ['a', 'b', 'c'].map((n) => target(n, 1));
    const s = LedgerState.empty().with(entries.map((entry) => ({ key: stateKeyOf(entry), entry })));
    assert.equal(LedgerState.fromEntries(entries.reverse()).root, s.root);
    assert.equal(stateRootFromScratch(entries), s.root);
    const dup = [target('a', 1), target('a', 2)];
    assert.throws(
      () => LedgerState.fromEntries(dup),
      (e: unknown) => e instanceof LedgerError && e.code === 'STATE_INVALID',
    );
    assert.throws(
      () => stateRootFromScratch(dup),
      (e: unknown) => e instanceof LedgerError && e.code === 'STATE_INVALID',
    );
  });

  it('property: deferred tree updates read, hash and prove like a state rebuilt from scratch', () => {
    // Up to 300 writes over 40 names, in batches of 1-5: the pending entries are folded into the
    // tree many times (every 64), and every intermediate state stays as it was.
    const batches = fc.array(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 39 }), fc.integer({ min: 1, max: 9 })), {
        minLength: 1,
        maxLength: 5,
      }),
      { maxLength: 60 },
    );
    fc.assert(
      fc.property(batches, (list) => {
        let state = LedgerState.empty();
        const model = new Map<string, TargetEntry>();
        // Earlier states, asked for their root only at the end, after later states were derived.
        const history: { state: LedgerState; entries: TargetEntry[] }[] = [];
        for (const batch of list) {
          const changes = batch.map(([n, v]) => {
            const entry = target(`t${n}`, v);
            model.set(`t${n}`, entry);
            return { key: targetKey(`t${n}`), entry };
          });
          state = state.with(changes);
          for (const [name, entry] of model) assert.deepEqual(state.target(name), entry);
          if (batch.length % 2 === 0) history.push({ state, entries: [...model.values()] });
        }
        const entries = [...model.values()];
        assert.equal(state.root, stateRootFromScratch(entries));
        assert.equal(state.size, model.size);
        assert.deepEqual(
          [...state.entries()].map(([, e]) => e),
          [...LedgerState.fromEntries(entries).entries()].map(([, e]) => e),
        );
        for (const [name, entry] of model) {
          assert.ok(verifyStateProof(state.root, targetKey(name), entry, state.proof(targetKey(name))));
        }
        for (const h of history) {
          assert.equal(h.state.root, stateRootFromScratch(h.entries));
          assert.equal(h.state.size, h.entries.length);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('asserts that a change is stored under its own key', () => {
    assert.throws(
      () => LedgerState.empty().with([{ key: targetKey('b'), entry: target('a', 1) }]),
      AssertionFailure,
    );
  });
});
