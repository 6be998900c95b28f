/**
 * Validator keys for simulated networks: real Ed25519 keys, derived deterministically from the
 * validator index so that a seed reproduces byte for byte (signatures, digests, traces). They are
 * only for simulation: anyone can derive them.
 */
import { createPrivateKey, createPublicKey, type KeyObject, verify as nodeVerify } from 'node:crypto';
import type { Signer, Verifier } from '../consensus/types.ts';
import type { DomainTag } from '../crypto/domains.ts';
import { publicKeyToHex, sign, signingBytes } from '../crypto/ed25519.ts';
import { sha256 } from '../crypto/hash.ts';
import { isSignatureHex, type PublicKeyHex, type SignatureHex, type ValidatorId } from '../encoding/brand.ts';
import { assert } from '../errors.ts';

/** DER prefix of an Ed25519 PKCS#8 private key; the raw 32-byte seed follows it. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface SimKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly publicKeyHex: PublicKeyHex;
}

const keyCache: SimKey[] = [];

/** The key of simulated validator `id` (the same in every run). */
export function simKey(id: number): SimKey {
  assert(Number.isSafeInteger(id) && id >= 0 && id < 1024, `no simulated key for validator ${id}`);
  let key = keyCache[id];
  if (key === undefined) {
    const seed = sha256(`configchain/sim/validator-key/${id}`);
    const privateKey = createPrivateKey({
      key: Buffer.concat([PKCS8_PREFIX, seed]),
      format: 'der',
      type: 'pkcs8',
    });
    const publicKey = createPublicKey(privateKey);
    key = { privateKey, publicKey, publicKeyHex: publicKeyToHex(publicKey) };
    keyCache[id] = key;
  }
  return key;
}

export function simKeys(n: number): SimKey[] {
  return Array.from({ length: n }, (_, i) => simKey(i));
}

export function simSigner(id: number): Signer {
  const key = simKey(id);
  return { sign: (domain: DomainTag, payload: unknown) => sign(domain, payload, key.privateKey) };
}

/**
 * A verifier shared by all replicas of one run: real Ed25519 checks, with results remembered by
 * (validator, domain, signature, payload bytes) so a message that n-1 replicas check is verified
 * once. The memo is bounded and simply cleared when full.
 */
export class CachingVerifier implements Verifier {
  private readonly memo = new Map<string, boolean>();
  verifications = 0;

  constructor(
    private readonly keys: readonly SimKey[],
    private readonly memoMax = 50_000,
  ) {}

  verify(domain: DomainTag, payload: unknown, signature: SignatureHex, validator: ValidatorId): boolean {
    const key = this.keys[validator];
    if (key === undefined || !isSignatureHex(signature)) return false;
    let bytes: Buffer;
    try {
      bytes = signingBytes(domain, payload);
    } catch {
      return false;
    }
    const memoKey = `${validator}|${signature}|${bytes.toString('latin1')}`;
    const known = this.memo.get(memoKey);
    if (known !== undefined) return known;
    this.verifications++;
    // The bytes are already canonical, so node:crypto checks them directly instead of
    // canonicalizing the payload a second time inside ed25519.verify.
    const ok = nodeVerify(null, bytes, key.publicKey, Buffer.from(signature, 'hex'));
    if (this.memo.size >= this.memoMax) this.memo.clear();
    this.memo.set(memoKey, ok);
    return ok;
  }
}
