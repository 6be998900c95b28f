import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BlockHash, Height, ValidatorId, View } from '../encoding/brand.ts';
import { verifyCommitCertificate } from './certificate.ts';
import { computeNewViewSet, Replica } from './replica.ts';
import { Cluster, req, TestApp, type TestBlock, testGenesisHash } from './testkit.ts';
import type { NewView, PersistRecord, PrePrepare, Prepare, ViewChange } from './types.ts';

const small = { checkpointInterval: 2, watermarkWindow: 4 };

function heights(c: Cluster): number[] {
  return c.members.map((m) => m.chain.length);
}

function sentPrepares(c: Cluster, id: number): Prepare[] {
  return c.members[id]!.records.flatMap((r: PersistRecord<TestBlock>) =>
    r.kind === 'prepare' ? [r.message] : [],
  );
}

function blockAt(c: Cluster, id: number, height: number): TestBlock {
  return c.members[id]!.chain[height - 1]!.block;
}

describe('PBFT replica: normal case', () => {
  it('commits requests at every replica with verifiable 2f+1 certificates', () => {
    const c = new Cluster({ n: 4 });
    for (let i = 0; i < 3; i++) {
      c.request(req('alice', i));
      c.tick(10, 10);
    }
    assert.deepEqual(heights(c), [3, 3, 3, 3]);
    c.checkAgreement();
    const keys = c.ring.keys.map((k) => k.publicKey);
    const cert = c.certificate(2, 2);
    assert.equal(cert.signatures.length, 3);
    assert.deepEqual(verifyCommitCertificate(cert, { chainId: c.chainId, validators: keys }), { ok: true });
    assert.equal(verifyCommitCertificate(cert, { chainId: 'other-chain', validators: keys }).ok, false);
  });

  it('batches pending requests into blocks of at most blockTxsMax', () => {
    const c = new Cluster({ n: 4, limits: { blockTxsMax: 3 } });
    for (let i = 0; i < 7; i++) c.request(req('bob', i));
    c.run();
    // Two full blocks go out at once; the last request waits for the batch timer.
    assert.deepEqual(heights(c), [2, 2, 2, 2]);
    c.tick(10, 10);
    assert.deepEqual(
      c.members[1]!.chain.map((b) => b.block.requests.length),
      [3, 3, 1],
    );
    c.checkAgreement();
  });

  it('answers a committed request as a duplicate and never queues a pending one twice', () => {
    const c = new Cluster({ n: 4, transcript: true });
    c.request(req('carol', 1));
    c.request(req('carol', 1));
    c.tick(10, 10);
    assert.deepEqual(heights(c), [1, 1, 1, 1]);
    assert.equal(c.members[0]!.chain[0]!.block.requests.length, 1);
    c.request(req('carol', 1), [2]);
    c.run();
    assert.ok(c.lines.includes('r2 REPLY carol/1 duplicate h=1'));
    c.tick(50, 10);
    assert.deepEqual(heights(c), [1, 1, 1, 1]);
  });

  it('rejects requests the app refuses and requests beyond the pending limit', () => {
    const c = new Cluster({ n: 4, transcript: true, limits: { pendingRequestsMax: 2, blockTxsMax: 2 } });
    c.request(req('dave', 1, 'y'.repeat(20_000)), [1]);
    c.request(req('dave', 2), [1]);
    c.request(req('dave', 3), [1]);
    c.request(req('dave', 4), [1]);
    c.run();
    assert.ok(c.lines.includes('r1 REPLY dave/1 rejected payload too long'));
    assert.ok(c.lines.some((l) => l.startsWith('r1 REPLY dave/4 rejected the pending queue is full')));
    assert.equal(c.replica(1).pendingRequests, 2);
  });

  it('needs 2f+1 replicas: with two of four down nothing commits, with one down it does', () => {
    const down = new Cluster({ n: 4 });
    down.crash(2);
    down.crash(3);
    down.request(req('erin', 1));
    down.tick(10, 10);
    assert.deepEqual(heights(down), [0, 0, 0, 0]);

    const one = new Cluster({ n: 4 });
    one.crash(3);
    one.request(req('erin', 1));
    one.tick(10, 10);
    assert.deepEqual(heights(one), [1, 1, 1, 0]);
  });

  it('ignores votes with forged signatures', () => {
    const c = new Cluster({ n: 4 });
    c.crash(2);
    c.crash(3);
    c.request(req('frank', 1));
    c.tick(10, 10);
    const pp = c.members[0]!.records.find((r) => r.kind === 'pre-prepare')!;
    assert.equal(pp.kind, 'pre-prepare');
    const digest = pp.message.digest;
    // r1 signs votes pretending to be r2 and r3: the signatures are r1's, so they must not count.
    for (const impostor of [2, 3]) {
      const prepare = c.signAs<Prepare>(1, {
        kind: 'prepare',
        view: 0 as View,
        seq: 1 as Height,
        digest,
        replica: impostor as ValidatorId,
      });
      c.inject(1, [0, 1], prepare);
    }
    c.run();
    assert.deepEqual(heights(c), [0, 0, 0, 0]);
  });
});

