/**
 * Deterministic test fixtures for every part that needs a network: a valid genesis document and
 * its private keys, all derived from a seed string (no randomness), so tests and simulations that
 * use the same seed see the same keys, hashes and roots.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { generateKeyPair, publicKeyToHex } from '../crypto/ed25519.ts';
import { sha256 } from '../crypto/hash.ts';
import type { DeviceId, PublicKeyHex, TargetName, ValidatorId } from '../encoding/brand.ts';
import { parseGenesis } from './genesis.ts';
import { type AdminKey, signAsAdmin } from './tx.ts';
import type { Genesis, Transaction } from './types.ts';

/** DER prefix of an Ed25519 PKCS#8 private key; the 32-byte seed follows it. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface SeededKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly publicKeyHex: PublicKeyHex;
}

/** An Ed25519 key pair whose secret is SHA-256 of the label: for tests and simulations only. */
export function seededKey(label: string): SeededKey {
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, sha256(`configchain-test-key/${label}`)]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, publicKeyHex: publicKeyToHex(publicKey) };
}

export interface TestNetworkOptions {
  readonly seed?: string;
  /** 3f+1; default 4. */
  readonly validators?: number;
  /** Default 3. */
  readonly admins?: number;
  /** Default 2. */
  readonly releaseThreshold?: number;
  readonly chainId?: string;
  readonly genesisTimeMs?: number;
}

export interface TestNetwork {
  readonly genesis: Genesis;
  readonly validatorKeys: readonly (SeededKey & { readonly id: ValidatorId })[];
  readonly adminKeys: readonly (SeededKey & AdminKey)[];
}

/** A valid genesis (it passes parseGenesis) for a loopback network, with its private keys. */
export function createTestNetwork(options: TestNetworkOptions = {}): TestNetwork {
  const seed = options.seed ?? 'default';
  const n = options.validators ?? 4;
  const validatorKeys = Array.from({ length: n }, (_, i) => ({
    ...seededKey(`${seed}/validator/${i}`),
    id: i as ValidatorId,
  }));
  const adminKeys = Array.from({ length: options.admins ?? 3 }, (_, i) => ({
    ...seededKey(`${seed}/admin/${i}`),
    id: `admin${i}`,
  }));
  const genesis = parseGenesis({
    chainId: options.chainId ?? `test-${seed}`.replace(/[^A-Za-z0-9._:@-]/g, '-'),
    genesisTimeMs: options.genesisTimeMs ?? 1_700_000_000_000,
    validators: validatorKeys.map((k, i) => ({
      id: i,
      publicKey: k.publicKeyHex,
      peerAddress: `127.0.0.1:${6001 + i}`,
      apiUrl: `http://127.0.0.1:${5001 + i}`,
    })),
    admins: adminKeys.map((k) => ({ id: k.id, publicKey: k.publicKeyHex })),
    releaseThreshold: options.releaseThreshold ?? 2,
    configSources: [
      { id: 'A', url: 'http://127.0.0.1:5101', role: 'device-facing' },
      { id: 'B', url: 'http://127.0.0.1:5102', role: 'validator-facing' },
    ],
    policy: {
      heartbeatIntervalMs: 5000,
      headerAgeMsMax: 60_000,
      inlineContentBytesMax: 4096,
      contentCopyBytesMax: 1024 * 1024,
      artifactBytesMax: 64 * 1024 * 1024,
      allowUnauthenticatedCompat: true,
      clockSkewMsMax: 2000,
    },
  });
  return { genesis, validatorKeys, adminKeys };
}

/** A device-enroll transaction signed by one admin; the device gets a fresh key unless one is given. */
export function enrollTx(
  chainId: string,
  admin: AdminKey,
  device: {
    readonly deviceId: string;
    readonly group: string;
    readonly target: string;
    readonly publicKey?: string;
  },
): Transaction {
  return signAsAdmin(
    {
      type: 'device-enroll',
      chainId,
      deviceId: device.deviceId as DeviceId,
      publicKey: (device.publicKey ?? generateKeyPair().publicKeyHex) as PublicKeyHex,
      group: device.group,
      target: device.target as TargetName,
    },
    admin.id,
    admin.privateKey,
  );
}
