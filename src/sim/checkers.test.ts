import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commitPayload } from '../consensus/certificate.ts';
import type { CommitCertificate } from '../consensus/types.ts';
import { Domain } from '../crypto/domains.ts';
import { sign } from '../crypto/ed25519.ts';
import type { BlockHash, Height, SignatureHex, ValidatorId, View } from '../encoding/brand.ts';
import { blockDigest, type SimBlock, type SimEntry } from './app.ts';
import { checkLiveness, requestKeyString, SafetyChecker, type ViolationKind } from './checkers.ts';
import { simKeys } from './keys.ts';

const chainId = 'checker-test';
const genesis = 'ab'.repeat(32) as BlockHash;
const n = 4;
const keys = simKeys(n);
const context = { chainId, validators: keys.map((k) => k.publicKey) };

function block(height: number, parent: BlockHash, entries: SimEntry[] = [], timeMs = 0): SimBlock {
  return {
    height: height as Height,
    parent,
    view: 0 as View,
    proposer: 0 as ValidatorId,
    timeMs,
    entries,
  };
}

function certify(b: SimBlock, signers: readonly number[] = [0, 1, 2]): CommitCertificate {
  const digest = blockDigest(b);
  return {
    height: b.height,
    view: 0 as View,
    blockHash: digest,
    signatures: signers.map((id) => ({
      validator: id as ValidatorId,
      signature: sign(
        Domain.pbftCommit,
        commitPayload(chainId, 0 as View, b.height, digest),
        keys[id]!.privateKey,
      ),
    })),
  };
}

function checker(byzantine: number[] = []): SafetyChecker {
  const honest = new Set([0, 1, 2, 3].filter((i) => !byzantine.includes(i)));
  return new SafetyChecker(honest, genesis, context, n);
}

const entry = (id: string, payload: string, outcome: 'accepted' | 'refused'): SimEntry => ({
  clientId: 'c',
  requestId: id,
  payload,
  outcome,
});

function kinds(list: readonly { kind: ViolationKind }[]): ViolationKind[] {
  return list.map((v) => v.kind);
}

describe('SafetyChecker', () => {
  const b1 = block(1, genesis, [entry('1', 'op-1', 'accepted'), entry('2', 'refuse-2', 'refused')]);
  const b2 = block(2, blockDigest(b1));

  it('accepts a correct chain delivered by every replica', () => {
    const c = checker();
    for (let r = 0; r < n; r++) {
      assert.deepEqual(c.onDeliver(r, 1, b1, certify(b1), 0), []);
      assert.deepEqual(c.onDeliver(r, 2, b2, certify(b2, [1, 2, 3]), 0), []);
    }
    assert.equal(c.committedHeight(), 2);
  });

  it('flags agreement: two honest replicas, two blocks at one height', () => {
    const c = checker();
    const other = block(1, genesis, [], 5);
    assert.deepEqual(c.onDeliver(0, 1, b1, certify(b1), 0), []);
    assert.deepEqual(kinds(c.onDeliver(1, 1, other, certify(other), 0)), ['agreement']);
  });

  it('does not judge Byzantine replicas', () => {
    const c = checker([3]);
    const other = block(1, genesis, [], 5);
    assert.deepEqual(c.onDeliver(0, 1, b1, certify(b1), 0), []);
    assert.deepEqual(c.onDeliver(3, 1, other, certify(other, [3]), 0), []);
  });

  it('flags validity: an entry whose outcome is not the check verdict, a malformed entry, a duplicate', () => {
    for (const entries of [
      [entry('1', 'refuse-1', 'accepted')],
      [entry('1', 'malformed-1', 'accepted')],
      [entry('1', 'op-1', 'accepted'), entry('1', 'op-1', 'accepted')],
    ]) {
      const bad = block(1, genesis, entries);
      assert.deepEqual(kinds(checker().onDeliver(0, 1, bad, certify(bad), 0)), ['validity']);
    }
  });

  it('flags certificate integrity: too few signatures, a forged one, another block', () => {
    const c1 = checker();
    assert.deepEqual(kinds(c1.onDeliver(0, 1, b1, certify(b1, [0, 1]), 0)), ['certificate']);
    const forged = certify(b1);
    const tampered = {
      ...forged,
      signatures: forged.signatures.map((s, i) =>
        i === 0 ? { ...s, signature: 'cd'.repeat(64) as SignatureHex } : s,
      ),
    };
    assert.deepEqual(kinds(checker().onDeliver(0, 1, b1, tampered, 0)), ['certificate']);
    const other = block(1, genesis, [], 9);
    assert.deepEqual(kinds(checker().onDeliver(0, 1, b1, certify(other), 0)), ['certificate']);
    const dup = certify(b1, [0, 0, 1]);
    assert.deepEqual(kinds(checker().onDeliver(0, 1, b1, dup, 0)), ['certificate']);
  });

  it('flags delivering a height twice and skipping one', () => {
    const c = checker();
    c.onDeliver(0, 1, b1, certify(b1), 0);
    assert.deepEqual(kinds(c.onDeliver(0, 1, b1, certify(b1), 0)), ['double-delivery']);
    const b3 = block(3, blockDigest(b2));
    assert.ok(kinds(checker().onDeliver(0, 3, b3, certify(b3), 0)).includes('skipped-height'));
  });

  it('flags a request executed at two heights by one replica', () => {
    const c = checker();
    const again = block(2, blockDigest(b1), [entry('1', 'op-1', 'accepted')]);
    c.onDeliver(0, 1, b1, certify(b1), 0);
    assert.deepEqual(kinds(c.onDeliver(0, 2, again, certify(again), 0)), ['duplicate-request']);
  });

  it('flags a block that does not extend the previous delivered block', () => {
    const c = checker();
    c.onDeliver(0, 1, b1, certify(b1), 0);
    const orphan = block(2, 'ef'.repeat(32) as BlockHash);
    assert.deepEqual(kinds(c.onDeliver(0, 2, orphan, certify(orphan), 0)), ['chain-link']);
  });
});

describe('checkLiveness', () => {
  const requests = [
    { clientId: 'c', requestId: '1', payload: 'op-1' },
    { clientId: 'c', requestId: '2', payload: 'op-2' },
  ];
  const all = new Set(requests.map(requestKeyString));
  const some = new Set([requestKeyString(requests[0]!)]);
  const honest = new Set([0, 1, 2]);

  it('flags a request that fewer than the required honest replicas delivered', () => {
    const found = checkLiveness(
      honest,
      requests,
      (r) => (r === 1 ? some : all),
      3,
      100,
      () => 3,
    );
    assert.deepEqual(
      found.map((v) => [v.kind, v.replica]),
      [['liveness', 1]],
    );
    assert.match(found[0]!.detail, /c\/2/);
    assert.equal(
      checkLiveness(
        honest,
        requests,
        (r) => (r === 0 ? all : some),
        2,
        100,
        () => 3,
      ).length,
      1,
    );
  });

  it('passes when enough honest replicas delivered every request', () => {
    assert.deepEqual(
      checkLiveness(
        honest,
        requests,
        () => all,
        3,
        100,
        () => 3,
      ),
      [],
    );
    assert.deepEqual(
      checkLiveness(
        honest,
        requests,
        (r) => (r === 1 ? some : all),
        2,
        100,
        () => 3,
      ),
      [],
    );
  });
});
