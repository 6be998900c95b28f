/**
 * The dashboard's in-browser checks (web/src/verify.ts, on WebCrypto) and its line diff
 * (web/src/diff.ts), run in Node against the validators' own code: a proof the ledger builds and
 * a certificate signed with real keys must pass, and any tampering must fail.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { commitPayload } from '../../src/consensus/certificate.ts';
import { Domain } from '../../src/crypto/domains.ts';
import { generateKeyPair, sign } from '../../src/crypto/ed25519.ts';
import type { BlockHash, Hash32Hex, Height, TargetName, TxId, View } from '../../src/encoding/brand.ts';
import { canonicalBytes } from '../../src/encoding/canonical.ts';
import { blockHash, LedgerState, txId, txInclusionProof, txRoot } from '../../src/ledger/index.ts';
import type { BlockHeader, StateKey, TargetEntry, Transaction } from '../../src/ledger/types.ts';
import { sideBySide, splitLines } from '../../web/src/diff.ts';
import {
  checkCertificateSignatures,
  checkInclusion,
  checkStateProof,
  checkTxProof,
  hasEd25519,
  type TxProofLike,
} from '../../web/src/verify.ts';

const chainId = 'browser-check';

function tx(n: number): Transaction {
  return {
    body: {
      type: 'attest',
      chainId,
      target: 'default',
      version: n + 1,
      sha256: String(n % 10).repeat(64),
      size: n,
    },
    signatures: [],
  } as unknown as Transaction;
}

const validators = Array.from({ length: 4 }, () => generateKeyPair());
const publicKeys = new Map(validators.map((v, i) => [i, v.publicKeyHex as string]));

function proofFor(txs: readonly Transaction[], index: number, signers: readonly number[]): TxProofLike {
  const header = {
    chainId,
    height: 7,
    prevHash: 'cd'.repeat(32),
    timestampMs: 1_700_000_000_000,
    txRoot: txRoot(txs),
    stateRoot: 'ef'.repeat(32),
    validatorSetHash: '01'.repeat(32),
    view: 2,
    proposer: 2,
    txCount: txs.length,
  } as unknown as BlockHeader;
  const hash = blockHash(header);
  const payload = commitPayload(chainId, 2 as View, 7 as Height, hash as BlockHash);
  const target = txs[index];
  assert.ok(target !== undefined);
  return {
    txId: txId(target),
    tx: target,
    height: 7,
    header,
    certificate: {
      height: 7,
      view: 2,
      blockHash: hash,
      signatures: signers.map((i) => ({
        validator: i,
        signature: sign(Domain.pbftCommit, payload, validators[i]!.privateKey),
      })),
    },
    index,
    txCount: txs.length,
    inclusion: txInclusionProof(txs, index),
  };
}

describe('in-browser proof checks agree with the ledger', () => {
  it('accepts every inclusion proof the ledger builds and refuses it at another index', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }).chain((n) => fc.tuple(fc.constant(n), fc.nat({ max: n - 1 }))),
        async ([n, index]) => {
          const txs = Array.from({ length: n }, (_, i) => tx(i));
          const proof = txInclusionProof(txs, index);
          const leaf = canonicalBytes(txs[index]);
          assert.equal(await checkInclusion(index, n, leaf, proof, txRoot(txs)), null);
          if (n > 1) {
            const other = (index + 1) % n;
            assert.notEqual(await checkInclusion(other, n, leaf, proof, txRoot(txs)), null);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('passes every check of an honest proof with a quorum of real signatures', async () => {
    assert.equal(await hasEd25519(), true, 'Node 20 WebCrypto verifies Ed25519');
    const txs = Array.from({ length: 5 }, (_, i) => tx(i));
    const checks = await checkTxProof(proofFor(txs, 3, [0, 1, 3]), publicKeys, 4);
    assert.deepEqual(
      checks.map((c) => [c.name, c.state]),
      [
        ['transaction id', 'pass'],
        ['RFC 9162 inclusion', 'pass'],
        ['certificate is for this header', 'pass'],
        ['commit signatures', 'pass'],
      ],
    );
  });

  it('fails the check that each kind of tampering breaks', async () => {
    const txs = Array.from({ length: 5 }, (_, i) => tx(i));
    const stateOf = async (proof: TxProofLike) =>
      Object.fromEntries((await checkTxProof(proof, publicKeys, 4)).map((c) => [c.name, c.state]));
    const honest = proofFor(txs, 2, [0, 1, 2]);

    const otherTx = await stateOf({ ...honest, tx: tx(9) });
    assert.equal(otherTx['transaction id'], 'fail');
    assert.equal(otherTx['RFC 9162 inclusion'], 'fail');

    const movedHeader = await stateOf({ ...honest, header: { ...honest.header, height: 8 } });
    assert.equal(movedHeader['certificate is for this header'], 'fail');

    const tooFew = await stateOf(proofFor(txs, 2, [0, 1]));
    assert.equal(tooFew['commit signatures'], 'fail');

    const forged = proofFor(txs, 2, [0, 1, 2]);
    // Flip one bit of the last byte: setting it to a fixed value left the signature unchanged
    // whenever it already had that value (1 run in 256, with this test's random keys).
    const flipLastBit = (hex: string) =>
      `${hex.slice(0, -2)}${(Number.parseInt(hex.slice(-2), 16) ^ 1).toString(16).padStart(2, '0')}`;
    const sigs = forged.certificate.signatures.map((s, i) =>
      i === 0 ? { ...s, signature: flipLastBit(s.signature) } : s,
    );
    const checks = await checkCertificateSignatures(
      chainId,
      { ...forged.certificate, signatures: sigs },
      publicKeys,
    );
    assert.deepEqual(
      checks.map((c) => c.ok),
      [false, true, true],
    );
    const duplicated = await checkCertificateSignatures(
      chainId,
      {
        ...honest.certificate,
        signatures: [honest.certificate.signatures[0]!, honest.certificate.signatures[0]!],
      },
      publicKeys,
    );
    assert.deepEqual(
      duplicated.map((c) => c.ok),
      [true, false],
      'a second signature by the same validator does not count',
    );
  });
});

describe('state proofs in the browser', () => {
  function entry(n: number): TargetEntry {
    return {
      kind: 'target',
      target: `t${n}` as TargetName,
      source: 'release',
      version: n + 1,
      sha256: String(n % 10).repeat(64) as Hash32Hex,
      size: n,
      mediaType: 'text/plain',
      height: n as Height,
      txId: 'ab'.repeat(32) as TxId,
    };
  }

  it('accepts what the ledger proves, present or absent, and nothing else', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 40 }), fc.nat({ max: 60 }), async (n, probe) => {
        const entries = Array.from({ length: n }, (_, i) => entry(i));
        const state = LedgerState.fromEntries(entries);
        const key = `target/t${probe}`;
        const proof = state.proof(key as StateKey);
        const present = entries[probe] ?? null;
        assert.equal(await checkStateProof(state.root, key, present, proof), null);
        // The same proof never shows another value, or presence for an absent key.
        assert.notEqual(await checkStateProof(state.root, key, entry(probe + 100), proof), null);
        if (present !== null) assert.notEqual(await checkStateProof(state.root, key, null, proof), null);
        if (n > 0) assert.notEqual(await checkStateProof('00'.repeat(32), key, present, proof), null);
      }),
      { numRuns: 80 },
    );
  });
});

describe('side-by-side diff', () => {
  it('pairs a changed line and shows added ones', () => {
    const rows = sideBySide('a\nb\nc\n', 'a\nB\nc\nd\n');
    assert.ok(typeof rows !== 'string');
    assert.deepEqual(
      rows.map((r) => r.kind),
      ['same', 'changed', 'same', 'added'],
    );
  });

  it('rebuilds both texts from its rows', () => {
    const lines = fc.array(fc.constantFrom('x', 'y', 'z', ''), { maxLength: 30 });
    fc.assert(
      fc.property(lines, lines, (a, b) => {
        const left = a.join('\n');
        const right = b.join('\n');
        const rows = sideBySide(left, right);
        assert.ok(typeof rows !== 'string');
        const l = rows.flatMap((r) => ('left' in r ? [r.left] : []));
        const r = rows.flatMap((row) => ('right' in row ? [row.right] : []));
        assert.deepEqual(l, splitLines(left));
        assert.deepEqual(r, splitLines(right));
      }),
      { numRuns: 200 },
    );
  });

  it('refuses texts too long to compare in a browser', () => {
    const long = 'line\n'.repeat(5000);
    assert.equal(typeof sideBySide(long, 'x'), 'string');
  });
});
