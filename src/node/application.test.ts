import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { sha256Hex } from '../crypto/hash.ts';
import type { Hash32Hex, TargetName } from '../encoding/brand.ts';
import { attestTx, parseTransactionWithId, signHeartbeat, txId } from '../ledger/index.ts';
import { createTestNetwork } from '../ledger/testing.ts';
import type { Transaction } from '../ledger/types.ts';
import { jsonEqual, ParsedTxCache } from './application.ts';

const network = createTestNetwork({ seed: 'parse-cache' });
const key = network.validatorKeys[1] ?? assert.fail('the test network has validator 1');

/** Unsigned: a copy is recognised by its target and hash. */
function attest(i: number): Transaction {
  return attestTx(
    network.genesis.chainId,
    `target-${i}` as TargetName,
    sha256Hex(`content-${i}`) as Hash32Hex,
    {
      version: i + 1,
      size: 10 + i,
    },
  );
}

/** Signed: a copy is recognised by its signature. */
function heartbeat(i: number): Transaction {
  return signHeartbeat(network.genesis, key.id, key.privateKey, 1_000 + i);
}

const kinds = [
  ['an unsigned attest', attest],
  ['a signed heartbeat', heartbeat],
] as const;

/** A fresh copy, as a peer's message carries it (new objects, possibly another key order). */
function copyOf<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

describe('ParsedTxCache', () => {
  it('gives what parseTransactionWithId gives, once per object', () => {
    const cache = new ParsedTxCache(16);
    const tx = attest(1);
    const parsed = cache.parse(tx);
    const direct = parseTransactionWithId(tx);
    assert.equal(parsed.id, direct.id);
    assert.deepEqual(Buffer.from(parsed.bytes), Buffer.from(direct.bytes));
    assert.deepEqual(parsed.tx, direct.tx);
    assert.equal(cache.parse(tx), parsed, 'the same object is parsed once');
    assert.equal(cache.parse(parsed.tx), parsed, 'the parsed copy maps to the same parse');
  });

  for (const [kind, make] of kinds) {
    it(`recognises a copy of ${kind} it remembered, whatever its key order`, () => {
      const cache = new ParsedTxCache(16);
      const tx = make(2);
      cache.remember(tx);
      const known = cache.parse(tx);
      const copy = copyOf(tx);
      assert.equal(cache.parse(copy), known);
      const reordered = {
        signatures: copy.signatures.map((s) => ({ signature: s.signature, signer: s.signer })),
        body: Object.fromEntries(Object.entries(copy.body).reverse()),
      };
      assert.equal(cache.parse(reordered), known);
    });
  }

  it('never hands the known parse to a copy that differs, even with the same signature', () => {
    const cache = new ParsedTxCache(16);
    const signed = heartbeat(3);
    cache.remember(signed);
    const later = copyOf(signed) as unknown as { body: Record<string, unknown> };
    later.body.timestampMs = 5_000;
    assert.notEqual(cache.parse(later).id, cache.parse(signed).id);
    assert.equal(cache.parse(later).id, txId(later as unknown as Transaction));
    const tx = attest(3);
    cache.remember(tx);
    const changed = copyOf(tx) as unknown as { body: Record<string, unknown> };
    changed.body.version = 99;
    const parsed = cache.parse(changed);
    assert.notEqual(parsed.id, cache.parse(tx).id);
    assert.equal(parsed.id, txId(changed as unknown as Transaction));
    const extra = { ...copyOf(tx), note: 'x' };
    assert.throws(() => cache.parse(extra), /note|field|tx/);
    assert.throws(() => cache.parse('not a transaction'));
  });

  it('property: the id it gives is always the id of the value given', () => {
    const cache = new ParsedTxCache(64);
    const base = Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? attest(i) : heartbeat(i)));
    for (const tx of base) cache.remember(tx);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 7 }),
        fc.constantFrom(
          'version',
          'size',
          'target',
          'sha256',
          'submitter',
          'type',
          'chainId',
          'timestampMs',
          'none',
        ),
        fc.oneof(fc.integer(), fc.string(), fc.constant(null)),
        (which, field, value) => {
          const copy = copyOf(base[which]) as unknown as { body: Record<string, unknown> };
          if (field !== 'none') copy.body[field] = value;
          let expected: string | null;
          try {
            expected = parseTransactionWithId(copy).id;
          } catch {
            expected = null;
          }
          let got: string | null;
          try {
            got = cache.parse(copy).id;
          } catch {
            got = null;
          }
          assert.equal(got, expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('forgets the oldest remembered transactions beyond its bound, and still parses them right', () => {
    const cache = new ParsedTxCache(2);
    const txs = [attest(10), attest(11), attest(12)];
    for (const tx of txs) cache.remember(tx);
    const first = txs[0] as Transaction;
    const copy = copyOf(first);
    const parsed = cache.parse(copy);
    assert.notEqual(parsed, cache.parse(first), 'the oldest was forgotten, so its copy is parsed anew');
    assert.equal(parsed.id, cache.parse(first).id);
    const newest = txs[2] as Transaction;
    assert.equal(cache.parse(copyOf(newest)), cache.parse(newest));
  });
});

describe('jsonEqual', () => {
  it('compares JSON values by value, ignoring key order but not array order', () => {
    assert.ok(jsonEqual({ a: 1, b: [1, 2] }, { b: [1, 2], a: 1 }));
    assert.ok(!jsonEqual({ a: 1, b: [1, 2] }, { a: 1, b: [2, 1] }));
    assert.ok(!jsonEqual({ a: 1 }, { a: 1, b: 2 }));
    assert.ok(!jsonEqual({ a: 1, b: 2 }, { a: 1 }));
    assert.ok(!jsonEqual({ a: '1' }, { a: 1 }));
    assert.ok(!jsonEqual([1], { 0: 1 }));
    assert.ok(!jsonEqual({ 0: 1 }, [1]));
    assert.ok(!jsonEqual(null, {}));
    assert.ok(!jsonEqual(JSON.parse('{"__proto__": {"a": 1}}'), {}));
    assert.ok(jsonEqual(JSON.parse('{"x": {"y": [true, null, "z"]}}'), { x: { y: [true, null, 'z'] } }));
  });
});
