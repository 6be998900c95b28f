/**
 * Small strict validators for untrusted JSON (genesis files, transactions, block headers). Each
 * failure throws a LedgerError naming the field path and what a valid value looks like, so the
 * message tells the operator or client what to fix.
 */
import { LedgerError, type LedgerErrorCode, type LedgerRule } from './errors.ts';

export type JsonObject = { readonly [key: string]: unknown };

export class SchemaChecker {
  readonly #code: LedgerErrorCode;
  readonly #rule: LedgerRule;
  readonly #hint: string;

  constructor(code: LedgerErrorCode, rule: LedgerRule, hint: string) {
    this.#code = code;
    this.#rule = rule;
    this.#hint = hint;
  }

  fail(field: string, problem: string): never {
    throw new LedgerError(this.#code, {
      reason: `${field}: ${problem}; ${this.#hint}`,
      rule: this.#rule,
      field,
    });
  }

  /** An object with exactly the required keys plus any of the optional ones, nothing else. */
  object(
    value: unknown,
    field: string,
    required: readonly string[],
    optional: readonly string[] = [],
  ): JsonObject {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      this.fail(field, 'must be an object');
    const allowed = new Set([...required, ...optional]);
    for (const key of Object.keys(value)) {
      if (!allowed.has(key))
        this.fail(`${field}.${key}`, `unknown field (allowed: ${[...allowed].join(', ')})`);
    }
    for (const key of required) {
      if (!Object.hasOwn(value, key)) this.fail(`${field}.${key}`, 'is missing');
    }
    return value as JsonObject;
  }

  array(value: unknown, field: string, min: number, max: number): readonly unknown[] {
    if (!Array.isArray(value)) this.fail(field, 'must be an array');
    if (value.length < min || value.length > max) {
      this.fail(field, `must have between ${min} and ${max} items, has ${value.length}`);
    }
    return value;
  }

  string(
    value: unknown,
    field: string,
    min: number,
    max: number,
    pattern?: RegExp,
    patternText?: string,
  ): string {
    if (typeof value !== 'string') this.fail(field, 'must be a string');
    if (value.length < min || value.length > max) {
      this.fail(field, `must be ${min} to ${max} characters long, is ${value.length}`);
    }
    if (pattern !== undefined && !pattern.test(value)) {
      this.fail(
        field,
        `must be ${patternText ?? `a string matching ${pattern}`}, got ${JSON.stringify(value).slice(0, 80)}`,
      );
    }
    return value;
  }

  integer(value: unknown, field: string, min: number, max: number): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) this.fail(field, 'must be an integer');
    if (value < min || value > max) this.fail(field, `must be between ${min} and ${max}, got ${value}`);
    return value;
  }

  boolean(value: unknown, field: string): boolean {
    if (typeof value !== 'boolean') this.fail(field, 'must be true or false');
    return value;
  }

  oneOf<T extends string>(value: unknown, field: string, options: readonly T[]): T {
    if (typeof value !== 'string' || !(options as readonly string[]).includes(value)) {
      this.fail(field, `must be one of ${options.map((o) => JSON.stringify(o)).join(', ')}`);
    }
    return value as T;
  }
}

export const HEX32_PATTERN = /^[0-9a-f]{64}$/;
export const HEX32_TEXT = '64 lower-case hex characters (32 bytes)';
/** Target names appear in URLs, file names and state keys, so they keep to a safe alphabet. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;
export const NAME_TEXT = 'letters, digits and . _ : @ - (starting with a letter or digit)';
