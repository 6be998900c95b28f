/** Hex and base64 conversions with strict validation (no silent truncation of odd input). */

const HEX = /^(?:[0-9a-fA-F]{2})*$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function fromHex(hex: string): Buffer {
  if (!HEX.test(hex)) throw new TypeError('not a hex string of whole bytes');
  return Buffer.from(hex, 'hex');
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export function fromBase64(text: string): Buffer {
  if (!BASE64.test(text)) throw new TypeError('not a padded base64 string');
  return Buffer.from(text, 'base64');
}

export function concatBytes(...parts: readonly Uint8Array[]): Buffer {
  return Buffer.concat(parts);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}
