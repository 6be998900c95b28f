/**
 * Strict parsing of the CLI's numeric options. Number.parseInt reads a prefix ("2abc" is 2) and
 * Number() takes hex, exponents, blanks and fractions ("0x10", "1e3", " 5", "5.0"), so an operator's
 * typo could silently publish or roll out the wrong version. Every numeric option goes through
 * wholeNumber: a canonical decimal ("0" or digits without a leading zero) within the option's
 * range, or a USAGE error that names the option, the value given and what is expected.
 *
 * Two ways to use it: inside a command body (wholeNumber, percent, percentList throw ArgumentError,
 * a ConfigChainError, so the command's usual error path prints it and exits non-zero), or as a
 * commander argument parser (wholeNumberOption), which refuses the value while the command line is
 * parsed, before any action runs.
 */
import { InvalidArgumentError } from 'commander';
import { assert, ConfigChainError } from '../errors.ts';

/** Digits only, and no leading zero except "0" itself: the one spelling of each whole number. */
const CANONICAL_DECIMAL = /^(0|[1-9][0-9]*)$/;

export interface ArgumentErrorData {
  /** The option as typed on the command line, e.g. "--version". */
  readonly option: string;
  /** The value given, exactly as received. */
  readonly value: string;
  /** What the option takes, e.g. "a whole decimal number from 1 to 20". */
  readonly expected: string;
}

/** A malformed or out-of-range option value; the command did nothing. */
export class ArgumentError extends ConfigChainError<'USAGE', ArgumentErrorData> {
  constructor(data: ArgumentErrorData) {
    super(
      'USAGE',
      `${data.option} ${JSON.stringify(data.value)} is not valid: expected ${data.expected}`,
      data,
    );
    this.name = 'ArgumentError';
  }
}

function rangeText(min: number, max: number): string {
  // "from 1 to 9007199254740991" would only say there is no practical upper bound.
  if (max === Number.MAX_SAFE_INTEGER) return `a whole decimal number of at least ${min}`;
  return `a whole decimal number from ${min} to ${max}`;
}

/**
 * The whole number `text` spells, when it is canonical decimal within [min, max]; anything else
 * (signs, blanks, fractions, exponents, hex, leading zeros, a trailing suffix) is an ArgumentError.
 */
export function wholeNumber(text: string, option: string, min: number, max: number): number {
  assert(
    Number.isSafeInteger(min) && Number.isSafeInteger(max) && min >= 0 && min <= max,
    `${option} takes a range of whole numbers, got ${min}..${max}`,
  );
  // Longer than max's digits cannot be in range; checking first keeps Number() off huge strings.
  const value = text.length <= String(max).length && CANONICAL_DECIMAL.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) {
    throw new ArgumentError({ option, value: text, expected: rangeText(min, max) });
  }
  return value;
}

/** A whole percentage, 0 to 100, written "5" or "5%" (the forms the rollout options document). */
export function percent(text: string, option: string): number {
  const digits = text.endsWith('%') ? text.slice(0, -1) : text;
  try {
    return wholeNumber(digits, option, 0, 100);
  } catch (error) {
    if (!(error instanceof ArgumentError)) throw error;
    throw new ArgumentError({ option, value: text, expected: 'a whole percentage from 0% to 100%, e.g. 5%' });
  }
}

/**
 * A comma-separated list of at most itemsMax whole percentages ("10,50,100" or "10%, 50%, 100%");
 * blanks around an item are allowed, since a quoted list often has them. Only the form is checked
 * here; what the list must mean (ascending, ending at 100) is the caller's rule.
 */
export function percentList(text: string, option: string, itemsMax: number): number[] {
  const items = text.split(',');
  const expected = `at most ${itemsMax} comma-separated whole percentages, e.g. 10,50,100`;
  if (items.length > itemsMax) throw new ArgumentError({ option, value: text, expected });
  try {
    return items.map((item) => percent(item.trim(), option));
  } catch (error) {
    if (!(error instanceof ArgumentError)) throw error;
    throw new ArgumentError({ option, value: text, expected });
  }
}

/**
 * A commander argument parser for a whole-number option: the value is refused with commander's
 * InvalidArgumentError (it prints "error: option '--x <n>' argument 'v' is invalid." and the
 * reason, then exits non-zero) while the command line is parsed, so the action never runs.
 */
export function wholeNumberOption(option: string, min: number, max: number): (value: string) => number {
  // A bad range is a programmer error: make it crash when the command is defined, not when used.
  wholeNumber(String(min), option, min, max);
  return (value) => {
    try {
      return wholeNumber(value, option, min, max);
    } catch (error) {
      if (!(error instanceof ArgumentError)) throw error;
      throw new InvalidArgumentError(`Expected ${error.data.expected}.`);
    }
  };
}
