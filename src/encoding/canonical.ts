/**
 * RFC 8785 (JSON Canonicalization Scheme) bytes: the only bytes this project hashes or signs.
 * Two parties that agree on a value agree on its bytes, whatever order its keys were built in.
 */
import { canonicalize } from 'json-canonicalize';

/** A JSON value that canonicalizes without loss: no undefined, functions, NaN or Infinity. */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

const encoder = new TextEncoder();

/** Canonical JSON text of a value. Throws on values JSON cannot represent exactly. */
export function canonicalString(value: unknown): string {
  assertCanonicalizable(value, '$');
  return canonicalize(value);
}

/** Canonical UTF-8 bytes of a value. */
export function canonicalBytes(value: unknown): Uint8Array {
  return encoder.encode(canonicalString(value));
}

function assertCanonicalizable(value: unknown, path: string): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`${path}: ${value} has no JSON form`);
      return;
    case 'object': {
      if (value === null) return;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) assertCanonicalizable(value[i], `${path}[${i}]`);
        return;
      }
      if (ArrayBuffer.isView(value))
        throw new TypeError(`${path}: binary data must be hex or base64 encoded first`);
      for (const [key, item] of Object.entries(value)) {
        if (item === undefined) throw new TypeError(`${path}.${key}: undefined has no JSON form`);
        assertCanonicalizable(item, `${path}.${key}`);
      }
      return;
    }
    default:
      throw new TypeError(`${path}: a ${typeof value} has no JSON form`);
  }
}
