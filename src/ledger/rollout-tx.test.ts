import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { sha256Hex } from '../crypto/hash.ts';
import type { DeviceId, TargetName, ValidatorId, View } from '../encoding/brand.ts';
import { applyBlock, buildBlock } from './apply.ts';
import { genesisBlock } from './block.ts';
import type { LedgerRule } from './errors.ts';
import { waveOf } from './rollout.ts';
import { LedgerState } from './state.ts';
import { createTestNetwork, type SeededKey, seededKey } from './testing.ts';
import {
  addApproval,
  checkTransaction,
  signAsAdmin,
  signAsDevice,
  signHeartbeat,
  signRelease,
  txId,
  txReadKeys,
} from './tx.ts';
import type {
  BlockHeader,
  DeviceReportBody,
  ReleaseBody,
  RolloutBody,
  RolloutControlBody,
  Transaction,
} from './types.ts';

const { genesis, adminKeys, validatorKeys } = createTestNetwork({ seed: 'rollout-tx-tests' });
const [admin0, admin1] = adminKeys as [(typeof adminKeys)[0], (typeof adminKeys)[0]];
const GROUP = 'group:cams' as TargetName;
const WAVES = [10, 50, 100];

const deviceKeys = new Map<string, SeededKey>();
function keyOf(id: string): SeededKey {
  let key = deviceKeys.get(id);
  if (key === undefined) {
    key = seededKey(`rollout-tx-tests/${id}`);
    deviceKeys.set(id, key);
  }
  return key;
}

function release(version: number, target = GROUP): Transaction {
  const body: ReleaseBody = {
    type: 'release',
    chainId: genesis.chainId,
    target,
    version,
    sha256: sha256Hex(`${target} v${version}`),
    size: 10,
    mediaType: 'text/plain',
  };
  return signRelease(body, [admin0, admin1]);
}

function rolloutBody(rolloutId: string, extra: Partial<RolloutBody> = {}): RolloutBody {
  return {
    type: 'rollout',
    chainId: genesis.chainId,
    rolloutId,
    target: GROUP,
    version: 2,
    waves: WAVES,
    maxFailuresPercent: 5,
    ...extra,
  };
}

const rollout = (id: string, extra: Partial<RolloutBody> = {}) =>
  signRelease(rolloutBody(id, extra), [admin0, admin1]);

function controlTx(
  rolloutId: string,
  action: RolloutControlBody['action'],
  seq: number,
  admin = admin0,
): Transaction {
  const body: RolloutControlBody = {
    type: 'rollout-control',
    chainId: genesis.chainId,
    rolloutId,
    action,
    seq,
  };
  return signAsAdmin(body, admin.id, admin.privateKey);
}

function enroll(id: string, target = GROUP): Transaction {
  return signAsAdmin(
    {
      type: 'device-enroll',
      chainId: genesis.chainId,
      deviceId: id as DeviceId,
      publicKey: keyOf(id).publicKeyHex,
      group: 'cams',
      target,
    },
    admin0.id,
    admin0.privateKey,
  );
}

function revoke(id: string): Transaction {
  return signAsAdmin(
    { type: 'device-revoke', chainId: genesis.chainId, deviceId: id as DeviceId, reason: 'lost' },
    admin0.id,
    admin0.privateKey,
  );
}

const seqs = new Map<string, number>();
function report(
  id: string,
  status: DeviceReportBody['status'],
  version = 2,
  target = GROUP,
  sha256 = sha256Hex(`${target} v${version}`),
): Transaction {
  const seq = (seqs.get(id) ?? 0) + 1;
  seqs.set(id, seq);
  const body: DeviceReportBody = {
    type: 'device-report',
    chainId: genesis.chainId,
    deviceId: id as DeviceId,
    seq,
    target,
    version,
    sha256,
    status,
    detail: status === 'applied' ? '' : 'hook exited 1',
  };
  return signAsDevice(body, keyOf(id).privateKey);
}

/** Commits blocks through buildBlock and checks every one again with applyBlock. */
class Chain {
  parent: BlockHeader = genesisBlock(genesis).header;
  state: LedgerState = LedgerState.empty();

