import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signedPart } from '../consensus/messages.ts';
import type { Action, ConsensusMessage, PrePrepare, ReplicaState, ViewChange } from '../consensus/types.ts';
import { sign } from '../crypto/ed25519.ts';
import type { BlockHash, Height, SignatureHex, ValidatorId, View } from '../encoding/brand.ts';
import { blockDigest, checkSimBlock, SimApplication, type SimBlock } from './app.ts';
import { type Adversary, createAdversary } from './byzantine.ts';
import type { ByzantineBehaviour } from './faults.ts';
import { CachingVerifier, simKey, simKeys } from './keys.ts';
import { Rng } from './rng.ts';

const chainId = 'byz-test';
const n = 4;
const verifier = new CachingVerifier(simKeys(n));
const genesis = '00'.repeat(32) as BlockHash;

const state: ReplicaState = {
  id: 0 as ValidatorId,
  n,
  f: 1,
  view: 0 as View,
  status: 'normal',
  primary: 0 as ValidatorId,
  lastDelivered: 3 as Height,
  lastExecuted: { height: 3 as Height, hash: genesis },
  stableCheckpoint: { seq: 0 as Height, digest: genesis },
  pendingRequests: 0,
};

function adversary(
  behaviours: ByzantineBehaviour[],
  id = 0,
  seed = 1,
): { adv: Adversary; counts: Map<string, number> } {
  const counts = new Map<string, number>();
  const adv = createAdversary({
    id,
    n,
    f: 1,
    chainId,
    behaviours,
    rng: new Rng(seed),
    app: new SimApplication(),
    count: (b) => counts.set(b, (counts.get(b) ?? 0) + 1),
  });
  return { adv, counts };
}

function signed<M extends ConsensusMessage<SimBlock>>(message: M, by: number): M {
  const { domain, payload } = signedPart(chainId, message);
  return { ...message, signature: sign(domain, payload, simKey(by).privateKey) };
}

function validSignature(m: ConsensusMessage<SimBlock>): boolean {
  const { domain, payload } = signedPart(chainId, m);
  return verifier.verify(domain, payload, m.signature, m.replica);
}

const block: SimBlock = {
  height: 4 as Height,
  parent: genesis,
  view: 0 as View,
  proposer: 0 as ValidatorId,
  timeMs: 10,
  entries: [
    { clientId: 'c', requestId: '1', payload: 'op-1', outcome: 'accepted' },
    { clientId: 'c', requestId: '2', payload: 'op-2', outcome: 'accepted' },
  ],
};
const prePrepare = signed<PrePrepare<SimBlock>>(
  {
    kind: 'pre-prepare',
    view: 0 as View,
    seq: 4 as Height,
    digest: blockDigest(block),
    block,
    replica: 0 as ValidatorId,
    signature: '' as SignatureHex,
  },
  0,
);

function sends(actions: Action<SimBlock>[]): { to: number; message: ConsensusMessage<SimBlock> }[] {
  return actions.flatMap((a) => (a.kind === 'send' ? [{ to: a.to, message: a.message }] : []));
}

