import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { sha256Hex } from '../crypto/hash.ts';
import type { Height, TargetName, TxId } from '../encoding/brand.ts';
import {
  changeMembership,
  controlRollout,
  countReport,
  rolloutCounting,
  startRollout,
  waveBucket,
  waveFailed,
  waveOf,
  waveOpen,
  wavesValid,
  waveThreshold,
} from './rollout.ts';
import type { RolloutBody, RolloutControlBody, RolloutEntry, RolloutOutcome } from './types.ts';

const wavesArb = fc
  .uniqueArray(fc.integer({ min: 1, max: 99 }), { maxLength: 5 })
  .map((list) => [...list.sort((a, b) => a - b), 100]);

function body(waves: readonly number[], maxFailuresPercent: number, rolloutId = 'r1'): RolloutBody {
  return {
    type: 'rollout',
    chainId: 'c',
    rolloutId,
    target: 'group:cams' as TargetName,
    version: 2,
    waves,
    maxFailuresPercent,
  };
}

function start(waves: readonly number[], maxFailuresPercent: number, devicesPerWave: readonly number[]) {
  return startRollout(
    body(waves, maxFailuresPercent),
    sha256Hex('v2'),
    devicesPerWave,
    sha256Hex('tx') as string as TxId,
    7 as Height,
  );
}

const control = (action: RolloutControlBody['action'], seq: number): RolloutControlBody => ({
  type: 'rollout-control',
  chainId: 'c',
  rolloutId: 'r1',
  action,
  seq,
});

describe('wave assignment', () => {
  it('is deterministic, in [0, 100), and consistent with the waves', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        wavesArb,
        (device, rollout, waves) => {
          const bucket = waveBucket(device, rollout);
          assert.ok(Number.isInteger(bucket) && bucket >= 0 && bucket < 100);
          assert.equal(waveBucket(device, rollout), bucket);
          const wave = waveOf(device, rollout, waves);
          assert.ok(bucket < waves[wave]!);
          assert.ok(wave === 0 || bucket >= waves[wave - 1]!);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps the two ids apart: swapping or re-splitting them gives another bucket sequence', () => {
    const ids = Array.from({ length: 64 }, (_, i) => `d${i}`);
    const a = ids.map((d) => waveBucket(d, 'r1'));
    const b = ids.map((d) => waveBucket('r1', d));
    const c = ids.map((d) => waveBucket(`${d}r`, '1'));
    assert.notDeepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.notDeepEqual(
      a,
      ids.map((d) => waveBucket(d, 'r2')),
      'a new rollout id reshuffles the devices',
    );
  });

  it('property: each wave gets close to its share of 4000 devices', () => {
    const devices = Array.from({ length: 4000 }, (_, i) => `device-${i}`);
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 20 }), wavesArb, (rolloutId, waves) => {
        const counts = waves.map(() => 0);
        for (const d of devices) counts[waveOf(d, rolloutId, waves)]! += 1;
        waves.forEach((percent, i) => {
          const share = (percent - (i === 0 ? 0 : waves[i - 1]!)) / 100;
          // Binomial spread is at most 0.8 percentage points here; 4 points is about five sigma.
          assert.ok(
            Math.abs(counts[i]! / devices.length - share) < 0.04,
            `wave ${i}: ${counts[i]} of ${devices.length}, expected about ${share * 100}%`,
          );
        });
      }),
      { numRuns: 15 },
    );
  });

  it('accepts only strictly ascending integer percentages ending at 100', () => {
    for (const ok of [[100], [10, 50, 100], [1, 2, 3, 100]]) assert.ok(wavesValid(ok), JSON.stringify(ok));
    for (const bad of [
      [],
      [50],
      [50, 50, 100],
      [60, 40, 100],
      [0, 100],
      [10.5, 100],
      [100, 100],
      [10, 101],
    ]) {
      assert.ok(!wavesValid(bad), JSON.stringify(bad));
    }
    assert.throws(() => waveOf('d', 'r', [50]), /end at 100/);
  });
});