  commit(...txs: Transaction[]): this {
    const built = buildBlock(genesis, this.parent, this.state, txs, {
      view: 0 as View,
      proposer: 0 as ValidatorId,
      timestampMs: this.parent.timestampMs + 1000,
    });
    assert.deepEqual(
      built.rejected.map((r) => r.reason),
      [],
    );
    assert.equal(built.block.txs.length, txs.length);
    const applied = applyBlock(genesis, this.parent, this.state, built.block);
    assert.equal(applied.state.root, built.state.root);
    assert.deepEqual(applied.changes, built.changes);
    this.parent = built.block.header;
    this.state = applied.state;
    return this;
  }
}

function expectRejected(state: LedgerState, tx: unknown, rule: LedgerRule, pattern?: RegExp): void {
  const result = checkTransaction(genesis, state, tx);
  assert.equal(result.ok, false, 'the transaction should be rejected');
  if (result.ok) return;
  assert.equal(result.error.data.rule, rule, result.error.message);
  if (pattern !== undefined) assert.match(result.error.message, pattern);
}

const ids = (n: number, prefix = 'cam') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

/** A chain with group:cams at version 2 and these devices enrolled. */
function fleet(devices: readonly string[]): Chain {
  return new Chain().commit(release(1), release(2)).commit(...devices.map((d) => enroll(d)));
}

