/**
 * Typed operating errors (Lodestar's pattern): a stable code, structured data, and a message that
 * says what was wrong and what to do. Programmer errors are plain assertion failures instead.
 */
export class ConfigChainError<Code extends string = string, Data extends object = object> extends Error {
  readonly code: Code;
  readonly data: Data;

  constructor(code: Code, message: string, data: Data = {} as Data) {
    super(message);
    this.name = 'ConfigChainError';
    this.code = code;
    this.data = data;
  }
}

/** Invariant check that stays on in production: a broken invariant is a bug, so fail loudly. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionFailure(message);
}

export class AssertionFailure extends Error {
  constructor(message: string) {
    super(`invariant violated: ${message}`);
    this.name = 'AssertionFailure';
  }
}
