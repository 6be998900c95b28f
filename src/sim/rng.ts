/**
 * The simulator's only source of randomness: xoshiro128** (Blackman and Vigna), seeded through
 * splitmix32. Everything is 32-bit integer arithmetic (Math.imul, >>> 0), so the sequence for a
 * seed is identical on every platform and Node version. Math.random is never used in src/sim.
 */
import { assert } from '../errors.ts';

/** One step of splitmix32: used to spread a small seed over the 128-bit xoshiro state. */
function splitmix32(state: number): { next: number; value: number } {
  const next = (state + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  z = (z ^ (z >>> 16)) >>> 0;
  return { next, value: z };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /**
   * A generator for a seed. Seeds up to 2^53 are accepted: the high and low 32-bit halves are
   * mixed separately so that seed 1 and seed 2^32 + 1 give different streams.
   */
  constructor(seed: number) {
    assert(
      Number.isSafeInteger(seed) && seed >= 0,
      `rng seed must be a non-negative safe integer, got ${seed}`,
    );
    let state = (seed >>> 0) ^ Math.imul(Math.floor(seed / 2 ** 32) >>> 0, 0x27d4eb2f);
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const step = splitmix32(state);
      state = step.next;
      words.push(step.value);
    }
    this.s0 = words[0] ?? 0;
    this.s1 = words[1] ?? 0;
    this.s2 = words[2] ?? 0;
    this.s3 = words[3] ?? 0;
    // The all-zero state is the one fixed point of xoshiro; splitmix32 practically never yields
    // it, but a generator stuck at zero would silently make every run identical.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** The next 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A float in [0, 1) with 32 bits of randomness. */
  float(): number {
    return this.nextU32() / 2 ** 32;
  }

  /** An integer in [min, max], both inclusive, without modulo bias. */
  int(min: number, max: number): number {
    assert(Number.isSafeInteger(min) && Number.isSafeInteger(max), 'rng.int bounds must be integers');
    assert(min <= max, `rng.int needs min <= max, got ${min} > ${max}`);
    const span = max - min + 1;
    assert(span <= 2 ** 32, 'rng.int span must fit in 32 bits');
    if (span === 2 ** 32) return min + this.nextU32();
    // Rejection sampling: draw again when the value falls in the incomplete last bucket.
    const limit = 2 ** 32 - (2 ** 32 % span);
    for (;;) {
      const value = this.nextU32();
      if (value < limit) return min + (value % span);
    }
  }

  /** True with probability p (0 <= p <= 1). */
  chance(p: number): boolean {
    assert(p >= 0 && p <= 1, `rng.chance probability must be in [0, 1], got ${p}`);
    if (p === 0) return false;
    if (p === 1) return true;
    return this.float() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, 'rng.pick needs a non-empty array');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** A shuffled copy (Fisher-Yates); the input is left untouched. */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const tmp = out[i] as T;
      out[i] = out[j] as T;
      out[j] = tmp;
    }
    return out;
  }

  /** k distinct elements chosen uniformly (k <= length), in random order. */
  sample<T>(items: readonly T[], k: number): T[] {
    assert(k >= 0 && k <= items.length, `rng.sample cannot take ${k} of ${items.length}`);
    return this.shuffle(items).slice(0, k);
  }

  /**
   * An independent child generator. Sub-systems (network, faults, clients) each take their own
   * fork so that a change in how one of them draws numbers does not shift the others' streams.
   */
  fork(): Rng {
    return new Rng(this.nextU32() * 2 ** 21 + (this.nextU32() >>> 11));
  }
}
