/** SHA-256 through node:crypto's one-shot hash (no Hash object per call on the hot path). */
import { hash } from 'node:crypto';
import type { Hash32Hex } from '../encoding/brand.ts';
import { canonicalBytes } from '../encoding/canonical.ts';

export function sha256(data: Uint8Array | string): Buffer {
  return hash('sha256', data, 'buffer');
}

export function sha256Hex(data: Uint8Array | string): Hash32Hex {
  return hash('sha256', data, 'hex') as Hash32Hex;
}

/** SHA-256 of a value's RFC 8785 canonical bytes. */
export function canonicalHash(value: unknown): Hash32Hex {
  return sha256Hex(canonicalBytes(value));
}