describe('PBFT replica: chained blocks (R1, R2) and watermarks', () => {
  it('R1: holds a pre-prepare until its parent is known, then accepts it', () => {
    const c = new Cluster({ n: 4 });
    c.crash(0);
    const app = new TestApp();
    const b1 = app.build({
      parent: testGenesisHash,
      height: 1 as Height,
      view: 0 as View,
      proposer: 0 as ValidatorId,
      nowMs: 0,
      requests: [req('g', 1)],
    });
    const b2 = app.build({
      parent: app.digest(b1),
      height: 2 as Height,
      view: 0 as View,
      proposer: 0 as ValidatorId,
      nowMs: 0,
      requests: [req('g', 2)],
    });
    const pp = (b: TestBlock) =>
      c.signAs<PrePrepare<TestBlock>>(0, {
        kind: 'pre-prepare',
        view: 0 as View,
        seq: b.height as Height,
        digest: app.digest(b),
        block: b,
        replica: 0 as ValidatorId,
      });
    c.inject(0, [1, 2, 3], pp(b2));
    c.run();
    assert.equal(sentPrepares(c, 1).length, 0);
    c.inject(0, [1, 2, 3], pp(b1));
    c.run();
    assert.deepEqual(heights(c), [0, 2, 2, 2]);
    c.checkAgreement();
  });

  it('R1: a pre-prepare whose block does not extend the previous one makes backups change view', () => {
    const c = new Cluster({ n: 4 });
    c.crash(0);
    const app = new TestApp();
    const b1 = app.build({
      parent: testGenesisHash,
      height: 1 as Height,
      view: 0 as View,
      proposer: 0 as ValidatorId,
      nowMs: 0,
      requests: [],
    });
    const orphan = app.build({
      parent: testGenesisHash,
      height: 2 as Height,
      view: 0 as View,
      proposer: 0 as ValidatorId,
      nowMs: 0,
      requests: [],
    });
    for (const b of [b1, orphan]) {
      c.inject(
        0,
        [1, 2, 3],
        c.signAs<PrePrepare<TestBlock>>(0, {
          kind: 'pre-prepare',
          view: 0 as View,
          seq: b.height as Height,
          digest: app.digest(b),
          block: b,
          replica: 0 as ValidatorId,
        }),
      );
    }
    c.run();
    assert.equal(c.replica(1).view, 1);
    // Block 1 was not prepared before the view change, so it is free; the new primary proposes anew.
    assert.deepEqual(heights(c), [0, 0, 0, 0]);
    c.request(req('g', 3), [1, 2, 3]);
    c.tick(10, 10);
    assert.deepEqual(heights(c).slice(1), [1, 1, 1]);
    assert.equal(blockAt(c, 1, 1).view, 1);
  });

  it('R2: a backup prepares seq s only after seq s-1 is prepared', () => {
    const c = new Cluster({ n: 4, limits: { blockTxsMax: 1 } });
    // r2 hears no prepares, so it never sees seq 1 prepared.
    c.drops.push((_from, to, m) => to === 2 && m?.kind === 'prepare');
    c.request(req('h', 1));
    c.request(req('h', 2));
    c.run();
    const seqs = sentPrepares(c, 2).map((p) => p.seq);
    assert.deepEqual(seqs, [1]);
    // The others still commit both blocks; r2 catches up from their commits and certificates.
    assert.deepEqual(
      heights(c).filter((_, i) => i !== 2),
      [2, 2, 2],
    );
  });

  it('keeps at most watermarkWindow sequence numbers in flight above the stable checkpoint', () => {
    const c = new Cluster({ n: 4, limits: { ...small, blockTxsMax: 1 } });
    c.drops.push((_from, _to, m) => m?.kind === 'commit');
    for (let i = 0; i < 10; i++) c.request(req('i', i));
    c.run();
    const proposed = c.members[0]!.records.filter((r) => r.kind === 'pre-prepare').length;
    assert.equal(proposed, 4);
    assert.deepEqual(heights(c), [0, 0, 0, 0]);
  });

  it('makes checkpoints stable with 2f+1 signatures and garbage-collects below them', () => {
    const c = new Cluster({ n: 4, limits: { ...small, blockTxsMax: 1 } });
    for (let i = 0; i < 9; i++) c.request(req('j', i));
    c.tick(20, 10);
    assert.deepEqual(heights(c), [9, 9, 9, 9]);
    for (let i = 0; i < 4; i++) assert.equal(c.replica(i).stableCheckpoint.seq, 8);
    const stable = c.members[1]!.records.filter((r) => r.kind === 'stable-checkpoint');
    assert.equal(stable.length, 4);
    c.checkAgreement();
  });
});