describe('rollout transactions', () => {
  it('a rollout over 100 devices, 10% of them failing, halts in the first wave, on the ledger', () => {
    const devices = ids(100);
    const failing = new Set(devices.filter((_, i) => i % 10 === 0));
    const wave0 = devices.filter((d) => waveOf(d, 'cams-v2', WAVES) === 0);
    assert.ok(
      wave0.some((d) => failing.has(d)),
      'the fixture puts a failing device in the first wave',
    );
    const chain = fleet(devices).commit(rollout('cams-v2'));
    const recorded = chain.state.rollout('cams-v2');
    assert.equal(recorded?.status, 'running');
    assert.deepEqual(
      recorded?.progress.map((p) => p.devices),
      [0, 1, 2].map((w) => devices.filter((d) => waveOf(d, 'cams-v2', WAVES) === w).length),
    );
    assert.equal(recorded?.sha256, sha256Hex(`${GROUP} v2`));
    assert.equal(chain.state.targetRollout(GROUP)?.rolloutId, 'cams-v2');
    // The devices of wave 0 apply and report; the failing ones report failure.
    chain.commit(...wave0.map((d) => report(d, failing.has(d) ? 'failed' : 'applied')));
    const halted = chain.state.rollout('cams-v2');
    assert.equal(halted?.status, 'halted');
    assert.equal(halted?.currentWave, 0);
    assert.match(halted?.reason ?? '', /wave 1 of 3: \d+ of its \d+ device\(s\) failed, more than 5%/);
    assert.equal(halted?.progress[0]?.failures, wave0.filter((d) => failing.has(d)).length);
    const device = chain.state.device(wave0[0]!);
    assert.equal(device?.rollout?.rolloutId, 'cams-v2');
  });

  it('opens the waves one by one as their devices succeed, and is done after the last', () => {
    const devices = ids(60);
    // With no failures allowed, every device of a wave must succeed before the next opens.
    const chain = fleet(devices).commit(rollout('r', { maxFailuresPercent: 0 }));
    for (let wave = 0; wave < WAVES.length; wave++) {
      assert.equal(chain.state.rollout('r')?.currentWave, wave);
      assert.equal(chain.state.rollout('r')?.status, 'running');
      const members = devices.filter((d) => waveOf(d, 'r', WAVES) === wave);
      chain.commit(...members.map((d) => report(d, 'applied')));
    }
    const done = chain.state.rollout('r');
    assert.equal(done?.status, 'done');
    assert.equal(done?.currentWave, WAVES.length - 1);
    assert.equal(
      done?.progress.reduce((sum, p) => sum + p.successes, 0),
      devices.length,
    );
    // Once done, reports change only the device entries.
    const before = chain.state.rollout('r');
    chain.commit(report(devices[0]!, 'failed'));
    assert.deepEqual(chain.state.rollout('r'), before);
  });

  it('counts a device once, counts only reports on the rollout version, and follows enrollments and revocations', () => {
    const devices = ids(20);
    const chain = fleet(devices).commit(rollout('r', { waves: [100], maxFailuresPercent: 50 }));
    chain.commit(report('cam-0', 'failed'), report('cam-0', 'failed'), report('cam-1', 'applied', 1));
    assert.deepEqual(chain.state.rollout('r')?.progress, [{ devices: 20, successes: 0, failures: 1 }]);
    chain.commit(report('cam-0', 'applied'), report('cam-2', 'mismatch'));
    assert.deepEqual(chain.state.rollout('r')?.progress, [{ devices: 20, successes: 1, failures: 1 }]);
    // "Applied" with other bytes than the release's is a failure of the rollout.
    chain.commit(report('cam-4', 'applied', 2, GROUP, sha256Hex('other bytes')));
    assert.deepEqual(chain.state.rollout('r')?.progress, [{ devices: 20, successes: 1, failures: 2 }]);
    chain.commit(enroll('cam-new'), enroll('other-0', 'group:other' as TargetName));
    assert.deepEqual(chain.state.rollout('r')?.progress, [{ devices: 21, successes: 1, failures: 2 }]);
    chain.commit(revoke('cam-0'), revoke('cam-2'));
    assert.deepEqual(chain.state.rollout('r')?.progress, [{ devices: 19, successes: 0, failures: 1 }]);
    // A report on another target by a device of the group does not count either.
    chain.commit(release(1, 'default' as TargetName), report('cam-3', 'applied', 2, 'default' as TargetName));
    assert.deepEqual(chain.state.rollout('r')?.progress, [{ devices: 19, successes: 0, failures: 1 }]);
  });

  it('records abort, resume and rollback once each, in order', () => {
    const chain = fleet(ids(5)).commit(rollout('r'));
    chain.commit(controlTx('r', 'abort', 1));
    assert.equal(chain.state.rollout('r')?.status, 'aborted');
    assert.match(chain.state.rollout('r')?.reason ?? '', /aborted by admin admin0/);
    expectRejected(chain.state, controlTx('r', 'abort', 1), 'replayed-seq');
    expectRejected(chain.state, controlTx('r', 'abort', 2), 'rollout-state', /only a running or halted/);
    // Devices keep being counted while aborted, so a resumed rollout has exact counts.
    chain.commit(enroll('late'));
    chain.commit(controlTx('r', 'resume', 2, admin1));
    const resumed = chain.state.rollout('r');
    assert.equal(resumed?.status, 'running');
    assert.equal(resumed?.controlSeq, 2);
    assert.equal(
      resumed?.progress.reduce((sum, p) => sum + p.devices, 0),
      6,
    );
    chain.commit(controlTx('r', 'rollback', 3));
    assert.equal(chain.state.rollout('r')?.status, 'aborted');
    assert.equal(chain.state.rollout('r')?.rollback, true);
    expectRejected(chain.state, controlTx('r', 'resume', 4), 'rollout-state', /final/);
    expectRejected(chain.state, controlTx('nope', 'abort', 1), 'rollout-unknown');
    const device = { ...seededKey('rollout-tx-tests/not-admin'), id: 'mallory' };
    expectRejected(chain.state, controlTx('r', 'abort', 4, device as typeof admin0), 'unknown-signer');
  });

  it('refuses rollouts that are malformed, under-approved, not of the current release, or on a busy target', () => {
    const chain = fleet(ids(3));
    expectRejected(chain.state, rollout('r', { target: 'default' as TargetName }), 'schema', /group target/);
    expectRejected(chain.state, rollout('r', { target: 'group:' as TargetName }), 'schema', /group target/);
    for (const waves of [
      [],
      [50],
      [50, 10, 100],
      [10, 10, 100],
      [0, 100],
      [10.5, 100],
      Array.from({ length: 21 }, (_, i) => i + 80),
    ]) {
      expectRejected(chain.state, rollout('r', { waves }), 'schema');
    }
    expectRejected(chain.state, rollout('r', { maxFailuresPercent: 101 }), 'schema');
    expectRejected(chain.state, rollout('r', { rolloutId: 'has space' }), 'schema');
    expectRejected(chain.state, rollout('r', { version: 1 }), 'rollout-version', /is at version 2/);
    expectRejected(chain.state, rollout('r', { version: 3 }), 'rollout-version', /release version 3 first/);
    expectRejected(
      chain.state,
      rollout('r', { target: 'group:none' as TargetName }),
      'rollout-version',
      /has no release/,
    );
    const single = signRelease(rolloutBody('r'), [admin0]);
    expectRejected(chain.state, single, 'threshold-not-met', /rollout has valid approvals from 1/);
    assert.ok(
      checkTransaction(genesis, chain.state, addApproval(single, admin1)).ok,
      'approvals add up one by one',
    );
    chain.commit(rollout('r'));
    expectRejected(chain.state, rollout('r'), 'rollout-exists');
    expectRejected(chain.state, rollout('r2'), 'rollout-state', /is in rollout r \(running\)/);
    // After an abort the target takes a new rollout, and the old one can no longer be resumed.
    chain.commit(controlTx('r', 'abort', 1)).commit(rollout('r2'));
    assert.equal(chain.state.targetRollout(GROUP)?.rolloutId, 'r2');
    expectRejected(chain.state, controlTx('r', 'resume', 2), 'rollout-state', /newer rollout/);
  });

  it('gives every rollout transaction a distinct id and a key of its own in the state', () => {
    const chain = fleet(ids(2)).commit(rollout('r'));
    const keys = [...chain.state.entries()].map(([key]) => key).filter((k) => k.includes('rollout'));
    assert.deepEqual(keys.sort(), ['rollout/r', 'target-rollout/group:cams']);
    assert.equal(chain.state.rollout('r')?.txId, txId(rollout('r')));
  });
});

