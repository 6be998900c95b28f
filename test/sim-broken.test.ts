/**
 * The checkers can fail: honest replicas run with a deliberately broken rule (the core's TEST-ONLY
 * fault switches) and the simulator must find a violation within a bounded number of seeds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ViolationKind } from '../src/sim/checkers.ts';
import type { BatchOptions } from '../src/sim/runner.ts';
import { seedOptions } from '../src/sim/runner.ts';
import { runSeed } from '../src/sim/simulator.ts';
import { firstFailingSeed } from '../src/sim/testing.ts';

const seedsMax = 200;

/**
 * Hunts for a seed where the broken variant breaks one of `kinds`, then reruns that seed with the
 * correct replica to show the violation comes from the broken rule, not from the scenario.
 */
function expectFound(batch: BatchOptions, kinds: readonly ViolationKind[]): void {
  const { result, seedsRun, otherFailures } = firstFailingSeed(1, seedsMax, batch, kinds);
  assert.ok(
    result !== undefined,
    `no ${kinds.join('/')} violation in ${seedsMax} seeds with ${batch.broken} (other failures: ${otherFailures.join(', ') || 'none'})`,
  );
  const v = result.violations.find((x) => kinds.includes(x.kind));
  console.log(
    `  ${batch.broken}: seed ${result.seed} (after ${seedsRun} seeds) finds ${v?.kind}: ${v?.detail}`,
  );
  const correct = runSeed(seedOptions(result.seed, { ...batch, broken: undefined }));
  assert.deepEqual(
    correct.violations,
    [],
    `seed ${result.seed} also fails with the correct replica: ${correct.violations[0]?.detail}`,
  );
}

describe('broken replica variants are caught', () => {
  it('commit on 2f matching commits instead of 2f+1', () => {
    expectFound({ n: 4, broken: 'commit-on-2f' }, ['certificate', 'agreement']);
  });

  it('accepting a pre-prepare whose digest does not match its block', () => {
    expectFound({ n: 4, byzantine: 1, behaviours: ['invalid-block'], broken: 'skip-digest-check' }, [
      'certificate',
      'agreement',
      'validity',
      'chain-link',
    ]);
  });

  it('a new-view that ignores prepared certificates', () => {
    expectFound({ n: 4, broken: 'new-view-ignores-prepared' }, ['agreement', 'chain-link', 'certificate']);
  });
});