describe('PBFT replica: view change', () => {
  it('a crashed primary is replaced and prepared blocks survive with the same digest', () => {
    const c = new Cluster({ n: 4 });
    // Block 1 gets prepared everywhere, but only r0 sees the commits: it commits nowhere else.
    c.drops.push((_from, to, m) => m?.kind === 'commit' && to !== 0);
    c.request(req('k', 1));
    c.tick(10, 10);
    assert.deepEqual(heights(c), [1, 0, 0, 0]);
    const digest = c.members[0]!.chain[0]!.certificate.blockHash;
    c.crash(0);
    c.drops.length = 0;
    c.request(req('k', 2), [1, 2, 3]);
    c.tick(3000);
    for (const id of [1, 2, 3]) {
      assert.equal(c.replica(id).view, 1);
      assert.equal(c.members[id]!.chain[0]!.certificate.blockHash, digest);
    }
    assert.deepEqual(heights(c).slice(1), [2, 2, 2]);
    c.checkAgreement();
  });

  it('a request the primary censors triggers a view change and then commits', () => {
    const c = new Cluster({ n: 4 });
    // The primary never receives the request, so it cannot propose it.
    c.request(req('l', 1), [1, 2, 3]);
    c.tick(1500);
    assert.equal(c.replica(1).view, 0);
    c.tick(1500);
    assert.equal(c.replica(1).view, 1);
    assert.deepEqual(heights(c), [1, 1, 1, 1]);
  });

  it('an invalid block from the primary is never prepared and causes a view change', () => {
    const c = new Cluster({ n: 4, transcript: true });
    c.crash(0);
    const app = new TestApp();
    const bad = app.build({
      parent: testGenesisHash,
      height: 1 as Height,
      view: 0 as View,
      proposer: 0 as ValidatorId,
      nowMs: 0,
      requests: [req('m', 1, 'bad')],
    });
    c.inject(
      0,
      [1, 2, 3],
      c.signAs<PrePrepare<TestBlock>>(0, {
        kind: 'pre-prepare',
        view: 0 as View,
        seq: 1 as Height,
        digest: app.digest(bad),
        block: bad,
        replica: 0 as ValidatorId,
      }),
    );
    c.run();
    for (const id of [1, 2, 3]) {
      assert.equal(sentPrepares(c, id).length, 0);
      assert.equal(c.replica(id).view, 1);
    }
    assert.ok(c.lines.some((l) => l.includes('INVALID s=1')));
  });

  it('primary equivocation commits neither block, and the next view makes progress', () => {
    const c = new Cluster({ n: 4 });
    c.crash(0);
    const app = new TestApp();
    const mk = (payload: string) =>
      app.build({
        parent: testGenesisHash,
        height: 1 as Height,
        view: 0 as View,
        proposer: 0 as ValidatorId,
        nowMs: 0,
        requests: [req('n', 1, payload)],
      });
    const a = mk('a');
    const b = mk('b');
    const pp = (blk: TestBlock) =>
      c.signAs<PrePrepare<TestBlock>>(0, {
        kind: 'pre-prepare',
        view: 0 as View,
        seq: 1 as Height,
        digest: app.digest(blk),
        block: blk,
        replica: 0 as ValidatorId,
      });
    c.inject(0, [1], pp(a));
    c.inject(0, [2, 3], pp(b));
    c.run();
    // r2 and r3 prepare b (2f prepares), but r1 does not, so b has only 2 < 2f+1 commits.
    assert.deepEqual(heights(c), [0, 0, 0, 0]);
    c.request(req('n', 2), [1, 2, 3]);
    c.tick(3000);
    // The view change keeps the prepared block b at height 1 (R3), then the new request follows.
    assert.equal(c.replica(1).view, 1);
    assert.deepEqual(heights(c).slice(1), [2, 2, 2]);
    assert.equal(blockAt(c, 1, 1).requests[0]!.payload, 'b');
    c.checkAgreement();
  });

  it('two successive faulty primaries: timers back off and the third view commits (n = 7)', () => {
    const c = new Cluster({ n: 7 });
    c.crash(0);
    c.crash(1);
    c.request(req('o', 1), [2, 3, 4, 5, 6]);
    c.tick(2000, 50);
    assert.equal(c.replica(2).view, 1);
    // View 1's primary is down too: the view-change timer (1 s) expires and view 2 starts.
    c.tick(1100, 50);
    assert.equal(c.replica(2).view, 2);
    assert.equal(c.replica(2).status, 'normal');
    c.tick(100, 10);
    assert.deepEqual(heights(c).slice(2), [1, 1, 1, 1, 1]);
    c.checkAgreement();
  });

  it('a replica joins a view change once f+1 others ask for a higher view', () => {
    const c = new Cluster({ n: 4 });
    c.request(req('p', 1), [1, 2]);
    c.tick(2100, 50);
    // r1 and r2 timed out; r3 never saw the request but joins because f+1 = 2 asked.
    assert.equal(c.replica(3).view, 1);
  });
});

