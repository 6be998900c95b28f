/**
 * The contract between validators and devices: the JSON a device fetches to trust a configuration
 * (TargetProof, TxProof) and the signed header a device puts on its API requests.
 *
 * Both sides import this file: the node builds these shapes, the device verifier (src/device)
 * checks them. It depends only on node:crypto, the project's encoding and the ledger's types, so a
 * device can embed it.
 *
 * Device requests carry one header, signed with the device's Ed25519 key in Domain.deviceRequest:
 *
 *   Authorization: ConfigChain-Device device=<deviceId>, ts=<ms>, sha256=<hex of body>, sig=<hex>
 *
 * The signed claim is {chainId, deviceId, method, path, sha256, timestampMs}; `path` includes the
 * query string. A validator checks it against the device's entry on the ledger (enrolled, not
 * revoked) and the timestamp against its clock (deviceRequestSkewMsMax).
 */
import type { KeyObject } from 'node:crypto';
import { Domain } from '../crypto/domains.ts';
import { publicKeyFromHex, sign, verify } from '../crypto/ed25519.ts';
import type { Hash32Hex, Height, SignatureHex, TargetName, TxId } from '../encoding/brand.ts';
import { isHash32Hex, isSignatureHex } from '../encoding/brand.ts';
import type {
  BlockHeader,
  CommitCertificate,
  RolloutEntry,
  TargetEntry,
  TargetRolloutEntry,
  Transaction,
} from '../ledger/types.ts';
import type { SparseProof } from '../merkle/sparse.ts';

/**
 * GET /v1/targets/:target/proof. The latest certified header, its commit certificate, and the
 * target's state entry with its sparse Merkle proof against header.stateRoot. When the target has
 * no entry, `entry` is null and `stateProof` proves its absence.
 */
export interface TargetProof {
  readonly target: TargetName;
  readonly header: BlockHeader;
  readonly certificate: CommitCertificate;
  readonly entry: TargetEntry | null;
  readonly stateProof: SparseProof;
  /**
   * The target's staged rollout, proved against the same header.stateRoot: the
   * "target-rollout/<target>" pointer (null with an absence proof when the target never had a
   * rollout) and, when the pointer exists, the "rollout/<id>" entry it names. Optional so that
   * proofs from nodes built before rollouts still parse; a device that sees no field treats the
   * target as having no rollout.
   */
  readonly rollout?: TargetRolloutProof;
}

/** The rollout part of a TargetProof; every entry is proved against the proof's header.stateRoot. */
export interface TargetRolloutProof {
  readonly pointer: TargetRolloutEntry | null;
  readonly pointerProof: SparseProof;
  /** Present exactly when `pointer` is: the rollout it names, and that entry's proof. */
  readonly entry: RolloutEntry | null;
  readonly entryProof: SparseProof | null;
}

/**
 * GET /v1/tx/:id/proof. The transaction, the header of its block with that block's commit
 * certificate, and the RFC 9162 inclusion proof of the transaction (leaf = canonical tx bytes)
 * at `index` among the block's `txCount` transactions, against header.txRoot.
 */
export interface TxProof {
  readonly txId: TxId;
  readonly tx: Transaction;
  readonly height: Height;
  readonly header: BlockHeader;
  readonly certificate: CommitCertificate;
  readonly index: number;
  readonly txCount: number;
  readonly inclusion: readonly Hash32Hex[];
}

export const deviceScheme = 'ConfigChain-Device';

/** What a device signs for one API request. */
export interface DeviceClaim {
  readonly chainId: string;
  readonly deviceId: string;
  /** Upper-case HTTP method. */
  readonly method: string;
  /** Path with query string, exactly as sent (e.g. "/v1/targets/default/proof"). */
  readonly path: string;
  /** SHA-256 hex of the request body (of the empty string when there is none). */
  readonly sha256: Hash32Hex;
  readonly timestampMs: number;
}

/** The Authorization header value for a claim. */
export function deviceAuthorization(claim: DeviceClaim, key: KeyObject): string {
  const sig = sign(Domain.deviceRequest, claim, key);
  return `${deviceScheme} device=${claim.deviceId}, ts=${claim.timestampMs}, sha256=${claim.sha256}, sig=${sig}`;
}

export interface ParsedDeviceAuthorization {
  readonly deviceId: string;
  readonly timestampMs: number;
  readonly sha256: Hash32Hex;
  readonly signature: SignatureHex;
}

export const deviceAuthorizationHelp =
  `send "Authorization: ${deviceScheme} device=<deviceId>, ts=<ms>, sha256=<hex of body>, sig=<Ed25519 hex>" ` +
  'signed with the device key of an enrolled device (`configchain device` does this)';

/** Parses the header; returns a reason string when it is malformed. Never throws. */
export function parseDeviceAuthorization(header: string | undefined): ParsedDeviceAuthorization | string {
  if (header === undefined || header.length === 0)
    return `this request needs a device signature: ${deviceAuthorizationHelp}`;
  if (!header.startsWith(`${deviceScheme} `) || header.length > 1024) {
    return `unknown authorization scheme; ${deviceAuthorizationHelp}`;
  }
  const fields = new Map<string, string>();
  for (const part of header.slice(deviceScheme.length + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const deviceId = fields.get('device');
  const ts = Number(fields.get('ts'));
  const sha256 = fields.get('sha256');
  const sig = fields.get('sig');
  if (
    deviceId === undefined ||
    deviceId.length === 0 ||
    !Number.isSafeInteger(ts) ||
    !isHash32Hex(sha256) ||
    !isSignatureHex(sig)
  ) {
    return `malformed device authorization header; ${deviceAuthorizationHelp}`;
  }
  return { deviceId, timestampMs: ts, sha256, signature: sig };
}

/** Checks a parsed header's signature over the claim rebuilt from the request. */
export function verifyDeviceClaim(
  claim: DeviceClaim,
  signature: SignatureHex,
  publicKey: KeyObject | string,
): boolean {
  try {
    const key = typeof publicKey === 'string' ? publicKeyFromHex(publicKey) : publicKey;
    return verify(Domain.deviceRequest, claim, signature, key);
  } catch {
    return false;
  }
}
