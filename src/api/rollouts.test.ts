/**
 * Rollout reads over HTTP against the in-memory facade (real ledger rules, real signatures):
 * GET /v1/rollouts and /v1/rollouts/:id, and the rollout part of a target proof, which the device
 * verifier accepts as served (the JSON schema keeps every committed field) and refuses when any
 * part of it is altered.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { commitPayload } from '../consensus/certificate.ts';
import { Domain } from '../crypto/domains.ts';
import { sign } from '../crypto/ed25519.ts';
import type { TargetProof } from '../device/contract.ts';
import { verifyTargetProof } from '../device/verify.ts';
import type {
  BlockHash,
  Hash32Hex,
  Height,
  SignatureHex,
  TargetName,
  ValidatorId,
  View,
} from '../encoding/brand.ts';
import { type RolloutEntry, signRelease, type Transaction } from '../ledger/index.ts';
import { enrollTx } from '../ledger/testing.ts';
import { MemoryFacade, memoryNetwork } from './memory-facade.ts';
import { buildApiServer } from './server.ts';

const sha = (c: string) => c.repeat(64) as Hash32Hex;

describe('rollout reads', () => {
  const net = memoryNetwork(5000, Date.now());
  const [a1, a2] = net.adminKeys.map((a) => ({ id: a.id, privateKey: a.key.privateKey }));
  let facade: MemoryFacade;
  let app: FastifyInstance;

  /**
   * The in-memory facade leaves certificates unsigned; a device checks them, so the proof gets the
   * commit signatures of every validator, as a real network's would carry.
   */
  function certified(proof: TargetProof): TargetProof {
    const c = proof.certificate;
    const payload = commitPayload(
      net.genesis.chainId,
      c.view as View,
      c.height as Height,
      c.blockHash as BlockHash,
    );
    const signatures = net.validatorKeys.map((k, i) => ({
      validator: i as ValidatorId,
      signature: sign(Domain.pbftCommit, payload, k.privateKey) as SignatureHex,
    }));
    return { ...proof, certificate: { ...c, signatures } };
  }

  async function commit(tx: Transaction): Promise<void> {
    const result = await facade.submitTx(tx, { waitMs: 0 });
    assert.equal(result.status, 'committed', JSON.stringify(result));
  }

  before(async () => {
    assert.ok(a1 !== undefined && a2 !== undefined);
    facade = new MemoryFacade(net, 0);
    app = await buildApiServer(facade);
    const chainId = net.genesis.chainId;
    for (let i = 0; i < 20; i++) {
      await commit(enrollTx(chainId, a1, { deviceId: `d-${i}`, group: 'G', target: 'group:G' }));
    }
    const release = {
      type: 'release',
      chainId,
      target: 'group:G' as TargetName,
      version: 1,
      sha256: sha('a'),
      size: 10,
      mediaType: 'text/plain',
    } as const;
    await commit(signRelease(release, [a1, a2]));
    for (const [rolloutId, waves] of [['r-1', [10, 50, 100]]] as const) {
      await commit(
        signRelease(
          {
            type: 'rollout',
            chainId,
            rolloutId,
            target: 'group:G' as TargetName,
            version: 1,
            waves: [...waves],
            maxFailuresPercent: 5,
          },
          [a1, a2],
        ),
      );
    }
  });
  after(async () => app.close());

  it('lists the rollouts and answers one by id, 404 with a stable code for an unknown one', async () => {
    const list = await app.inject({ method: 'GET', url: '/v1/rollouts' });
    assert.equal(list.statusCode, 200);
    const rollouts = (list.json() as { rollouts: RolloutEntry[] }).rollouts;
    assert.deepEqual(
      rollouts.map((r) => r.rolloutId),
      ['r-1'],
    );
    const one = await app.inject({ method: 'GET', url: '/v1/rollouts/r-1' });
    assert.equal(one.statusCode, 200);
    const entry = one.json() as RolloutEntry;
    assert.deepEqual(entry, facade.rollout('r-1'), 'the answer carries every committed field');
    assert.equal(
      entry.progress.reduce((n, p) => n + p.devices, 0),
      20,
      'every enrolled device of the group is in a wave',
    );
    const missing = await app.inject({ method: 'GET', url: '/v1/rollouts/nope' });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().code, 'ROLLOUT_NOT_FOUND');
    const tooMany = await app.inject({ method: 'GET', url: '/v1/rollouts?limit=100000' });
    assert.equal(tooMany.statusCode, 400);
  });

  it('proves the rollout in a target proof, and the device verifier refuses any change to it', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/targets/group:G/proof' });
    assert.equal(res.statusCode, 200);
    const proof = certified(res.json() as TargetProof);
    const ctx = {
      genesis: net.genesis,
      target: 'group:G',
      lastAppliedVersion: 0,
      nowMs: Date.now(),
      headerAgeMsMax: 60_000,
    };
    const verdict = verifyTargetProof(proof, ctx);
    assert.ok(verdict.ok, JSON.stringify(verdict));
    assert.equal(verdict.rollout?.rolloutId, 'r-1');
    assert.equal(verdict.rollout?.status, 'running');

    const rollout = proof.rollout;
    assert.ok(rollout !== undefined && rollout.entry !== null);
    const altered: unknown[] = [
      { ...proof, rollout: { ...rollout, entry: { ...rollout.entry, status: 'done' } } },
      { ...proof, rollout: { ...rollout, entry: { ...rollout.entry, currentWave: 2 } } },
      { ...proof, rollout: { ...rollout, pointer: null, entry: null, entryProof: null } },
      { ...proof, rollout: { ...rollout, entryProof: rollout.pointerProof } },
    ];
    for (const forged of altered) {
      const refused = verifyTargetProof(forged, ctx);
      assert.equal(refused.ok, false, JSON.stringify((forged as TargetProof).rollout));
      assert.ok(
        !refused.ok && ['ROLLOUT_PROOF', 'MALFORMED'].includes(refused.code),
        JSON.stringify(refused),
      );
    }

    // A target that never had a rollout: the pointer's absence is proven, and the verdict has none.
    const other = certified(
      (await app.inject({ method: 'GET', url: '/v1/targets/group:H/proof' })).json() as TargetProof,
    );
    assert.equal(other.rollout?.pointer, null);
    const none = verifyTargetProof(other, { ...ctx, target: 'group:H' });
    assert.ok(none.ok && none.rollout === null, JSON.stringify(none));
    // Claiming G's rollout for H does not verify.
    const borrowed = verifyTargetProof({ ...other, rollout }, { ...ctx, target: 'group:H' });
    assert.equal(borrowed.ok, false);
  });
});
