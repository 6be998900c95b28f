import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Domain } from './domains.ts';
import { generateKeyPair, publicKeyFromHex, sign, verify, verifyAsync } from './ed25519.ts';
import { loadPrivateKey, savePrivateKey } from './keyfile.ts';

describe('ed25519 with domain separation', () => {
  const keys = generateKeyPair();
  const payload = { height: 7, hash: 'ab'.repeat(32) };

  it('verifies a signature in the domain it was made for', async () => {
    const sig = sign(Domain.blockHeader, payload, keys.privateKey);
    assert.equal(verify(Domain.blockHeader, payload, sig, keys.publicKey), true);
    assert.equal(await verifyAsync(Domain.blockHeader, payload, sig, keys.publicKey), true);
  });

  it('rejects a signature made for one kind when checked as any other kind', async () => {
    const sig = sign(Domain.pbftPrepare, payload, keys.privateKey);
    for (const other of Object.values(Domain)) {
      if (other === Domain.pbftPrepare) continue;
      assert.equal(verify(other, payload, sig, keys.publicKey), false, `accepted as ${other}`);
      assert.equal(await verifyAsync(other, payload, sig, keys.publicKey), false);
    }
  });

  it('rejects a changed payload, another key and malformed signatures', () => {
    const sig = sign(Domain.transaction, payload, keys.privateKey);
    assert.equal(verify(Domain.transaction, { ...payload, height: 8 }, sig, keys.publicKey), false);
    assert.equal(verify(Domain.transaction, payload, sig, generateKeyPair().publicKey), false);
    assert.equal(verify(Domain.transaction, payload, 'zz'.repeat(64), keys.publicKey), false);
    assert.equal(verify(Domain.transaction, payload, sig.slice(2), keys.publicKey), false);
  });

  it('does not depend on key order in the payload (canonical bytes)', () => {
    const sig = sign(Domain.transaction, { a: 1, b: 2 }, keys.privateKey);
    assert.equal(verify(Domain.transaction, { b: 2, a: 1 }, sig, keys.publicKey), true);
  });

  it('round-trips public keys through hex', () => {
    const sig = sign(Domain.transaction, payload, keys.privateKey);
    assert.equal(verify(Domain.transaction, payload, sig, publicKeyFromHex(keys.publicKeyHex)), true);
    assert.throws(() => publicKeyFromHex('abcd'), /32 bytes/);
  });

  it('saves private keys readable by the owner only and refuses loose ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cc-keys-'));
    const path = join(dir, 'k.pem');
    savePrivateKey(path, keys.privateKey);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(loadPrivateKey(path).publicKeyHex, keys.publicKeyHex);
    assert.throws(() => savePrivateKey(path, keys.privateKey), /EEXIST/);
    chmodSync(path, 0o644);
    assert.throws(() => loadPrivateKey(path), /chmod 600/);
  });
});