describe('PBFT replica: new-view validation', () => {
  function preparedEverywhere(): { c: Cluster; vcs: ViewChange<TestBlock>[] } {
    const c = new Cluster({ n: 4 });
    c.drops.push((_from, _to, m) => m?.kind === 'commit');
    c.request(req('q', 1));
    c.tick(10, 10);
    c.crash(0);
    c.crash(1);
    c.drops.length = 0;
    // Collect r2's and r3's view-changes by making them time out; r1 (Byzantine below) stays silent.
    c.drops.push((from, _to, m) => m?.kind === 'view-change' && (from === 2 || from === 3));
    c.tick(2100, 50);
    const vcs = [2, 3].map((id) => {
      const r = c.members[id]!.records.findLast((x) => x.kind === 'view-change');
      assert.ok(r !== undefined && r.kind === 'view-change');
      return r.message;
    });
    return { c, vcs };
  }

  it('accepts a new-view whose O set follows from V, and rejects a forged one', () => {
    const { c, vcs } = preparedEverywhere();
    assert.equal(vcs[0]!.prepared.length, 1, 'r2 prepared block 1');
    const ownVc = c.signAs<ViewChange<TestBlock>>(1, {
      kind: 'view-change',
      newView: 1 as View,
      checkpoint: { seq: 0 as Height, digest: testGenesisHash, proof: [] },
      prepared: [],
      replica: 1 as ValidatorId,
    });
    const V = [ownVc, ...vcs];
    const app = new TestApp();
    const { entries } = computeNewViewSet(V, (b) => app.parent(b), 64);
    assert.equal(entries.length, 1);
    const nv = (prePrepares: PrePrepare<TestBlock>[]) =>
      c.signAs<NewView<TestBlock>>(1, {
        kind: 'new-view',
        view: 1 as View,
        viewChanges: V,
        prePrepares,
        replica: 1 as ValidatorId,
      });
    // Forged: drops the prepared block (it would let the new primary rewrite seq 1).
    c.inject(1, [2, 3], nv([]));
    c.run();
    assert.equal(c.replica(2).status, 'view-change');
    // Forged: re-proposes another block at seq 1.
    const other = app.build({
      parent: testGenesisHash,
      height: 1 as Height,
      view: 1 as View,
      proposer: 1 as ValidatorId,
      nowMs: 0,
      requests: [],
    });
    const wrong = c.signAs<PrePrepare<TestBlock>>(1, {
      kind: 'pre-prepare',
      view: 1 as View,
      seq: 1 as Height,
      digest: app.digest(other),
      block: other,
      replica: 1 as ValidatorId,
    });
    c.inject(1, [2, 3], nv([wrong]));
    c.run();
    assert.equal(c.replica(2).status, 'view-change');
    // The correct one is accepted.
    const e = entries[0]!;
    const right = c.signAs<PrePrepare<TestBlock>>(1, {
      kind: 'pre-prepare',
      view: 1 as View,
      seq: e.seq,
      digest: e.digest,
      block: e.block,
      replica: 1 as ValidatorId,
    });
    c.inject(1, [2, 3], nv([right]));
    c.run();
    assert.equal(c.replica(2).status, 'normal');
    assert.equal(c.replica(2).view, 1);
  });

  it('R3: the O set stops at the first seq whose block does not extend the previous entry', () => {
    const app = new TestApp();
    const b1 = app.build({
      parent: testGenesisHash,
      height: 1 as Height,
      view: 0 as View,
      proposer: 0 as ValidatorId,
      nowMs: 0,
      requests: [],
    });
    const b2 = app.build({
      parent: app.digest(b1),
      height: 2 as Height,
      view: 0 as View,
      proposer: 0 as ValidatorId,
      nowMs: 0,
      requests: [],
    });
    const stray = app.build({
      parent: 'ff'.repeat(32) as BlockHash,
      height: 3 as Height,
      view: 0 as View,
      proposer: 0 as ValidatorId,
      nowMs: 0,
      requests: [],
    });
    const cert = (b: TestBlock) =>
      ({
        prePrepare: {
          kind: 'pre-prepare',
          view: 0 as View,
          seq: b.height as Height,
          digest: app.digest(b),
          block: b,
          replica: 0 as ValidatorId,
          signature: '',
        },
        prepares: [],
      }) as never;
    const vc = (prepared: never[]) =>
      ({
        kind: 'view-change',
        newView: 1,
        checkpoint: { seq: 0, digest: testGenesisHash, proof: [] },
        prepared,
        replica: 1,
        signature: '',
      }) as unknown as ViewChange<TestBlock>;
    const { entries } = computeNewViewSet(
      [vc([cert(b1), cert(b2), cert(stray)]), vc([])],
      (b) => app.parent(b),
      64,
    );
    assert.deepEqual(
      entries.map((e) => e.seq),
      [1, 2],
    );
    const ignored = computeNewViewSet([vc([cert(b1)])], (b) => app.parent(b), 64, true);
    assert.equal(ignored.entries.length, 0);
  });
});

