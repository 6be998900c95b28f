/**
 * Device request authentication on the validator's API (the header of src/device/contract.ts).
 *
 * A request that carries the header is always checked, whatever the network's policy: the device
 * must be enrolled and not revoked in the committed state, the signed timestamp near this
 * validator's clock, the signed body hash the hash of the body received, and the signature valid
 * over the claim rebuilt from the request (chainId, deviceId, method, path with query, body hash,
 * timestamp). Without the header a request passes only on networks whose genesis allows the
 * article's unauthenticated calls (demo networks).
 *
 * The answer is data (status, stable code, message): the server turns it into the article's
 * plain-text error on /validateHash and into the JSON error body on the v1 routes.
 */
import type { KeyObject } from 'node:crypto';
import { deviceKeysCachedMax, deviceRequestSkewMsMax } from '../constants.ts';
import { publicKeyFromHex } from '../crypto/ed25519.ts';
import { type DeviceClaim, parseDeviceAuthorization, verifyDeviceClaim } from '../device/contract.ts';
import type { DeviceId, Hash32Hex } from '../encoding/brand.ts';
import type { DeviceEntry, Genesis } from '../ledger/types.ts';

/** What the server knows of one request when it checks it. */
export interface DeviceRequest {
  /** The Authorization header, if any. */
  readonly authorization: string | undefined;
  /** Upper-case method. */
  readonly method: string;
  /** Path with query string, as received. */
  readonly path: string;
  /** SHA-256 hex of the raw body received (of the empty string when there was none). */
  readonly bodySha256: Hash32Hex;
}

export type DeviceAuthResult =
  /** device is null for an unauthenticated request the network's policy allows. */
  | { readonly ok: true; readonly device: DeviceEntry | null }
  | {
      readonly ok: false;
      readonly status: 401 | 403;
      readonly code: 'DEVICE_UNAUTHORIZED' | 'DEVICE_FORBIDDEN';
      readonly message: string;
    };

export class DeviceAuthenticator {
  readonly #genesis: Genesis;
  readonly #lookup: (id: DeviceId) => DeviceEntry | undefined;
  readonly #nowMs: () => number;
  /** Parsed public keys by hex: creating a KeyObject costs more than a verification. */
  readonly #keys = new Map<string, KeyObject>();

  constructor(genesis: Genesis, lookup: (id: DeviceId) => DeviceEntry | undefined, nowMs: () => number) {
    this.#genesis = genesis;
    this.#lookup = lookup;
    this.#nowMs = nowMs;
  }

  check(request: DeviceRequest): DeviceAuthResult {
    if (request.authorization === undefined || request.authorization === '') {
      if (this.#genesis.policy.allowUnauthenticatedCompat) return { ok: true, device: null };
      return unauthorized(
        `this network answers only signed device requests (genesis policy.allowUnauthenticatedCompat is false; networks made with configchain init --demo allow the article's unsigned calls); ${parseDeviceAuthorization(undefined)}`,
      );
    }
    const parsed = parseDeviceAuthorization(request.authorization);
    if (typeof parsed === 'string') return unauthorized(parsed);
    const device = this.#lookup(parsed.deviceId as DeviceId);
    if (device === undefined) {
      return forbidden(
        `device "${parsed.deviceId}" is not enrolled on this network's ledger; an admin must enroll it (configchain devices enroll) before it can use this validator`,
      );
    }
    const skewMs = parsed.timestampMs - this.#nowMs();
    if (Math.abs(skewMs) > deviceRequestSkewMsMax) {
      return unauthorized(
        `device "${parsed.deviceId}" signed its request with a timestamp ${Math.round(skewMs / 1000)} s away from this validator's clock (at most ${deviceRequestSkewMsMax / 1000} s allowed); set the device's clock and sign again`,
      );
    }
    if (parsed.sha256 !== request.bodySha256) {
      return unauthorized(
        `device "${parsed.deviceId}" signed a body with sha256 ${parsed.sha256}, but the body received hashes to ${request.bodySha256}; sign the exact bytes sent`,
      );
    }
    const claim: DeviceClaim = {
      chainId: this.#genesis.chainId,
      deviceId: parsed.deviceId,
      method: request.method.toUpperCase(),
      path: request.path,
      sha256: parsed.sha256,
      timestampMs: parsed.timestampMs,
    };
    const key = this.keyOf(device.publicKey);
    if (key === undefined || !verifyDeviceClaim(claim, parsed.signature, key)) {
      return unauthorized(
        `the signature of device "${parsed.deviceId}" does not verify over ${claim.method} ${claim.path} on chain ${claim.chainId} with the key enrolled on the ledger; sign with the device's own key`,
      );
    }
    if (device.status !== 'enrolled') {
      return forbidden(
        `device "${parsed.deviceId}" was revoked on the ledger and may no longer use this network; an admin must enroll it again under a new key`,
      );
    }
    return { ok: true, device };
  }

  private keyOf(hex: string): KeyObject | undefined {
    let key = this.#keys.get(hex);
    if (key !== undefined) return key;
    try {
      key = publicKeyFromHex(hex);
    } catch {
      return undefined;
    }
    if (this.#keys.size >= deviceKeysCachedMax) {
      const oldest = this.#keys.keys().next();
      if (oldest.done !== true) this.#keys.delete(oldest.value);
    }
    this.#keys.set(hex, key);
    return key;
  }
}

/** The targets a device may read proofs of: its own, and its group's rollout target. */
export function deviceMayRead(device: DeviceEntry, target: string): boolean {
  return target === device.target || (device.group !== '' && target === `group:${device.group}`);
}

function unauthorized(message: string): DeviceAuthResult {
  return { ok: false, status: 401, code: 'DEVICE_UNAUTHORIZED', message };
}

function forbidden(message: string): DeviceAuthResult {
  return { ok: false, status: 403, code: 'DEVICE_FORBIDDEN', message };
}
