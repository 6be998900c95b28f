import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Rng } from './rng.ts';

describe('Rng', () => {
  it('gives the same stream for the same seed and different streams for different seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 16 }, () => a.nextU32());
    const sb = Array.from({ length: 16 }, () => b.nextU32());
    const sc = Array.from({ length: 16 }, () => c.nextU32());
    assert.deepEqual(sa, sb);
    assert.notDeepEqual(sa, sc);
  });

  it('separates seeds that differ only above 32 bits', () => {
    assert.notEqual(new Rng(1).nextU32(), new Rng(2 ** 32 + 1).nextU32());
  });

  it('keeps int() within its inclusive bounds and reaches both ends', () => {
    fc.assert(
      fc.property(
        fc.nat(),
        fc.integer({ min: -1000, max: 1000 }),
        fc.integer({ min: 0, max: 20 }),
        (seed, min, span) => {
          const rng = new Rng(seed);
          for (let i = 0; i < 50; i++) {
            const v = rng.int(min, min + span);
            assert.ok(Number.isInteger(v) && v >= min && v <= min + span);
          }
        },
      ),
    );
    const rng = new Rng(7);
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) seen.add(rng.int(0, 5));
    assert.deepEqual([...seen].sort(), [0, 1, 2, 3, 4, 5]);
  });

  it('is roughly uniform (each of 10 buckets within 20% of its share over 100k draws)', () => {
    const rng = new Rng(123);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) {
      const v = rng.int(0, 9);
      counts[v] = (counts[v] ?? 0) + 1;
    }
    for (const c of counts) assert.ok(c > 8000 && c < 12000, `bucket count ${c}`);
  });

  it('chance(0) is never true and chance(1) always', () => {
    const rng = new Rng(9);
    for (let i = 0; i < 100; i++) {
      assert.equal(rng.chance(0), false);
      assert.equal(rng.chance(1), true);
    }
  });

  it('shuffle and sample return permutations and distinct picks without touching the input', () => {
    fc.assert(
      fc.property(fc.nat(), fc.array(fc.integer(), { maxLength: 30 }), (seed, items) => {
        const copy = items.slice();
        const rng = new Rng(seed);
        const shuffled = rng.shuffle(items);
        assert.deepEqual(items, copy);
        assert.deepEqual(
          shuffled.slice().sort((a, b) => a - b),
          copy.slice().sort((a, b) => a - b),
        );
        const k = Math.floor(items.length / 2);
        const sample = rng.sample(
          items.map((_, i) => i),
          k,
        );
        assert.equal(new Set(sample).size, k);
      }),
    );
  });

  it('forks are deterministic and independent of the parent stream afterwards', () => {
    const a = new Rng(5);
    const b = new Rng(5);
    const fa = a.fork();
    const fb = b.fork();
    assert.equal(fa.nextU32(), fb.nextU32());
    assert.notEqual(new Rng(5).fork().nextU32(), new Rng(6).fork().nextU32());
  });

  it('rejects bad arguments loudly', () => {
    assert.throws(() => new Rng(-1));
    assert.throws(() => new Rng(1.5));
    assert.throws(() => new Rng(3).int(5, 4));
    assert.throws(() => new Rng(3).pick([]));
  });
});