describe('PBFT replica: crash recovery and state transfer', () => {
  it('a restarted backup keeps its view and never prepares a second digest for one (view, seq)', () => {
    const c = new Cluster({ n: 4 });
    c.drops.push((_from, _to, m) => m?.kind === 'commit');
    c.request(req('r', 1));
    c.tick(10, 10);
    const first = sentPrepares(c, 2);
    assert.equal(first.length, 1);
    c.crash(2);
    c.restart(2);
    c.run();
    assert.equal(c.replica(2).view, 0);
    const app = new TestApp();
    const other = app.build({
      parent: testGenesisHash,
      height: 1 as Height,
      view: 0 as View,
      proposer: 0 as ValidatorId,
      nowMs: 0,
      requests: [req('r', 9)],
    });
    c.inject(
      0,
      [2],
      c.signAs<PrePrepare<TestBlock>>(0, {
        kind: 'pre-prepare',
        view: 0 as View,
        seq: 1 as Height,
        digest: app.digest(other),
        block: other,
        replica: 0 as ValidatorId,
      }),
    );
    c.run();
    const after = sentPrepares(c, 2).filter((p) => p.view === 0 && p.seq === 1);
    assert.equal(new Set(after.map((p) => p.digest)).size, 1, 'one digest per (view, seq)');
    assert.equal(c.replica(2).view, 1, 'the conflicting pre-prepare proves the primary faulty');
  });

  it('a restarted replica never returns to a lower view', () => {
    const c = new Cluster({ n: 4 });
    c.request(req('s', 1), [1, 2, 3]);
    c.tick(2500);
    assert.equal(c.replica(3).view, 1);
    c.crash(3);
    c.restart(3);
    c.run();
    assert.equal(c.replica(3).view, 1);
    const r = new Replica(c.config(3), c.app, {
      records: c.members[3]!.records,
      executed: { height: c.members[3]!.chain.length as Height, hash: c.members[3]!.executedHash },
    });
    assert.equal(r.view, 1);
  });

  it('a lagging replica catches up across a garbage-collected checkpoint with verified certificates', () => {
    const c = new Cluster({ n: 4, limits: { ...small, blockTxsMax: 1 } });
    c.drops.push((from, to) => from === 3 || to === 3);
    for (let i = 0; i < 10; i++) {
      c.request(req('t', i));
      c.tick(10, 10);
    }
    assert.deepEqual(heights(c), [10, 10, 10, 0]);
    c.drops.length = 0;
    c.request(req('t', 10));
    c.tick(2000, 50);
    assert.deepEqual(heights(c), [11, 11, 11, 11]);
    c.checkAgreement();
  });

  it('rejects state-transfer blocks whose certificate does not verify', () => {
    const c = new Cluster({ n: 4 });
    c.request(req('u', 1));
    c.tick(10, 10);
    const good = c.members[0]!.chain[0]!;
    const lone = new Replica(c.config(3), c.app);
    const forged = { ...good.certificate, signatures: good.certificate.signatures.slice(0, 2) };
    const none = lone.step({
      kind: 'blocks',
      from: 0 as ValidatorId,
      blocks: [{ block: good.block, certificate: forged }],
    });
    assert.equal(none.filter((a) => a.kind === 'deliver').length, 0);
    const tampered = { ...good.certificate, blockHash: 'ab'.repeat(32) as BlockHash };
    assert.equal(
      lone
        .step({
          kind: 'blocks',
          from: 0 as ValidatorId,
          blocks: [{ block: good.block, certificate: tampered }],
        })
        .filter((a) => a.kind === 'deliver').length,
      0,
    );
    const ok = lone.step({ kind: 'blocks', from: 0 as ValidatorId, blocks: [good] });
    assert.equal(ok.filter((a) => a.kind === 'deliver').length, 1);
    assert.equal(lone.lastDelivered, 1);
  });
});