describe('Byzantine adversary', () => {
  it('silent: sends nothing, serves no blocks, but keeps its local actions', () => {
    const { adv } = adversary(['silent']);
    const out = adv.transform(
      [
        { kind: 'persist', records: [] },
        { kind: 'broadcast', message: prePrepare },
      ],
      state,
      0,
    );
    assert.deepEqual(
      out.map((a) => a.kind),
      ['persist'],
    );
    assert.equal(adv.tamperBlocks([]), null);
    assert.deepEqual(adv.onTimer(state, 0), []);
  });

  it('equivocate: different backups get different valid blocks for one (view, seq), all properly signed', () => {
    const { adv, counts } = adversary(['equivocate']);
    const out = sends(adv.transform([{ kind: 'broadcast', message: prePrepare }], state, 0));
    const digests = new Set(out.map((s) => (s.message as PrePrepare<SimBlock>).digest));
    assert.ok(digests.size >= 2, 'at least two blocks for one sequence number');
    for (const { message } of out) {
      const pp = message as PrePrepare<SimBlock>;
      assert.equal(pp.seq, 4);
      assert.equal(blockDigest(pp.block), pp.digest);
      assert.equal(checkSimBlock(pp.block), null);
      assert.ok(validSignature(pp), 'its own key signs the equivocation');
    }
    assert.ok((counts.get('equivocate') ?? 0) > 0);
  });

  it('conflicting-votes: prepares for another digest to some peers, validly signed', () => {
    const { adv } = adversary(['conflicting-votes'], 1, 3);
    const prepare = signed(
      {
        kind: 'prepare' as const,
        view: 0 as View,
        seq: 4 as Height,
        digest: prePrepare.digest,
        replica: 1 as ValidatorId,
        signature: '' as SignatureHex,
      },
      1,
    );
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      for (const { message } of sends(adv.transform([{ kind: 'broadcast', message: prepare }], state, 0))) {
        assert.ok(validSignature(message));
        if (message.kind === 'prepare') seen.add(message.digest);
      }
    }
    assert.ok(seen.size >= 2, 'votes for more than one digest');
  });

  it('bad-signatures: forged messages never verify for the validator they name', () => {
    const { adv, counts } = adversary(['bad-signatures'], 2, 5);
    let forged = 0;
    for (let i = 0; i < 30; i++) {
      for (const { message } of sends(
        adv.transform([{ kind: 'broadcast', message: prePrepare }], state, 0),
      )) {
        if (message.signature !== prePrepare.signature || message.replica !== prePrepare.replica) {
          forged++;
          assert.equal(validSignature(message), false);
        }
      }
      for (const { message } of sends(adv.onTimer(state, 0))) assert.equal(validSignature(message), false);
    }
    assert.ok(forged > 0 && (counts.get('bad-signatures') ?? 0) > 0);
  });

  it('invalid-block: blocks the application rejects, or digests that do not match the block', () => {
    let bad = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const { adv } = adversary(['invalid-block'], 0, seed);
      const pp = { ...prePrepare, seq: (4 + seed) as Height };
      for (const { message } of sends(adv.transform([{ kind: 'broadcast', message: pp }], state, 0))) {
        const m = message as PrePrepare<SimBlock>;
        if (blockDigest(m.block) !== m.digest || checkSimBlock(m.block) !== null) bad++;
      }
    }
    assert.ok(bad > 0, 'some proposals are invalid or mismatched');
  });

  it('invalid-block: tampers with state-transfer answers so blocks no longer match their certificates', () => {
    const cert = { height: 4 as Height, view: 0 as View, blockHash: blockDigest(block), signatures: [] };
    let tampered = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const { adv } = adversary(['invalid-block'], 0, seed);
      const answer = adv.tamperBlocks([{ block, certificate: cert }]);
      assert.ok(answer !== null);
      if (blockDigest(answer[0]!.block) !== cert.blockHash) tampered++;
    }
    assert.ok(tampered > 0);
  });

  it('bogus-view-change: view-changes whose own signature verifies but whose prepared proof is forged', () => {
    const { adv } = adversary(['bogus-view-change'], 3, 2);
    let found = 0;
    for (let i = 0; i < 30; i++) {
      for (const { message } of sends(adv.onTimer(state, 0))) {
        if (message.kind !== 'view-change') continue;
        found++;
        assert.ok(validSignature(message), 'signed by the Byzantine replica itself');
        const vc = message as ViewChange<SimBlock>;
        const forgedProof = vc.prepared.some(
          (c) => !validSignature(c.prePrepare) || c.prepares.some((p) => !validSignature(p)),
        );
        assert.ok(forgedProof || vc.checkpoint.proof.length === 0, 'the P set or checkpoint proof is forged');
      }
    }
    assert.ok(found > 0);
  });

  it('replay: resends messages it saw earlier', () => {
    const { adv } = adversary(['replay'], 1, 4);
    adv.observe(prePrepare, 0);
    const out = sends(adv.onTimer(state, 500));
    assert.ok(out.length > 0);
    assert.ok(out.every((s) => s.message === prePrepare && s.to !== 1));
  });

  it('never signs with another validator key', () => {
    const { adv } = adversary(
      ['equivocate', 'conflicting-votes', 'invalid-block', 'bogus-view-change'],
      2,
      9,
    );
    const pp = signed({ ...prePrepare, replica: 2 as ValidatorId, view: 2 as View }, 2);
    for (let i = 0; i < 20; i++) {
      const out = [
        ...sends(adv.transform([{ kind: 'broadcast', message: pp }], { ...state, view: 2 as View }, 0)),
        ...sends(adv.onTimer(state, 0)),
      ];
      for (const { message } of out) {
        if (validSignature(message)) assert.equal(message.replica, 2, 'a valid signature is always its own');
      }
    }
  });
});
