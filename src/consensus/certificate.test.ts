import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Domain } from '../crypto/domains.ts';
import { publicKeyToHex, sign } from '../crypto/ed25519.ts';
import type { BlockHash, Height, SignatureHex, ValidatorId, View } from '../encoding/brand.ts';
import type { CommitCertificate } from '../ledger/types.ts';
import { commitPayload, makeCommitCertificate, quorumSize, verifyCommitCertificate } from './certificate.ts';
import { deterministicKey } from './testkit.ts';

const chainId = 'cert-test';
const keys = [1, 2, 3, 4, 5, 6, 7].map((s) => deterministicKey(s));
const blockHash = 'ab'.repeat(32) as BlockHash;

function certificate(signers: readonly number[], hash = blockHash): CommitCertificate {
  const payload = commitPayload(chainId, 2 as View, 9 as Height, hash);
  return makeCommitCertificate(
    9 as Height,
    2 as View,
    hash,
    signers.map((i) => ({
      validator: i as ValidatorId,
      signature: sign(Domain.pbftCommit, payload, keys[i]!.privateKey),
    })),
  );
}

const four = keys.slice(0, 4).map((k) => k.publicKey);

describe('commit certificates', () => {
  it('quorum is 2f+1 with f = floor((n-1)/3)', () => {
    assert.deepEqual([4, 5, 6, 7, 10].map(quorumSize), [3, 3, 3, 5, 7]);
  });

  it('verifies 2f+1 valid signatures with public keys alone (KeyObjects or hex)', () => {
    assert.deepEqual(verifyCommitCertificate(certificate([0, 2, 3]), { chainId, validators: four }), {
      ok: true,
    });
    const hex = four.map((k) => publicKeyToHex(k));
    assert.deepEqual(verifyCommitCertificate(certificate([3, 1, 0]), { chainId, validators: hex }), {
      ok: true,
    });
    assert.deepEqual(verifyCommitCertificate(certificate([0, 1, 2, 3]), { chainId, validators: four }), {
      ok: true,
    });
  });

  it('rejects too few, duplicate, unknown and invalid signatures with a reason', () => {
    const reasons = (cert: CommitCertificate, validators = four): string => {
      const r = verifyCommitCertificate(cert, { chainId, validators });
      assert.equal(r.ok, false);
      return r.ok ? '' : r.reason;
    };
    assert.match(reasons(certificate([0, 1])), /quorum is 3/);
    const dup = certificate([0, 1, 2]);
    assert.match(
      reasons({ ...dup, signatures: [dup.signatures[0]!, dup.signatures[0]!, dup.signatures[1]!] }),
      /two signatures by validator 0/,
    );
    assert.match(reasons(certificate([0, 1, 4])), /unknown validator 4/);
    const bad = certificate([0, 1, 2]);
    const flipped = `${bad.signatures[1]!.signature.slice(0, -2)}00` as SignatureHex;
    assert.match(
      reasons({
        ...bad,
        signatures: [
          bad.signatures[0]!,
          { validator: 1 as ValidatorId, signature: flipped },
          bad.signatures[2]!,
        ],
      }),
      /validator 1 does not verify/,
    );
    assert.match(
      reasons({ ...certificate([0, 1, 2]), blockHash: 'cd'.repeat(32) as BlockHash }),
      /does not verify/,
    );
    assert.match(reasons({ ...certificate([0, 1, 2]), view: 3 as View }), /does not verify/);
    assert.match(
      reasons(
        certificate([0, 1, 2]),
        keys.slice(0, 3).map((k) => k.publicKey),
      ),
      /at least 4/,
    );
    // n = 7 needs 5 signatures: 3 are not enough.
    assert.match(
      reasons(
        certificate([0, 1, 2]),
        keys.map((k) => k.publicKey),
      ),
      /quorum is 5/,
    );
  });

  it('binds the certificate to the chain and to an expected block', () => {
    const cert = certificate([0, 1, 2]);
    assert.equal(verifyCommitCertificate(cert, { chainId: 'other', validators: four }).ok, false);
    assert.equal(
      verifyCommitCertificate(cert, {
        chainId,
        validators: four,
        expected: { height: 9 as Height, blockHash },
      }).ok,
      true,
    );
    assert.equal(
      verifyCommitCertificate(cert, {
        chainId,
        validators: four,
        expected: { height: 10 as Height, blockHash },
      }).ok,
      false,
    );
  });

  it('never throws on malformed input', () => {
    const junk: unknown[] = [null, 7, {}, { height: 1, view: 0, blockHash, signatures: 'x' }, { height: -1 }];
    for (const j of junk) {
      assert.equal(verifyCommitCertificate(j as CommitCertificate, { chainId, validators: four }).ok, false);
    }
    const cert = certificate([0, 1, 2]);
    const broken = { ...cert, signatures: [null, ...cert.signatures] } as unknown as CommitCertificate;
    assert.equal(verifyCommitCertificate(broken, { chainId, validators: four }).ok, false);
  });
});
