import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256Hex } from '../crypto/hash.ts';
import type { TargetName } from '../encoding/brand.ts';
import { checkTransaction, LedgerState, signRelease, txId } from '../ledger/index.ts';
import { createTestNetwork, seededKey } from '../ledger/testing.ts';
import type { ReleaseBody } from '../ledger/types.ts';
import { TxSignatureChecker } from './verifier.ts';

const { genesis, adminKeys } = createTestNetwork({ seed: 'verifier-tests' });
const [admin0, admin1] = adminKeys as [(typeof adminKeys)[0], (typeof adminKeys)[0]];
const stranger = { id: 'mallory', privateKey: seededKey('mallory').privateKey };

function release(version: number): ReleaseBody {
  const bytes = Buffer.from(`config v${version}`);
  return {
    type: 'release',
    chainId: genesis.chainId,
    target: 'default' as TargetName,
    version,
    sha256: sha256Hex(bytes),
    size: bytes.length,
    mediaType: 'text/plain',
  };
}

describe('TxSignatureChecker agrees with the ledger on release approvals', () => {
  const state = LedgerState.empty();

  it('accepts a release the ledger accepts even when an unknown signer added an approval', async () => {
    const tx = signRelease(release(1), [admin0, admin1, stranger]);
    assert.equal(checkTransaction(genesis, state, tx).ok, true, 'the ledger ignores unknown signers');
    const checker = new TxSignatureChecker(genesis);
    assert.equal(await checker.check(txId(tx), tx, state), true);
    assert.equal(checker.isChecked(txId(tx)), true);
  });

  it('refuses a release whose known admin signature is bad, or that only strangers signed', async () => {
    const checker = new TxSignatureChecker(genesis);
    const good = signRelease(release(2), [admin0, admin1]);
    const forged = {
      ...good,
      signatures: good.signatures.map((s, i) =>
        i === 0 ? { ...s, signature: s.signature.replace(/^../, '00') } : s,
      ),
    } as typeof good;
    assert.equal(await checker.check(txId(forged), forged, state), false);
    const strangersOnly = signRelease(release(3), [stranger]);
    assert.equal(await checker.check(txId(strangersOnly), strangersOnly, state), false);
    assert.equal(checker.isChecked(txId(forged)), false);
  });
});