describe('PBFT replica: test-only broken variants (ReplicaConfig.faults)', () => {
  it('commitOnTwoF commits with 2f commits, and the certificate it produces does not verify', () => {
    const run = (faults?: { commitOnTwoF: boolean }) => {
      const c = new Cluster({ n: 4, ...(faults !== undefined ? { faults } : {}) });
      // r0 and r1 see only each other's commits: 2 = 2f, one short of a quorum.
      c.drops.push((from, to, m) => m?.kind === 'commit' && (from >= 2 || to >= 2));
      c.request(req('v', 1));
      c.tick(10, 10);
      return c;
    };
    assert.deepEqual(heights(run()), [0, 0, 0, 0]);
    const broken = run({ commitOnTwoF: true });
    assert.equal(heights(broken)[0], 1);
    const keys = broken.ring.keys.map((k) => k.publicKey);
    assert.equal(
      verifyCommitCertificate(broken.certificate(0, 1), { chainId: broken.chainId, validators: keys }).ok,
      false,
    );
  });

  it('newViewIgnoresPrepared loses a block committed at one replica: two replicas disagree', () => {
    const run = (faults?: { newViewIgnoresPrepared: boolean }) => {
      const c = new Cluster({ n: 4, ...(faults !== undefined ? { faults } : {}) });
      // Only r0 ever sees view-0 commits: block 1 is committed there and merely prepared elsewhere.
      c.drops.push((_from, to, m) => m?.kind === 'commit' && m.view === 0 && to !== 0);
      c.request(req('w', 1));
      c.tick(10, 10);
      // r0 is then cut off; the others change view without it.
      c.drops.push((from, to) => from === 0 || to === 0);
      c.request(req('w', 2), [1, 2, 3]);
      c.tick(3000);
      return c;
    };
    const sound = run();
    sound.checkAgreement();
    const broken = run({ newViewIgnoresPrepared: true });
    assert.equal(heights(broken)[1]! >= 1, true);
    assert.notEqual(broken.certificate(0, 1).blockHash, broken.certificate(1, 1).blockHash);
  });

  it('skipPrePrepareDigestCheck prepares a block whose digest is not the one proposed', () => {
    const run = (faults?: { skipPrePrepareDigestCheck: boolean }) => {
      const c = new Cluster({ n: 4, ...(faults !== undefined ? { faults } : {}) });
      c.crash(0);
      const app = new TestApp();
      const mk = (p: string) =>
        app.build({
          parent: testGenesisHash,
          height: 1 as Height,
          view: 0 as View,
          proposer: 0 as ValidatorId,
          nowMs: 0,
          requests: [req('x', 1, p)],
        });
      const shown = mk('shown');
      const carried = mk('carried');
      c.inject(
        0,
        [1, 2, 3],
        c.signAs<PrePrepare<TestBlock>>(0, {
          kind: 'pre-prepare',
          view: 0 as View,
          seq: 1 as Height,
          digest: app.digest(shown),
          block: carried,
          replica: 0 as ValidatorId,
        }),
      );
      c.run();
      return c;
    };
    const sound = run();
    assert.equal(sentPrepares(sound, 1).length, 0);
    assert.equal(sound.replica(1).view, 1);
    const broken = run({ skipPrePrepareDigestCheck: true });
    assert.deepEqual(heights(broken).slice(1), [1, 1, 1]);
    const delivered = broken.members[1]!.chain[0]!;
    assert.notEqual(broken.app.digest(delivered.block), delivered.certificate.blockHash);
  });
});

