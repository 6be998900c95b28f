/**
 * A DeviceSigner (src/api/client.ts) from a device's Ed25519 key: the Node side of signing API
 * requests as a device. The device agent and the CLI pass it as the client's `device` option.
 */
import type { KeyObject } from 'node:crypto';
import { sha256Hex } from '../crypto/hash.ts';
import { deviceAuthorization } from '../device/contract.ts';
import type { DeviceSigner } from './client.ts';

export interface DeviceSignerOptions {
  readonly chainId: string;
  readonly deviceId: string;
  readonly key: KeyObject;
  /** The clock the signed timestamp comes from; Date.now by default. */
  readonly nowMs?: () => number;
}

export function deviceSigner(options: DeviceSignerOptions): DeviceSigner {
  const now = options.nowMs ?? (() => Date.now());
  return {
    deviceId: options.deviceId,
    authorize: (method, path, body) =>
      deviceAuthorization(
        {
          chainId: options.chainId,
          deviceId: options.deviceId,
          method: method.toUpperCase(),
          path,
          sha256: sha256Hex(body),
          timestampMs: now(),
        },
        options.key,
      ),
  };
}
