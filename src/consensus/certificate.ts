/**
 * Commit certificates: the 2f+1 signed COMMIT messages of a block in compact form. A third party
 * (a device, an offline verifier, storage's chain check) verifies one with the validators' public
 * keys alone. This file imports only crypto, encoding and types, so the device verifier can reuse it.
 */
import type { KeyObject } from 'node:crypto';
import { Domain } from '../crypto/domains.ts';
import { publicKeyFromHex, verify } from '../crypto/ed25519.ts';
import type { BlockHash, Height, ValidatorId, View } from '../encoding/brand.ts';
import { isHash32Hex, isSignatureHex } from '../encoding/brand.ts';
import type { CommitCertificate } from '../ledger/types.ts';

/** The exact payload a COMMIT signs (Domain.pbftCommit). Others sign and verify these same bytes. */
export function commitPayload(
  chainId: string,
  view: View,
  height: Height,
  blockHash: BlockHash,
): { chainId: string; view: number; height: number; blockHash: string } {
  return { chainId, view, height, blockHash };
}

/** f for n validators: the most faulty validators n tolerates. */
export function faultsTolerated(n: number): number {
  return Math.floor((n - 1) / 3);
}

/** 2f+1 for n validators. */
export function quorumSize(n: number): number {
  return 2 * faultsTolerated(n) + 1;
}

export interface CertificateContext {
  readonly chainId: string;
  /** The validators' public keys by validator id (index). */
  readonly validators: readonly (KeyObject | string)[];
  /** When given, the certificate must be for this height and block hash. */
  readonly expected?: { readonly height: Height; readonly blockHash: BlockHash };
}

export type CertificateCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/**
 * Checks a certificate: well-formed fields, at least 2f+1 signatures, each from a distinct known
 * validator, each a valid Domain.pbftCommit signature over commitPayload(chainId, view, height,
 * blockHash). Never throws on malformed input; the reason says what was wrong.
 */
export function verifyCommitCertificate(
  cert: CommitCertificate,
  context: CertificateContext,
): CertificateCheck {
  const n = context.validators.length;
  if (n < 4) return { ok: false, reason: `a validator set needs at least 4 members, got ${n}` };
  if (typeof cert !== 'object' || cert === null) return { ok: false, reason: 'certificate is not an object' };
  if (!Number.isSafeInteger(cert.height) || cert.height < 1) {
    return { ok: false, reason: `certificate height ${String(cert.height)} is not a positive integer` };
  }
  if (!Number.isSafeInteger(cert.view) || cert.view < 0) {
    return { ok: false, reason: `certificate view ${String(cert.view)} is not a non-negative integer` };
  }
  if (!isHash32Hex(cert.blockHash))
    return { ok: false, reason: 'certificate block hash is not 64 hex characters' };
  if (context.expected !== undefined) {
    if (cert.height !== context.expected.height) {
      return {
        ok: false,
        reason: `certificate is for height ${cert.height}, expected ${context.expected.height}`,
      };
    }
    if (cert.blockHash !== context.expected.blockHash) {
      return { ok: false, reason: `certificate at height ${cert.height} is for another block hash` };
    }
  }
  if (!Array.isArray(cert.signatures)) return { ok: false, reason: 'certificate signatures is not a list' };
  const quorum = quorumSize(n);
  if (cert.signatures.length < quorum) {
    return {
      ok: false,
      reason: `certificate has ${cert.signatures.length} signatures, a quorum is ${quorum}`,
    };
  }
  if (cert.signatures.length > n) {
    return { ok: false, reason: `certificate has ${cert.signatures.length} signatures for ${n} validators` };
  }
  const payload = commitPayload(context.chainId, cert.view, cert.height, cert.blockHash);
  const seen = new Set<number>();
  for (const entry of cert.signatures) {
    const id = entry?.validator;
    if (!Number.isSafeInteger(id) || id < 0 || id >= n) {
      return { ok: false, reason: `certificate names unknown validator ${String(id)}` };
    }
    if (seen.has(id)) return { ok: false, reason: `certificate has two signatures by validator ${id}` };
    seen.add(id);
    if (!isSignatureHex(entry.signature)) {
      return { ok: false, reason: `signature of validator ${id} is not 128 hex characters` };
    }
    const key = context.validators[id];
    if (key === undefined) return { ok: false, reason: `no public key for validator ${id}` };
    const publicKey = typeof key === 'string' ? publicKeyFromHexSafe(key) : key;
    if (publicKey === null) return { ok: false, reason: `public key of validator ${id} is malformed` };
    if (!verify(Domain.pbftCommit, payload, entry.signature, publicKey)) {
      return { ok: false, reason: `signature of validator ${id} does not verify` };
    }
  }
  return { ok: true };
}

function publicKeyFromHexSafe(hex: string): KeyObject | null {
  try {
    return publicKeyFromHex(hex);
  } catch {
    return null;
  }
}

/** Builds the compact certificate from commit signatures (the replica calls it on commit). */
export function makeCommitCertificate(
  height: Height,
  view: View,
  blockHash: BlockHash,
  signatures: readonly {
    readonly validator: ValidatorId;
    readonly signature: CommitCertificate['signatures'][number]['signature'];
  }[],
): CommitCertificate {
  const sorted = [...signatures].sort((a, b) => a.validator - b.validator);
  return { height, view, blockHash, signatures: sorted };
}
