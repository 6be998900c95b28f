/**
 * Private key files: PKCS#8 PEM readable by the owner only. Kept apart from the signature code
 * (ed25519.ts) so that what a device embeds to verify proofs imports no file system.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type KeyPair, publicKeyToHex } from './ed25519.ts';

/** Writes a private key as PKCS#8 PEM readable by its owner only (mode 0600). */
export function savePrivateKey(path: string, key: KeyObject): void {
  mkdirSync(dirname(path), { recursive: true });
  const pem = key.export({ format: 'pem', type: 'pkcs8' });
  writeFileSync(path, pem, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
}

export class KeyFileError extends Error {
  readonly code = 'KEY_FILE';
}

/** Loads a private key saved by savePrivateKey, refusing files that others can read. */
export function loadPrivateKey(path: string): KeyPair {
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new KeyFileError(
      `private key ${path} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${path}`,
    );
  }
  const privateKey = createPrivateKey(readFileSync(path));
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new KeyFileError(`${path} holds a ${privateKey.asymmetricKeyType} key, not Ed25519`);
  }
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, publicKeyHex: publicKeyToHex(publicKey) };
}
