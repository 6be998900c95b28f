/**
 * The attacks of issue 5 that the device verifier alone must stop, in-process and fast: real
 * blocks built by the ledger, real quorum certificates, real state proofs, and the same forgeries
 * the lying validator serves on the wire. Each refusal is asserted with its stable code. The
 * multi-process tests (wire.test.ts) show the same attacks against the running agent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256Hex } from '../../src/crypto/hash.ts';
import type { TargetProof } from '../../src/device/contract.ts';
import { type RefusalCode, verifyArtifact, verifyTargetProof } from '../../src/device/verify.ts';
import { allProofForgeries, forgeProof, type ProofForgery } from './adversaries.ts';
import { certifiedChain, contentOf } from './fixture.ts';

const MINUTE = 60_000;
const headerAgeMsMax = 5 * MINUTE;
const startMs = Date.UTC(2026, 0, 1);
// Block 1 releases version 1 of every target; blocks 2 and 3 move "default" to versions 2 and 3.
const chain = certifiedChain(
  [
    [
      { target: 'default', version: 1, content: contentOf('default', 1) },
      { target: 'group:cameras', version: 1, content: contentOf('group:cameras', 1) },
      { target: 'group:thermostats', version: 1, content: contentOf('group:thermostats', 1) },
    ],
    [{ target: 'default', version: 2, content: contentOf('default', 2) }],
    [{ target: 'default', version: 3, content: contentOf('default', 3) }],
  ],
  { startMs, stepMs: MINUTE },
);
const { genesis } = chain.net;

function proofAt(block: number, target: string): TargetProof {
  const proof = chain.proofs[block - 1]?.get(target);
  assert.ok(proof !== undefined, `no proof of ${target} after block ${block}`);
  return proof;
}

function verify(
  proof: unknown,
  options: { target?: string; lastApplied?: number; nowMs?: number } = {},
): ReturnType<typeof verifyTargetProof> {
  const header = (proof as TargetProof).header;
  return verifyTargetProof(proof, {
    genesis,
    target: options.target ?? 'default',
    lastAppliedVersion: options.lastApplied ?? 0,
    nowMs: options.nowMs ?? header.timestampMs + 1000,
    headerAgeMsMax,
  });
}

function refusalCode(verdict: { readonly ok: true } | { readonly ok: false; readonly code: string }): string {
  return verdict.ok ? 'accepted' : verdict.code;
}

describe('attacks the device verifier stops (in-process)', () => {
  it('the honest proofs are accepted, so every refusal below is caused by the attack', () => {
    for (const block of [1, 2, 3]) {
      const verdict = verify(proofAt(block, 'default'));
      assert.ok(verdict.ok && verdict.outcome === 'newer' && verdict.entry?.version === block);
    }
    assert.ok(verify(proofAt(1, 'group:cameras'), { target: 'group:cameras' }).ok);
  });

  it('attack 1: bytes other than the released ones are refused by hash, or by size', () => {
    const verdict = verify(proofAt(3, 'default'));
    assert.ok(verdict.ok && verdict.entry !== null);
    const evil = Buffer.from(contentOf('default', 3).toString('utf8').replace('3', '6'), 'utf8');
    assert.equal(evil.byteLength, verdict.entry.size);
    assert.equal(
      refusalCode(verifyArtifact(verdict.entry, sha256Hex(evil), evil.byteLength)),
      'ARTIFACT_HASH',
    );
    const longer = Buffer.concat([contentOf('default', 3), Buffer.from('#')]);
    assert.equal(
      refusalCode(verifyArtifact(verdict.entry, sha256Hex(longer), longer.byteLength)),
      'ARTIFACT_SIZE',
    );
    const real = contentOf('default', 3);
    assert.deepEqual(verifyArtifact(verdict.entry, sha256Hex(real), real.byteLength), { ok: true });
  });

  it('attack 2: a valid old proof is refused after a newer version was applied, and old bytes fail the current proof', () => {
    const old = proofAt(1, 'default');
    assert.equal(refusalCode(verify(old, { lastApplied: 2 })), 'ROLLBACK');
    // The same old proof was fine before anything newer was applied: only the rollback is refused.
    assert.equal(refusalCode(verify(old, { lastApplied: 0 })), 'accepted');
    const current = verify(proofAt(3, 'default'), { lastApplied: 2 });
    assert.ok(current.ok && current.entry !== null);
    const oldBytes = contentOf('default', 1);
    assert.equal(
      refusalCode(verifyArtifact(current.entry, sha256Hex(oldBytes), oldBytes.byteLength)),
      'ARTIFACT_HASH',
    );
  });

  it('attack 3: a validly certified header is refused once it is older than headerAgeMsMax, and cannot be made to look fresh', () => {
    const proof = proofAt(3, 'default');
    const t = proof.header.timestampMs;
    assert.equal(refusalCode(verify(proof, { nowMs: t + headerAgeMsMax })), 'accepted');
    assert.equal(refusalCode(verify(proof, { nowMs: t + headerAgeMsMax + 1 })), 'STALE_HEADER');
    assert.equal(refusalCode(verify(proof, { nowMs: t + 24 * 60 * MINUTE })), 'STALE_HEADER');
    const refreshed = forgeProof(proof, 'header-timestamp');
    assert.equal(
      refusalCode(verify(refreshed, { nowMs: refreshed.header.timestampMs + 1000 })),
      'HEADER_HASH',
    );
  });

  it('attack 4: a valid proof for another target, another group or another network is refused', () => {
    const cameras = proofAt(1, 'group:cameras');
    // Served as it is to a device that follows another target or group.
    assert.equal(refusalCode(verify(cameras, { target: 'default' })), 'WRONG_TARGET');
    assert.equal(refusalCode(verify(cameras, { target: 'group:thermostats' })), 'WRONG_TARGET');
    // Relabelled: the envelope names the device's target, the entry is another group's.
    assert.equal(
      refusalCode(verify({ ...cameras, target: 'group:thermostats' }, { target: 'group:thermostats' })),
      'WRONG_TARGET',
    );
    // Relabelled entry too: the certified state proof does not prove it.
    const relabelled = {
      ...cameras,
      target: 'group:thermostats',
      entry: { ...cameras.entry, target: 'group:thermostats' },
    };
    assert.equal(refusalCode(verify(relabelled, { target: 'group:thermostats' })), 'STATE_PROOF');
    // Another group's state proof with the device's own genuine entry.
    const thermostats = proofAt(1, 'group:thermostats');
    assert.equal(
      refusalCode(
        verify({ ...thermostats, stateProof: cameras.stateProof }, { target: 'group:thermostats' }),
      ),
      'STATE_PROOF',
    );
    // A genuine proof from another network (same shape, another genesis and validator set).
    const other = certifiedChain([[{ target: 'default', version: 9, content: contentOf('default', 9) }]], {
      startMs,
      stepMs: MINUTE,
      seed: 'another network',
    });
    const foreign = other.proofs[0]?.get('default');
    assert.ok(foreign !== undefined);
    assert.equal(refusalCode(verify(foreign)), 'CHAIN_MISMATCH');
  });

  it('attack 5: every forgery of a lying validator is refused, each with the code of the check it breaks', () => {
    const expected: Record<ProofForgery, RefusalCode> = {
      'header-state-root': 'HEADER_HASH',
      'header-timestamp': 'HEADER_HASH',
      'entry-version': 'STATE_PROOF',
      'too-few-signers': 'CERT_QUORUM',
      'unknown-key': 'CERT_SIGNATURE',
      'unknown-signer': 'CERT_UNKNOWN_SIGNER',
      'duplicate-signer': 'CERT_QUORUM',
      'state-proof': 'STATE_PROOF',
      'consistent-forged-entry': 'CERT_SIGNATURE',
    };
    assert.deepEqual(Object.keys(expected).sort(), [...allProofForgeries].sort());
    const proof = proofAt(3, 'default');
    for (const forgery of allProofForgeries) {
      const forged = forgeProof(proof, forgery);
      assert.equal(
        refusalCode(verify(forged, { lastApplied: 2, nowMs: proof.header.timestampMs + 1000 })),
        expected[forgery],
        forgery,
      );
    }
  });
});