describe('txReadKeys', () => {
  // A fixed pool of transactions whose validity depends on each other; blocks take random subsets.
  const pool: Transaction[] = [
    release(1),
    release(2),
    release(3),
    enroll('k-0'),
    enroll('k-1'),
    revoke('k-0'),
    report('k-0', 'applied'),
    report('k-1', 'failed'),
    rollout('p'),
    rollout('p', { version: 3 }),
    rollout('q'),
    controlTx('p', 'abort', 1),
    controlTx('p', 'resume', 2),
    controlTx('p', 'rollback', 2),
    controlTx('q', 'abort', 1),
    signHeartbeat(genesis, 1 as ValidatorId, validatorKeys[1]!.privateKey, 5),
  ];
  const skip = { signatureChecked: () => true };
  const verdict = (state: LedgerState, tx: Transaction) => {
    const result = checkTransaction(genesis, state, tx, skip);
    return result.ok ? 'ok' : result.error.data.rule;
  };

  it('property: a transaction whose verdict a block changed reads a key that the block changed', () => {
    fc.assert(
      fc.property(fc.array(fc.subarray(pool.map((_, i) => i)), { minLength: 1, maxLength: 6 }), (blocks) => {
        let parent = genesisBlock(genesis).header;
        let state = LedgerState.empty();
        for (const picks of blocks) {
          const built = buildBlock(
            genesis,
            parent,
            state,
            picks.map((i) => pool[i]),
            { view: 0 as View, proposer: 0 as ValidatorId, timestampMs: parent.timestampMs + 1 },
            skip,
          );
          const changed = new Set<string>(built.changes.map((c) => c.key));
          for (const tx of pool) {
            if (verdict(state, tx) === verdict(built.state, tx)) continue;
            const keys = txReadKeys(built.state, tx);
            assert.ok(
              keys.some((k) => changed.has(k)),
              `${tx.body.type} went from ${verdict(state, tx)} to ${verdict(built.state, tx)} but reads only ${keys.join(', ')}`,
            );
          }
          parent = built.block.header;
          state = built.state;
        }
      }),
      { numRuns: 60 },
    );
  });
});
