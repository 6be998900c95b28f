/**
 * Branded primitive types. A brand costs nothing at run time but stops a block hash from being
 * passed where a transaction id is expected (the TypeScript compiler uses the same trick for Path).
 */
export type Brand<T, B extends string> = T & { readonly __brand: B };

/** Lower-case hex of a 32-byte SHA-256 digest. */
export type Hash32Hex = Brand<string, 'Hash32Hex'>;
/** SHA-256 of a canonical block header. */
export type BlockHash = Brand<string, 'BlockHash'>;
/** SHA-256 of a canonical transaction. */
export type TxId = Brand<string, 'TxId'>;
/** Block height; genesis is 0. Consensus sequence number n is height n. */
export type Height = Brand<number, 'Height'>;
/** PBFT view number. */
export type View = Brand<number, 'View'>;
/** Index of a validator in the genesis validator list (0..n-1). */
export type ValidatorId = Brand<number, 'ValidatorId'>;
/** Lower-case hex of a raw 32-byte Ed25519 public key. */
export type PublicKeyHex = Brand<string, 'PublicKeyHex'>;
/** Lower-case hex of a 64-byte Ed25519 signature. */
export type SignatureHex = Brand<string, 'SignatureHex'>;
/** Device identifier chosen at enrollment. */
export type DeviceId = Brand<string, 'DeviceId'>;
/** Configuration target name, for example "default" or "group:cameras". */
export type TargetName = Brand<string, 'TargetName'>;

const HEX32 = /^[0-9a-f]{64}$/;
const HEX64 = /^[0-9a-f]{128}$/;

export function isHash32Hex(value: unknown): value is Hash32Hex {
  return typeof value === 'string' && HEX32.test(value);
}

export function isSignatureHex(value: unknown): value is SignatureHex {
  return typeof value === 'string' && HEX64.test(value);
}

export function asHash32Hex(value: string): Hash32Hex {
  if (!isHash32Hex(value))
    throw new TypeError(`expected 64 lower-case hex characters, got ${JSON.stringify(value)}`);
  return value;
}

export function asHeight(value: number): Height {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new TypeError(`height must be a non-negative integer, got ${value}`);
  return value as Height;
}

export function asView(value: number): View {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new TypeError(`view must be a non-negative integer, got ${value}`);
  return value as View;
}

export function asValidatorId(value: number): ValidatorId {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new TypeError(`validator id must be a non-negative integer, got ${value}`);
  return value as ValidatorId;
}
