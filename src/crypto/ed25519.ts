/**
 * Ed25519 keys, signatures and domain separation, on node:crypto only.
 * KeyObjects are created once per key and reused: creating one costs more than a signature.
 */
import {
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto';
import type { PublicKeyHex, SignatureHex } from '../encoding/brand.ts';
import { fromHex, toHex } from '../encoding/bytes.ts';
import { canonicalBytes } from '../encoding/canonical.ts';
import { type DomainTag, isDomainTag } from './domains.ts';

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly publicKeyHex: PublicKeyHex;
}

export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, publicKeyHex: publicKeyToHex(publicKey) };
}

export function publicKeyToHex(key: KeyObject): PublicKeyHex {
  const der = key.export({ format: 'der', type: 'spki' });
  return toHex(der.subarray(SPKI_PREFIX.length)) as PublicKeyHex;
}

/** A verifying key from its raw hex form. Throws a TypeError on anything but 32 bytes of hex. */
export function publicKeyFromHex(hex: string): KeyObject {
  const raw = fromHex(hex);
  if (raw.length !== 32) throw new TypeError(`an Ed25519 public key is 32 bytes, got ${raw.length}`);
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** The bytes actually signed: tag, a zero byte, then the payload's canonical JSON. */
export function signingBytes(domain: DomainTag, payload: unknown): Buffer {
  if (!isDomainTag(domain)) throw new TypeError(`unknown signing domain ${JSON.stringify(domain)}`);
  return Buffer.concat([Buffer.from(domain, 'utf8'), Buffer.of(0), canonicalBytes(payload)]);
}

export function sign(domain: DomainTag, payload: unknown, privateKey: KeyObject): SignatureHex {
  return toHex(nodeSign(null, signingBytes(domain, payload), privateKey)) as SignatureHex;
}

/** True only for a valid signature by this key over this payload in this domain. Never throws on bad input. */
export function verify(
  domain: DomainTag,
  payload: unknown,
  signature: string,
  publicKey: KeyObject,
): boolean {
  if (typeof signature !== 'string' || signature.length !== 128) return false;
  let sig: Buffer;
  try {
    sig = fromHex(signature);
  } catch {
    return false;
  }
  return nodeVerify(null, signingBytes(domain, payload), publicKey, sig);
}

/** The same check on libuv's thread pool, so a busy event loop can verify on the other core. */
export function verifyAsync(
  domain: DomainTag,
  payload: unknown,
  signature: string,
  publicKey: KeyObject,
): Promise<boolean> {
  if (typeof signature !== 'string' || signature.length !== 128) return Promise.resolve(false);
  let sig: Buffer;
  try {
    sig = fromHex(signature);
  } catch {
    return Promise.resolve(false);
  }
  const data = signingBytes(domain, payload);
  return new Promise((resolve) => {
    nodeVerify(null, data, publicKey, sig, (err, ok) => resolve(err === null && ok));
  });
}
