import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Domain } from '../crypto/domains.ts';
import { sign } from '../crypto/ed25519.ts';
import { sha256Hex } from '../crypto/hash.ts';
import type { SignatureHex, TargetName, ValidatorId } from '../encoding/brand.ts';
import { checkTransaction, LedgerState, signRelease, txId } from '../ledger/index.ts';
import { createTestNetwork, seededKey } from '../ledger/testing.ts';
import type { ReleaseBody } from '../ledger/types.ts';
import {
  ConsensusVerifier,
  defaultVerifyOn,
  TxSignatureChecker,
  type VerifyOn,
  verifyOnChoices,
} from './verifier.ts';

const { genesis, adminKeys, validatorKeys } = createTestNetwork({ seed: 'verifier-tests' });
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

for (const verifyOn of verifyOnChoices) {
  describe(`TxSignatureChecker agrees with the ledger on release approvals (${verifyOn})`, () => {
    const state = LedgerState.empty();

    it('accepts a release the ledger accepts even when an unknown signer added an approval', async () => {
      const tx = signRelease(release(1), [admin0, admin1, stranger]);
      assert.equal(checkTransaction(genesis, state, tx).ok, true, 'the ledger ignores unknown signers');
      const checker = new TxSignatureChecker(genesis, verifyOn);
      assert.equal(await checker.check(txId(tx), tx, state), true);
      assert.equal(checker.isChecked(txId(tx)), true);
    });

    it('refuses a release whose known admin signature is bad, or that only strangers signed', async () => {
      const checker = new TxSignatureChecker(genesis, verifyOn);
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
}

describe('where signatures are checked', () => {
  it('uses the thread pool only when the machine has a core beyond the validators it runs', () => {
    assert.equal(defaultVerifyOn(1, 2), 'thread-pool');
    assert.equal(defaultVerifyOn(4, 8), 'thread-pool');
    assert.equal(defaultVerifyOn(4, 4), 'event-loop');
    assert.equal(defaultVerifyOn(4, 2), 'event-loop');
  });

  for (const verifyOn of verifyOnChoices) {
    it(`ConsensusVerifier accepts a validator's signature and refuses a forged one or another signer (${verifyOn})`, async () => {
      const verifier = new ConsensusVerifier(genesis, verifyOn as VerifyOn);
      const [v0, v1] = validatorKeys as [(typeof validatorKeys)[0], (typeof validatorKeys)[0]];
      const payload = { height: 7, hash: sha256Hex('block 7') };
      const good = sign(Domain.pbftPrepare, payload, v0.privateKey);
      const forged = good.replace(/^../, good.startsWith('00') ? '11' : '00') as SignatureHex;
      for (const sig of [good, forged]) await verifier.preverify(Domain.pbftPrepare, payload, sig, 0);
      assert.equal(verifier.verify(Domain.pbftPrepare, payload, good, 0 as ValidatorId), true);
      assert.equal(verifier.verify(Domain.pbftPrepare, payload, forged, 0 as ValidatorId), false);
      assert.equal(verifier.verify(Domain.pbftPrepare, payload, good, 1 as ValidatorId), false, 'not v1');
      assert.equal(
        verifier.verify(Domain.pbftCommit, payload, good, 0 as ValidatorId),
        false,
        'other domain',
      );
      assert.equal(
        verifier.verify(Domain.pbftPrepare, { ...payload, height: 8 }, good, 0 as ValidatorId),
        false,
        'other payload',
      );
      assert.equal(
        verifier.verify(
          Domain.pbftPrepare,
          payload,
          sign(Domain.pbftPrepare, payload, v1.privateKey),
          1 as ValidatorId,
        ),
        true,
      );
    });
  }
});