describe('rollout progress', () => {
  it('opens empty waves at once: a rollout to an empty group is done when recorded', () => {
    const empty = start([10, 50, 100], 5, [0, 0, 0]);
    assert.equal(empty.status, 'done');
    const leading = start([10, 50, 100], 5, [0, 0, 3]);
    assert.equal(leading.status, 'running');
    assert.equal(leading.currentWave, 2);
  });

  it('opens the next wave when successes reach the wave size minus the failures it may have', () => {
    let r = start([10, 50, 100], 10, [10, 40, 50]);
    assert.equal(waveThreshold(r.progress[0]!, 10), 9);
    for (let i = 0; i < 8; i++) r = countReport(r, 0, null, 'success');
    assert.equal(r.currentWave, 0);
    r = countReport(r, 0, null, 'failure');
    assert.equal(r.status, 'running', 'one failure in ten is within 10%');
    r = countReport(r, 0, null, 'success');
    assert.equal(r.currentWave, 1);
    assert.ok(waveOpen(r, 0) && waveOpen(r, 1) && !waveOpen(r, 2));
  });

  it('halts when a wave passes the failure limit, names why, and resumes on an admin control', () => {
    let r = start([10, 100], 5, [10, 90]);
    r = countReport(r, 0, null, 'failure');
    assert.equal(r.status, 'halted');
    assert.match(r.reason, /wave 1 of 2: 1 of its 10 device\(s\) failed, more than 5%/);
    assert.ok(!waveOpen(r, 0), 'a halted rollout lets no device start updating');
    // Reports keep counting while halted, but no wave opens.
    for (let i = 0; i < 9; i++) r = countReport(r, 0, null, 'success');
    assert.equal(r.currentWave, 0);
    assert.equal(r.progress[0]?.successes, 9);
    const resumed = controlRollout(r, control('resume', 1), 'admin0');
    assert.ok(typeof resumed !== 'string');
    assert.equal(resumed.status, 'running');
    assert.equal(resumed.controlSeq, 1);
    // 5% of 10 devices allows no failure, so the wave needs all ten successes.
    assert.equal(resumed.currentWave, 0);
    const fixed = countReport(resumed, 0, 'failure', 'success');
    assert.equal(fixed.currentWave, 1);
    assert.deepEqual(fixed.progress[0], { devices: 10, successes: 10, failures: 0 });
    // Resuming a rollout whose wave is already complete applies the wave rule at once.
    let complete = start([10, 100], 20, [10, 90]);
    for (let i = 0; i < 3; i++) complete = countReport(complete, 0, null, 'failure');
    assert.equal(complete.status, 'halted');
    for (let i = 0; i < 7; i++) complete = countReport(complete, 0, null, 'success');
    complete = countReport(complete, 0, 'failure', 'success');
    assert.deepEqual(complete.progress[0], { devices: 10, successes: 8, failures: 2 });
    assert.equal(complete.currentWave, 0, 'no wave opens while halted');
    const again = controlRollout(complete, control('resume', 1), 'admin0');
    assert.ok(typeof again !== 'string');
    assert.equal(again.status, 'running');
    assert.equal(again.currentWave, 1, '8 successes of 10 reach the threshold of 20% failures');
  });

  it('moves a device between counts when it reports again, and never counts it twice', () => {
    let r = start([100], 50, [4]);
    r = countReport(r, 0, null, 'failure');
    assert.deepEqual(r.progress[0], { devices: 4, successes: 0, failures: 1 });
    r = countReport(r, 0, 'failure', 'failure');
    assert.deepEqual(r.progress[0], { devices: 4, successes: 0, failures: 1 });
    r = countReport(r, 0, 'failure', 'success');
    assert.deepEqual(r.progress[0], { devices: 4, successes: 1, failures: 0 });
  });

  it('controls: abort, resume and rollback only from the statuses that allow them', () => {
    const running = start([100], 0, [3]);
    assert.equal(typeof controlRollout(running, control('resume', 1), 'a'), 'string');
    const aborted = controlRollout(running, control('abort', 1), 'a');
    assert.ok(typeof aborted !== 'string');
    assert.equal(aborted.status, 'aborted');
    assert.match(aborted.reason, /aborted by admin a/);
    assert.ok(!waveOpen(aborted, 0));
    assert.equal(typeof controlRollout(aborted, control('abort', 2), 'a'), 'string');
    const rolledBack = controlRollout(aborted, control('rollback', 2), 'b');
    assert.ok(typeof rolledBack !== 'string');
    assert.equal(rolledBack.status, 'aborted');
    assert.equal(rolledBack.rollback, true);
    for (const action of ['abort', 'resume', 'rollback'] as const) {
      assert.match(String(controlRollout(rolledBack, control(action, 3), 'a')), /rollback is final/);
    }
    const done = start([100], 0, [0]);
    assert.ok(waveOpen(done, 0));
    assert.equal(typeof controlRollout(done, control('abort', 1), 'a'), 'string');
    assert.equal(typeof controlRollout(done, control('resume', 1), 'a'), 'string');
    const doneRollback = controlRollout(done, control('rollback', 1), 'a');
    assert.ok(typeof doneRollback !== 'string' && doneRollback.rollback);
  });

  type Op =
    | { kind: 'join'; device: number }
    | { kind: 'leave'; device: number }
    | { kind: 'report'; device: number; outcome: RolloutOutcome }
    | { kind: 'control'; action: RolloutControlBody['action'] };

  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('join' as const), device: fc.nat(40) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('leave' as const), device: fc.nat(40) }) },
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constant('report' as const),
        device: fc.nat(40),
        outcome: fc.constantFrom<RolloutOutcome>('success', 'success', 'success', 'failure'),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('control' as const),
        action: fc.constantFrom('abort', 'resume', 'rollback'),
      }),
    },
  );

  it('property: the counts always equal a recount of the devices, and the status follows the rules', () => {
    fc.assert(
      fc.property(
        wavesArb,
        fc.integer({ min: 0, max: 30 }),
        fc.uniqueArray(fc.nat(40), { maxLength: 30 }),
        fc.array(opArb, { maxLength: 120 }),
        (waves, maxFailuresPercent, initial, ops) => {
          // The model: which devices are in the rollout, and their counted outcome.
          const members = new Map<number, RolloutOutcome | null>(initial.map((d) => [d, null]));
          const wave = (d: number) => waveOf(`dev-${d}`, 'r1', waves);
          const perWave = waves.map((_, i) => [...members.keys()].filter((d) => wave(d) === i).length);
          let r: RolloutEntry = start(waves, maxFailuresPercent, perWave);
          let seq = 0;
          for (const op of ops) {
            const before = r;
            if (op.kind === 'control') {
              const next = controlRollout(r, control(op.action, seq + 1), 'admin');
              if (typeof next === 'string') continue;
              r = next;
              seq += 1;
              continue;
            }
            // The ledger stops following devices once a rollout is done or rolled back.
            if (!rolloutCounting(r)) continue;
            if (op.kind === 'join') {
              if (members.has(op.device)) continue;
              members.set(op.device, null);
              r = changeMembership(r, wave(op.device), 1, null);
            } else if (op.kind === 'leave') {
              if (!members.has(op.device)) continue;
              r = changeMembership(r, wave(op.device), -1, members.get(op.device) ?? null);
              members.delete(op.device);
            } else {
              if (!members.has(op.device)) continue;
              r = countReport(r, wave(op.device), members.get(op.device) ?? null, op.outcome);
              members.set(op.device, op.outcome);
              const progress = r.progress[wave(op.device)]!;
              if (
                before.status === 'running' &&
                op.outcome === 'failure' &&
                waveFailed(progress, maxFailuresPercent)
              ) {
                assert.equal(r.status, 'halted', 'a failure over the limit halts a running rollout');
              }
            }
            assert.ok(r.currentWave >= before.currentWave, 'waves never close again');
            if (r.status === 'halted' && before.status !== 'halted') assert.equal(op.kind, 'report');
          }
          waves.forEach((_, i) => {
            const inWave = [...members].filter(([d]) => wave(d) === i);
            assert.deepEqual(r.progress[i], {
              devices: inWave.length,
              successes: inWave.filter(([, o]) => o === 'success').length,
              failures: inWave.filter(([, o]) => o === 'failure').length,
            });
          });
          if (r.status === 'running') {
            const open = r.progress[r.currentWave]!;
            assert.ok(
              open.successes < waveThreshold(open, maxFailuresPercent),
              'a running rollout waits on its open wave',
            );
          }
          assert.equal(r.controlSeq, seq);
        },
      ),
      { numRuns: 300 },
    );
  });
});