describe('PBFT replica: view-change pacing', () => {
  it('a replica alone in a view change waits for others instead of running ahead', () => {
    const c = new Cluster({ n: 4 });
    // Only r1 sees the request, so only r1 suspects the primary.
    c.request(req('y', 1), [1]);
    c.tick(2100);
    assert.equal(c.replica(1).view, 1);
    assert.equal(c.replica(1).status, 'view-change');
    c.tick(10_000, 100);
    // Without 2f+1 asking for view 1 or later, its timer never moves it to view 2.
    assert.equal(c.replica(1).view, 1);
    assert.equal(c.replica(0).view, 0);
    // Once the others suspect the primary too, everybody meets in view 1 and the request commits.
    c.request(req('y', 1), [0, 2, 3]);
    c.crash(0);
    c.tick(5000, 100);
    for (const id of [1, 2, 3]) assert.equal(c.replica(id).view, 1);
  });
});

describe('PBFT replica: hostile input', () => {
  it('drops malformed messages and state-transfer answers without throwing (property)', async () => {
    const fc = (await import('fast-check')).default;
    const c = new Cluster({ n: 4 });
    c.request(req('z', 1));
    c.tick(10, 10);
    const replica = c.replica(2);
    const kinds = fc.constantFrom(
      'pre-prepare',
      'prepare',
      'commit',
      'checkpoint',
      'view-change',
      'new-view',
      'x',
    );
    const shape = fc.record(
      {
        kind: kinds,
        view: fc.oneof(fc.nat(5), fc.anything()),
        seq: fc.oneof(fc.nat(5), fc.anything()),
        newView: fc.oneof(fc.nat(5), fc.anything()),
        digest: fc.oneof(fc.constant('ab'.repeat(32)), fc.anything()),
        replica: fc.oneof(fc.nat(5), fc.anything()),
        signature: fc.oneof(fc.constant('00'.repeat(64)), fc.anything()),
        block: fc.anything(),
        checkpoint: fc.anything(),
        prepared: fc.oneof(fc.constant([]), fc.anything()),
        viewChanges: fc.anything(),
        prePrepares: fc.anything(),
      },
      { requiredKeys: ['kind'] },
    );
    fc.assert(
      fc.property(shape, fc.anything(), (message, blocks) => {
        const a = replica.step({ kind: 'message', from: 1 as ValidatorId, message: message as never });
        const b = replica.step({ kind: 'blocks', from: 1 as ValidatorId, blocks: blocks as never });
        const d = replica.step({
          kind: 'blocks',
          from: 1 as ValidatorId,
          blocks: [{ block: blocks, certificate: message }] as never,
        });
        return [...a, ...b, ...d].every((x) => x.kind !== 'deliver');
      }),
      { numRuns: 300, seed: 42 },
    );
    assert.equal(replica.lastDelivered, 1);
  });
});
