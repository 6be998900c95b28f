/**
 * The CLI's strict numeric option parser: canonical decimals in range are read back exactly, and
 * every other string (prefix numbers, hex, exponents, blanks, signs, leading zeros, fractions,
 * out-of-range values) is refused with an error that names the option, the value and the range.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from 'commander';
import fc from 'fast-check';
import { ArgumentError, percent, percentList, wholeNumber, wholeNumberOption } from './args.ts';

/** Strings that look like numbers but are not canonical decimals: what loose parsers accepted. */
const nearNumbers = fc.oneof(
  fc.string(),
  fc.string({ unit: fc.constantFrom('0', '1', '9', '-', '+', '.', 'e', 'x', ' ', '%', ',', '_') }),
  fc
    .tuple(fc.nat(), fc.constantFrom('abc', 'x', ' ', '.0', 'e3', '%', ',5', '\n', '_0', 'n'))
    .map(([n, junk]) => `${n}${junk}`),
  fc
    .tuple(fc.constantFrom(' ', '+', '-', '0', '0x', '0b', '.', '\t'), fc.nat())
    .map(([junk, n]) => `${junk}${n}`),
  fc.constantFrom('', ' ', 'NaN', 'Infinity', '1e3', '0x10', '2abc', '007', '1_000', '٣', '１', '5.0'),
);

function refusedAs(option: string, value: string): (e: unknown) => boolean {
  return (e) =>
    e instanceof ArgumentError &&
    e.code === 'USAGE' &&
    e.data.option === option &&
    e.data.value === value &&
    e.message.includes(option) &&
    e.message.includes(JSON.stringify(value));
}

describe('wholeNumber', () => {
  it('reads back every canonical decimal in range exactly', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 1_000_000 }),
        fc.nat({ max: 1_000_000 }),
        fc.nat({ max: 1_000_000 }),
        (a, b, c) => {
          const [min, n, max] = [a, b, c].sort((x, y) => x - y) as [number, number, number];
          assert.equal(wholeNumber(String(n), '--x', min, max), n);
        },
      ),
    );
    fc.assert(
      fc.property(fc.maxSafeNat(), (n) => {
        assert.equal(wholeNumber(String(n), '--version', 0, Number.MAX_SAFE_INTEGER), n);
      }),
    );
  });

  it('accepts a string only when it is the canonical spelling of a number in range', () => {
    fc.assert(
      fc.property(nearNumbers, fc.nat({ max: 1000 }), fc.nat({ max: 1000 }), (text, a, b) => {
        const [min, max] = a <= b ? [a, b] : [b, a];
        let value: number;
        try {
          value = wholeNumber(text, '--n', min, max);
        } catch (error) {
          assert.ok(refusedAs('--n', text)(error), String(error));
          return;
        }
        assert.equal(String(value), text);
        assert.ok(value >= min && value <= max);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses canonical numbers outside the range, naming the range', () => {
    fc.assert(
      fc.property(fc.nat({ max: 10_000 }), fc.nat({ max: 10_000 }), fc.boolean(), (min, width, below) => {
        const max = min + width;
        if (below && min === 0) return;
        const outside = below ? min - 1 : max + 1 + width;
        assert.throws(
          () => wholeNumber(String(outside), '--limit', min, max),
          (e: unknown) =>
            refusedAs('--limit', String(outside))(e) &&
            (e as ArgumentError).data.expected === `a whole decimal number from ${min} to ${max}`,
        );
      }),
    );
    // Beyond the safe integers a decimal string no longer names one number.
    assert.throws(
      () => wholeNumber('9007199254740992', '--version', 1, Number.MAX_SAFE_INTEGER),
      ArgumentError,
    );
    assert.throws(() => wholeNumber('9'.repeat(400), '--version', 1, Number.MAX_SAFE_INTEGER), ArgumentError);
  });

  it('refuses the values that parseInt and Number used to let through', () => {
    for (const bad of ['2abc', '10x', '0x10', '1e3', ' 5', '5 ', '+5', '-1', '5.0', '007', '', '1,000']) {
      assert.throws(() => wholeNumber(bad, '--version', 0, 1_000_000), refusedAs('--version', bad));
    }
  });

  it('treats a bad range as a programmer error', () => {
    assert.throws(() => wholeNumber('1', '--x', 5, 4), /invariant violated/);
    assert.throws(() => wholeNumberOption('--x', -1, 4), /invariant violated/);
  });
});

describe('percent and percentList', () => {
  it('take 0..100 written with or without %, and nothing else', () => {
    for (let n = 0; n <= 100; n++) {
      assert.equal(percent(String(n), '--max-failures'), n);
      assert.equal(percent(`${n}%`, '--max-failures'), n);
    }
    for (const bad of ['101', '101%', '-1%', '5%%', '%5', '5 %', '2.5%', '05%', 'five', '%', '']) {
      assert.throws(() => percent(bad, '--max-failures'), refusedAs('--max-failures', bad));
    }
  });

  it('reads comma-separated percentages with optional blanks around them, up to the item limit', () => {
    assert.deepEqual(percentList('10,50,100', '--waves', 20), [10, 50, 100]);
    assert.deepEqual(percentList('10%, 50% ,100%', '--waves', 20), [10, 50, 100]);
    for (const bad of ['10,5x', '10,,100', '10,50,100,', '10;50', '1 0,100', '', '0x10,100']) {
      assert.throws(() => percentList(bad, '--waves', 20), refusedAs('--waves', bad));
    }
    assert.throws(() => percentList('1,2,3', '--waves', 2), refusedAs('--waves', '1,2,3'));
  });

  it('round-trips any list of in-range percentages', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 1, maxLength: 20 }),
        fc.boolean(),
        (list, withSign) => {
          const text = list.map((n) => (withSign ? `${n}%` : String(n))).join(',');
          assert.deepEqual(percentList(text, '--waves', 20), list);
        },
      ),
    );
  });
});

describe('wholeNumberOption', () => {
  it("is a commander argument parser: it returns the number or throws commander's InvalidArgumentError", () => {
    const parse = wholeNumberOption('--base-port', 1, 65_535);
    assert.equal(parse('5000'), 5000);
    for (const bad of ['5000x', '0', '65536', '0x1388']) {
      assert.throws(
        () => parse(bad),
        (e: unknown) =>
          e instanceof InvalidArgumentError &&
          e.code === 'commander.invalidArgument' &&
          e.message === 'Expected a whole decimal number from 1 to 65535.',
      );
    }
  });
});
