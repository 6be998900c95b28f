/**
 * Upload authorization for config servers: an admin signs {method, path, sha256 of the body,
 * timestampMs} with its Ed25519 key in the upload-token domain, and sends it in one header:
 *
 *   Authorization: ConfigChain-Upload admin=<adminId>, ts=<ms>, sha256=<hex>, sig=<hex>
 *
 * The server checks the signature against genesis admins and the timestamp against its clock
 * (uploadTokenSkewMsMax), before reading the body; then checks the body hashes to the signed
 * sha256. A captured header is only good for the same bytes to the same path for a few minutes,
 * and a (target, version) is immutable, so replaying it changes nothing.
 */
import type { KeyObject } from 'node:crypto';
import { uploadTokenSkewMsMax } from '../constants.ts';
import { Domain } from '../crypto/domains.ts';
import { publicKeyFromHex, sign, verify } from '../crypto/ed25519.ts';
import { isHash32Hex, isSignatureHex } from '../encoding/brand.ts';
import type { AdminInfo } from '../ledger/types.ts';

export const uploadScheme = 'ConfigChain-Upload';

export interface UploadClaim {
  readonly method: string;
  readonly path: string;
  readonly sha256: string;
  readonly timestampMs: number;
}

export function uploadAuthorization(adminId: string, key: KeyObject, claim: UploadClaim): string {
  const sig = sign(Domain.uploadToken, claim, key);
  return `${uploadScheme} admin=${adminId}, ts=${claim.timestampMs}, sha256=${claim.sha256}, sig=${sig}`;
}

export type UploadCheck =
  | { readonly ok: true; readonly adminId: string; readonly sha256: string }
  | { readonly ok: false; readonly reason: string };

const HOW =
  `send "Authorization: ${uploadScheme} admin=<adminId>, ts=<ms>, sha256=<hex of body>, sig=<Ed25519 hex>" ` +
  'signed with an admin key of genesis (`configchain publish` does this)';

/** Verifies an upload's Authorization header. Never throws on bad input. */
export class UploadVerifier {
  private readonly keys: Map<string, KeyObject>;
  private readonly now: () => number;

  constructor(admins: readonly AdminInfo[], now: () => number = Date.now) {
    this.keys = new Map(admins.map((a) => [a.id, publicKeyFromHex(a.publicKey)]));
    this.now = now;
  }

  check(header: string | undefined, method: string, path: string): UploadCheck {
    if (header === undefined || header.length === 0) {
      return { ok: false, reason: `uploads need an admin signature: ${HOW}` };
    }
    if (!header.startsWith(`${uploadScheme} `) || header.length > 1024) {
      return { ok: false, reason: `unknown authorization scheme; ${HOW}` };
    }
    const fields = new Map<string, string>();
    for (const part of header.slice(uploadScheme.length + 1).split(',')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
    }
    const adminId = fields.get('admin');
    const ts = Number(fields.get('ts'));
    const sha256 = fields.get('sha256');
    const sig = fields.get('sig');
    if (adminId === undefined || !Number.isSafeInteger(ts) || !isHash32Hex(sha256) || !isSignatureHex(sig)) {
      return { ok: false, reason: `malformed authorization header; ${HOW}` };
    }
    const key = this.keys.get(adminId);
    if (key === undefined) {
      return {
        ok: false,
        reason: `"${adminId}" is not an admin of this network's genesis; sign with an admin key`,
      };
    }
    const skew = Math.abs(this.now() - ts);
    if (skew > uploadTokenSkewMsMax) {
      return {
        ok: false,
        reason: `the signed timestamp is ${Math.round(skew / 1000)} s away from this server's clock (at most ${uploadTokenSkewMsMax / 1000} s); sign again now and check the clocks`,
      };
    }
    const claim: UploadClaim = { method: method.toUpperCase(), path, sha256, timestampMs: ts };
    if (!verify(Domain.uploadToken, claim, sig, key)) {
      return {
        ok: false,
        reason: `the signature does not verify for admin ${adminId} over {method, path, sha256, timestampMs}; ${HOW}`,
      };
    }
    return { ok: true, adminId, sha256 };
  }
}
